/**
 * Test fixture: a small HTTP server on 127.0.0.1 playing the Twilio REST
 * endpoints the setup wizard calls (the complete simulator lives in
 * tests/twilio-sim/). It keeps the account's resources in memory, checks Basic
 * auth, pages lists the way Twilio does (PageSize, next_page_uri), answers with
 * Twilio's JSON shapes and error format, and records every request so tests can
 * assert what reached "Twilio" (and what did not: no second POST on a re-run).
 * Tests only; never imported by the app.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FixtureRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  form: URLSearchParams;
}

type Row = Record<string, unknown> & { sid: string };

export function fakeSid(prefix: string): string {
  return `${prefix}${randomBytes(16).toString("hex")}`;
}

function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}

/** A mono 8 kHz 16-bit WAV of silence, as Twilio serves a recording's .wav media. */
export function silentWav(seconds: number): Buffer {
  const samples = Math.max(1, Math.round(seconds * 8000));
  const data = samples * 2;
  const wav = Buffer.alloc(44 + data);
  wav.write("RIFF", 0, "ascii");
  wav.writeUInt32LE(36 + data, 4);
  wav.write("WAVEfmt ", 8, "ascii");
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(8000, 24);
  wav.writeUInt32LE(16000, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write("data", 36, "ascii");
  wav.writeUInt32LE(data, 40);
  return wav;
}

class TwilioFault extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class TwilioFixture {
  readonly accountSid = fakeSid("AC");
  readonly authToken = randomBytes(16).toString("hex");
  readonly requests: FixtureRequest[] = [];
  readonly numbers: Row[] = [];
  readonly available: Row[] = [];
  readonly domains: Row[] = [];
  readonly credentialLists: (Row & { credentials: Row[] })[] = [];
  readonly mappings = new Map<string, string[]>();
  readonly recordings: Row[] = [];
  readonly calls: Row[] = [];
  /** The account's status (active, suspended, closed). */
  accountStatus = "active";
  /** Answers the next requests matching `path` (substring) with this error, once each. */
  private readonly faults: { method: string; path: string; status: number; code: number; message: string }[] =
    [];
  private server: Server | undefined;
  baseUrl = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** The next `method` request whose path contains `path` fails with this Twilio error. */
  failNext(method: string, path: string, status: number, code: number, message: string): void {
    this.faults.push({ method, path, status, code, message });
  }

  /** Requests made with `method` to a path ending in `suffix`. */
  made(method: string, suffix: string | RegExp): FixtureRequest[] {
    return this.requests.filter(
      (r) =>
        r.method === method && (typeof suffix === "string" ? r.path.endsWith(suffix) : suffix.test(r.path)),
    );
  }

  addNumber(phoneNumber: string, friendlyName = phoneNumber): Row {
    const row: Row = {
      sid: fakeSid("PN"),
      account_sid: this.accountSid,
      phone_number: phoneNumber,
      friendly_name: friendlyName,
      capabilities: { voice: true, sms: true, mms: true, fax: false },
      voice_url: null,
      voice_method: "POST",
      voice_fallback_url: null,
      sms_url: null,
      sms_fallback_url: null,
      status_callback: null,
      date_created: rfc2822(Date.now()),
      uri: "",
    };
    row.uri = `/2010-04-01/Accounts/${this.accountSid}/IncomingPhoneNumbers/${row.sid}.json`;
    this.numbers.push(row);
    return row;
  }

  addAvailable(phoneNumber: string, locality = "San Francisco"): void {
    this.available.push({
      sid: phoneNumber,
      phone_number: phoneNumber,
      friendly_name: phoneNumber,
      locality,
      region: "CA",
      iso_country: "US",
      capabilities: { voice: true, SMS: true, MMS: true },
    });
  }

  addCall(from: string, to: string, startedMs: number): Row {
    const row: Row = {
      sid: fakeSid("CA"),
      account_sid: this.accountSid,
      from,
      to,
      direction: "inbound",
      status: "completed",
      start_time: rfc2822(startedMs),
    };
    this.calls.push(row);
    return row;
  }

  addRecording(
    callSid: string | null,
    durationSeconds: number,
    createdMs: number,
    source = "RecordVerb",
  ): Row {
    const row: Row = {
      sid: fakeSid("RE"),
      account_sid: this.accountSid,
      call_sid: callSid,
      date_created: rfc2822(createdMs),
      start_time: rfc2822(createdMs - durationSeconds * 1000),
      duration: String(durationSeconds),
      status: "completed",
      source,
      channels: 1,
      uri: "",
      media_url: "",
    };
    row.uri = `/2010-04-01/Accounts/${this.accountSid}/Recordings/${row.sid}.json`;
    row.media_url = `${this.baseUrl}/2010-04-01/Accounts/${this.accountSid}/Recordings/${row.sid}`;
    this.recordings.push(row);
    return row;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", this.baseUrl);
    const method = req.method ?? "GET";
    const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
    this.requests.push({ method, path: url.pathname, query: url.searchParams, form });
    try {
      const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString("base64")}`;
      if (req.headers.authorization !== expected) throw new TwilioFault(401, 20003, "Authenticate");
      const fault = this.faults.findIndex((f) => f.method === method && url.pathname.includes(f.path));
      if (fault >= 0) {
        const [f] = this.faults.splice(fault, 1);
        if (f) throw new TwilioFault(f.status, f.code, f.message);
      }
      const [status, body] = this.route(method, url, form);
      if (status === 204) {
        res.writeHead(204);
        res.end();
      } else if (body instanceof Buffer) {
        res.writeHead(status, { "content-type": "audio/x-wav", "content-length": String(body.length) });
        res.end(body);
      } else {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      }
    } catch (err) {
      const fault = err instanceof TwilioFault ? err : new TwilioFault(500, 20500, "Internal Server Error");
      res.writeHead(fault.status, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          code: fault.code,
          message: fault.message,
          more_info: `https://www.twilio.com/docs/errors/${fault.code}`,
          status: fault.status,
        }),
      );
    }
  }

  /** Twilio's list envelope: `key` holds the page; next_page_uri while more follow. */
  private page(url: URL, key: string, rows: readonly Row[]): Record<string, unknown> {
    const size = Math.min(1000, Number(url.searchParams.get("PageSize") ?? 50) || 50);
    const page = Number(url.searchParams.get("Page") ?? 0) || 0;
    const slice = rows.slice(page * size, page * size + size);
    const more = (page + 1) * size < rows.length;
    const q = new URLSearchParams(url.searchParams);
    q.set("PageSize", String(size));
    q.set("Page", String(page + 1));
    q.set("PageToken", `PT${page + 1}`);
    return {
      [key]: slice,
      page,
      page_size: size,
      start: page * size,
      end: page * size + slice.length - 1,
      uri: `${url.pathname}${url.search}`,
      first_page_uri: `${url.pathname}?PageSize=${size}&Page=0`,
      previous_page_uri: null,
      next_page_uri: more ? `${url.pathname}?${q.toString()}` : null,
    };
  }

  private route(method: string, url: URL, form: URLSearchParams): [number, unknown] {
    const acct = `/2010-04-01/Accounts/${this.accountSid}`;
    const path = url.pathname;
    if (path === `${acct}.json` && method === "GET") {
      return [
        200,
        {
          sid: this.accountSid,
          friendly_name: "My first Twilio account",
          status: this.accountStatus,
          type: "Full",
        },
      ];
    }
    if (!path.startsWith(`${acct}/`))
      throw new TwilioFault(404, 20404, "The requested resource was not found");
    const rest = path.slice(acct.length);
    let m: RegExpMatchArray | null;

    if (rest === "/IncomingPhoneNumbers.json" && method === "GET") {
      const wanted = url.searchParams.get("PhoneNumber");
      const rows = wanted ? this.numbers.filter((n) => n.phone_number === wanted) : this.numbers;
      return [200, this.page(url, "incoming_phone_numbers", rows)];
    }
    if (rest === "/IncomingPhoneNumbers.json" && method === "POST") {
      const phone = form.get("PhoneNumber") ?? "";
      const i = this.available.findIndex((a) => a.phone_number === phone);
      if (i < 0) throw new TwilioFault(400, 21422, "PhoneNumber is not available");
      this.available.splice(i, 1);
      return [201, this.addNumber(phone)];
    }
    m = rest.match(/^\/IncomingPhoneNumbers\/(PN[0-9a-f]{32})\.json$/);
    if (m) {
      const row = this.numbers.find((n) => n.sid === m?.[1]);
      if (!row) throw new TwilioFault(404, 20404, "The requested resource was not found");
      if (method === "POST") {
        const fields: Record<string, string> = {
          VoiceUrl: "voice_url",
          VoiceMethod: "voice_method",
          VoiceFallbackUrl: "voice_fallback_url",
          StatusCallback: "status_callback",
          SmsUrl: "sms_url",
          SmsFallbackUrl: "sms_fallback_url",
        };
        for (const [param, field] of Object.entries(fields)) {
          const v = form.get(param);
          if (v !== null) row[field] = v;
        }
      }
      return [200, row];
    }
    m = rest.match(/^\/AvailablePhoneNumbers\/([A-Z]{2})\/Local\.json$/);
    if (m && method === "GET") {
      const area = url.searchParams.get("AreaCode");
      const rows = this.available.filter((a) => !area || String(a.phone_number).startsWith(`+1${area}`));
      const size = Number(url.searchParams.get("PageSize") ?? 50);
      return [200, { available_phone_numbers: rows.slice(0, size), uri: path }];
    }
    if (rest === "/SIP/Domains.json" && method === "GET")
      return [200, this.page(url, "domains", this.domains)];
    if (rest === "/SIP/Domains.json" && method === "POST") {
      const name = form.get("DomainName") ?? "";
      if (!name.endsWith(".sip.twilio.com")) throw new TwilioFault(400, 21232, "DomainName is invalid");
      if (this.domains.some((d) => d.domain_name === name))
        throw new TwilioFault(400, 21232, "DomainName is already in use");
      const row: Row = {
        sid: fakeSid("SD"),
        domain_name: name,
        friendly_name: form.get("FriendlyName") ?? name,
        voice_url: form.get("VoiceUrl"),
        voice_method: form.get("VoiceMethod") ?? "POST",
        sip_registration: form.get("SipRegistration") === "true",
        emergency_calling_enabled: form.get("EmergencyCallingEnabled") === "true",
      };
      this.domains.push(row);
      this.mappings.set(row.sid, []);
      return [201, row];
    }
    m = rest.match(/^\/SIP\/Domains\/(SD[0-9a-f]{32})\.json$/);
    if (m && method === "POST") {
      const row = this.domains.find((d) => d.sid === m?.[1]);
      if (!row) throw new TwilioFault(404, 20404, "The requested resource was not found");
      if (form.has("VoiceUrl")) row.voice_url = form.get("VoiceUrl");
      if (form.has("VoiceMethod")) row.voice_method = form.get("VoiceMethod");
      if (form.has("SipRegistration")) row.sip_registration = form.get("SipRegistration") === "true";
      if (form.has("EmergencyCallingEnabled")) {
        row.emergency_calling_enabled = form.get("EmergencyCallingEnabled") === "true";
      }
      return [200, row];
    }
    m = rest.match(/^\/SIP\/Domains\/(SD[0-9a-f]{32})\/Auth\/Calls\/CredentialListMappings\.json$/);
    if (m) {
      const domainSid = m[1] ?? "";
      if (!this.domains.some((d) => d.sid === domainSid)) {
        throw new TwilioFault(404, 20404, "The requested resource was not found");
      }
      const mapped = this.mappings.get(domainSid) ?? [];
      this.mappings.set(domainSid, mapped);
      const rows = mapped.map((sid) => ({ sid, friendly_name: "GoSIP relay" }));
      if (method === "GET") return [200, this.page(url, "contents", rows)];
      const list = form.get("CredentialListSid") ?? "";
      if (!this.credentialLists.some((l) => l.sid === list))
        throw new TwilioFault(404, 20404, "No such list");
      if (mapped.includes(list)) throw new TwilioFault(409, 21240, "Mapping already exists");
      mapped.push(list);
      return [201, { sid: list, friendly_name: "GoSIP relay" }];
    }
    if (rest === "/SIP/CredentialLists.json" && method === "GET") {
      const rows = this.credentialLists.map(({ credentials: _c, ...l }) => l as Row);
      return [200, this.page(url, "credential_lists", rows)];
    }
    if (rest === "/SIP/CredentialLists.json" && method === "POST") {
      const row = {
        sid: fakeSid("CL"),
        friendly_name: form.get("FriendlyName") ?? "",
        credentials: [] as Row[],
      };
      this.credentialLists.push(row);
      const { credentials: _c, ...shown } = row;
      return [201, shown];
    }
    m = rest.match(/^\/SIP\/CredentialLists\/(CL[0-9a-f]{32})\/Credentials(?:\/(CR[0-9a-f]{32}))?\.json$/);
    if (m) {
      const list = this.credentialLists.find((l) => l.sid === m?.[1]);
      if (!list) throw new TwilioFault(404, 20404, "The requested resource was not found");
      const shown = (c: Row) => ({ sid: c.sid, username: c.username });
      if (m[2]) {
        const cred = list.credentials.find((c) => c.sid === m?.[2]);
        if (!cred) throw new TwilioFault(404, 20404, "The requested resource was not found");
        if (method === "POST" && form.has("Password")) cred.password = form.get("Password");
        return [200, shown(cred)];
      }
      if (method === "GET") return [200, this.page(url, "credentials", list.credentials.map(shown))];
      const username = form.get("Username") ?? "";
      const password = form.get("Password") ?? "";
      if (list.credentials.some((c) => c.username === username))
        throw new TwilioFault(400, 21450, "Username exists");
      if (
        password.length < 12 ||
        !/[A-Z]/.test(password) ||
        !/[a-z]/.test(password) ||
        !/\d/.test(password)
      ) {
        throw new TwilioFault(400, 21451, "Password is not strong enough");
      }
      const cred: Row = { sid: fakeSid("CR"), username, password };
      list.credentials.push(cred);
      return [201, shown(cred)];
    }
    if (rest === "/Recordings.json" && method === "GET") {
      const after = url.searchParams.get("DateCreated>");
      const from = after ? Date.parse(after) : 0;
      const rows = this.recordings.filter((r) => Date.parse(String(r.date_created)) >= from);
      return [200, this.page(url, "recordings", rows)];
    }
    m = rest.match(/^\/Recordings\/(RE[0-9a-f]{32})(\.wav|\.json)$/);
    if (m) {
      const i = this.recordings.findIndex((r) => r.sid === m?.[1]);
      if (i < 0) throw new TwilioFault(404, 20404, "The requested resource was not found");
      if (method === "DELETE" && m[2] === ".json") {
        this.recordings.splice(i, 1);
        return [204, null];
      }
      if (method === "GET" && m[2] === ".wav")
        return [200, silentWav(Number(this.recordings[i]?.duration ?? 1))];
      if (method === "GET") return [200, this.recordings[i]];
    }
    m = rest.match(/^\/Calls\/(CA[0-9a-f]{32})\.json$/);
    if (m && method === "GET") {
      const call = this.calls.find((c) => c.sid === m?.[1]);
      if (!call) throw new TwilioFault(404, 20404, "The requested resource was not found");
      return [200, call];
    }
    throw new TwilioFault(404, 20404, "The requested resource was not found");
  }
}
