/**
 * Test fixture for the voicemail tests: a small HTTP server on 127.0.0.1 playing
 * the parts of Twilio's REST API that voicemail uses — recording media (a real
 * WAV), recording DELETE, and Conversational Intelligence services, transcripts
 * and sentences — with Basic auth and Twilio's error shape. The full simulator
 * lives under tests/; this one only serves what these tests need and records
 * every request so tests can assert what reached "Twilio". Node only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const TEST_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef";
export const TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef";

/** A mono 16-bit PCM WAV of a sine tone (what Twilio serves for `<Record>`: 8 kHz). */
export function makeWav(seconds: number, hz = 440, rate = 8000): Uint8Array {
  const samples = Math.round(seconds * rate);
  const buf = new ArrayBuffer(44 + samples * 2);
  const v = new DataView(buf);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
  };
  ascii(0, "RIFF");
  v.setUint32(4, 36 + samples * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  ascii(36, "data");
  v.setUint32(40, samples * 2, true);
  for (let i = 0; i < samples; i++) {
    v.setInt16(44 + i * 2, Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * 12000), true);
  }
  return new Uint8Array(buf);
}

/** A random SID with Twilio's prefix and 32 hex digits. */
export function sid(prefix: string): string {
  return prefix + crypto.randomUUID().replace(/-/g, "");
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  form: Record<string, string>;
  authorized: boolean;
}

interface FakeTranscript {
  sid: string;
  serviceSid: string;
  sourceSid: string;
  customerKey: string | null;
  /** GETs of the transcript before it reports completed. */
  pendingReads: number;
  finalStatus: "completed" | "failed";
  sentences: string[];
}

export class FakeTwilio {
  readonly requests: FakeRequest[] = [];
  /** Recording media by RecordingSid. */
  readonly recordings = new Map<string, Uint8Array>();
  readonly deletedRecordings: string[] = [];
  /** Intelligence Services of the account (none: Intelligence unavailable). */
  services: string[] = [];
  readonly transcripts = new Map<string, FakeTranscript>();
  /** What the next Intelligence transcript will say, and how many polls it takes. */
  nextTranscript = {
    sentences: ["Hello, this is a long message."],
    pendingReads: 1,
    finalStatus: "completed" as const,
  };
  private server: Server | undefined;
  base = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: 20500, message: String(err), status: 500 }));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", () => resolve()));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** The RecordingUrl Twilio puts in the callback for `recordingSid` (no extension). */
  recordingUrl(recordingSid: string): string {
    return `${this.base}/2010-04-01/Accounts/${TEST_ACCOUNT_SID}/Recordings/${recordingSid}`;
  }

  /** Requests matching method and a path pattern. */
  hits(method: string, path: RegExp): FakeRequest[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.base);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const form = Object.fromEntries(new URLSearchParams(body));
    const expected = `Basic ${Buffer.from(`${TEST_ACCOUNT_SID}:${TEST_AUTH_TOKEN}`).toString("base64")}`;
    const authorized = req.headers.authorization === expected;
    const method = req.method ?? "GET";
    this.requests.push({
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      form,
      authorized,
    });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const error = (status: number, code: number, message: string) =>
      json(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
    if (!authorized) return error(401, 20003, "Authenticate");

    const account = `/2010-04-01/Accounts/${TEST_ACCOUNT_SID}`;
    const media = new RegExp(`^${account}/Recordings/(RE[0-9a-f]{32})\\.wav$`).exec(url.pathname);
    if (media && method === "GET") {
      const bytes = this.recordings.get(media[1] ?? "");
      if (!bytes) return error(404, 20404, "The requested resource was not found");
      res.writeHead(200, { "content-type": "audio/x-wav", "content-length": String(bytes.byteLength) });
      res.end(Buffer.from(bytes));
      return;
    }
    const recording = new RegExp(`^${account}/Recordings/(RE[0-9a-f]{32})\\.json$`).exec(url.pathname);
    if (recording && method === "DELETE") {
      const recordingSid = recording[1] ?? "";
      if (!this.recordings.delete(recordingSid))
        return error(404, 20404, "The requested resource was not found");
      this.deletedRecordings.push(recordingSid);
      res.writeHead(204);
      res.end();
      return;
    }
    if (url.pathname === "/v2/Services" && method === "GET") {
      return json(200, {
        services: this.services.map((s) => ({
          sid: s,
          account_sid: TEST_ACCOUNT_SID,
          unique_name: "voicemail",
        })),
        meta: { page: 0, page_size: 20, next_page_url: null, key: "services" },
      });
    }
    if (url.pathname === "/v2/Transcripts" && method === "GET") {
      const source = url.searchParams.get("SourceSid");
      const list = [...this.transcripts.values()].filter((t) => !source || t.sourceSid === source);
      return json(200, {
        transcripts: list.map((t) => this.transcriptJson(t, "queued")),
        meta: { page: 0, page_size: 20, next_page_url: null, key: "transcripts" },
      });
    }
    if (url.pathname === "/v2/Transcripts" && method === "POST") {
      if (!form.ServiceSid || !this.services.includes(form.ServiceSid))
        return error(400, 20001, "Invalid ServiceSid");
      let sourceSid = "";
      try {
        const channel = JSON.parse(form.Channel ?? "") as { media_properties?: { source_sid?: string } };
        sourceSid = channel.media_properties?.source_sid ?? "";
      } catch {
        return error(400, 20001, "Channel must be JSON");
      }
      if (!this.recordings.has(sourceSid)) return error(400, 20001, "Invalid source_sid");
      const t: FakeTranscript = {
        sid: sid("GT"),
        serviceSid: form.ServiceSid,
        sourceSid,
        customerKey: form.CustomerKey ?? null,
        ...this.nextTranscript,
        sentences: [...this.nextTranscript.sentences],
      };
      this.transcripts.set(t.sid, t);
      return json(202, this.transcriptJson(t, "queued"));
    }
    const transcript = /^\/v2\/Transcripts\/(GT[0-9a-f]{32})(\/Sentences)?$/.exec(url.pathname);
    if (transcript && !transcript[2] && method === "DELETE") {
      if (!this.transcripts.delete(transcript[1] ?? ""))
        return error(404, 20404, "The requested resource was not found");
      res.writeHead(204);
      res.end();
      return;
    }
    if (transcript && method === "GET") {
      const t = this.transcripts.get(transcript[1] ?? "");
      if (!t) return error(404, 20404, "The requested resource was not found");
      if (transcript[2]) {
        return json(200, {
          sentences: t.sentences.map((text, i) => ({
            media_channel: 1,
            sentence_index: i,
            start_time: null,
            end_time: null,
            transcript: text,
            sid: sid("GX"),
            confidence: "0.9",
          })),
          meta: { page: 0, page_size: 5000, next_page_url: null, key: "sentences" },
        });
      }
      const status = t.pendingReads > 0 ? "in-progress" : t.finalStatus;
      t.pendingReads -= 1;
      return json(200, this.transcriptJson(t, status));
    }
    error(404, 20404, "The requested resource was not found");
  }

  private transcriptJson(t: FakeTranscript, status: string) {
    return {
      account_sid: TEST_ACCOUNT_SID,
      service_sid: t.serviceSid,
      sid: t.sid,
      status,
      channel: { media_properties: { source_sid: t.sourceSid } },
      customer_key: t.customerKey,
      url: `${this.base}/v2/Transcripts/${t.sid}`,
    };
  }
}
