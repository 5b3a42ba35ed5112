// A PBX with the registrar, digest auth and scanner defence on a real engine and a real libSQL file, for the
// features' integration tests and the REGISTER benchmark: defence → auth → registrar, exactly the chain the
// app installs, with in-memory directory/event/command fakes. Plus a raw UDP phone that can bind any
// loopback address (127.0.0.2 plays the attacker) and answers challenges with MD5 or SHA-256.
import { createSocket, type Socket } from "node:dgram";
import {
  computeDigestResponse,
  computeHa1,
  createDb,
  type DigestAlgorithm,
  migrate,
  type SyncDevice,
} from "@gosip/drizzle";
import { createClient } from "@libsql/client";
import type Srf from "drachtio-srf";
import pino from "pino";
import { startTestEngine, type TestEngine } from "../../../test/harness.ts";
import { DigestAuth, parseDigestHeader } from "../auth/digest.ts";
import { authChain } from "../auth/middleware.ts";
import type { PbxOptions } from "../context.ts";
import { type DefenceOptions, ScannerDefence } from "../defence/defence.ts";
import { Registrar, type RegistrarOptions } from "../registrar/registrar.ts";
import { FakeDirectory, MemoryCommandBus, MemoryEventSink, seedDevices, TEST_REALM } from "./fakes.ts";

export interface RegistrarPbx {
  engine: TestEngine;
  srf: Srf;
  registrar: Registrar;
  defence: ScannerDefence;
  directory: FakeDirectory;
  events: MemoryEventSink;
  commands: MemoryCommandBus;
  /** Stops the app and the engine (registrations and bans stay in the file). */
  close(): Promise<void>;
}

export interface RegistrarPbxOptions {
  dbFile: string;
  devices: SyncDevice[];
  directory?: FakeDirectory;
  events?: MemoryEventSink;
  options?: Partial<Pick<PbxOptions, "natExpires" | "keepaliveIntervalMs">>;
  registrar?: RegistrarOptions;
  defence?: DefenceOptions;
  nonceLifetimeMs?: number;
  /** Handles authenticated INVITEs (default: 480). */
  onInvite?: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void;
}

/** The chain's parts over a migrated libSQL file; `install` puts the middleware on an srf (before connect). */
export interface RegistrarChain {
  registrar: Registrar;
  defence: ScannerDefence;
  directory: FakeDirectory;
  events: MemoryEventSink;
  commands: MemoryCommandBus;
  install(srf: Srf): void;
  close(): Promise<void>;
}

export async function createRegistrarChain(o: RegistrarPbxOptions): Promise<RegistrarChain> {
  const client = createClient({ url: `file:${o.dbFile}` });
  await migrate(client);
  const db = createDb(client);
  await seedDevices(db, o.devices);
  const log = pino({ level: "silent" });
  const directory = o.directory ?? new FakeDirectory(o.devices);
  const events = o.events ?? new MemoryEventSink();
  const commands = new MemoryCommandBus();
  const now = Date.now;
  const defence = new ScannerDefence({ log, db, directory, events, commands, now }, o.defence);
  await defence.start();
  const registrar = new Registrar(
    {
      log,
      db,
      directory,
      events,
      now,
      options: { natExpires: 90, keepaliveIntervalMs: 0, ...o.options },
    },
    o.registrar,
  );
  await registrar.start();
  const digest = new DigestAuth({
    realm: () => directory.settings()?.realm ?? TEST_REALM,
    nonceLifetimeMs: o.nonceLifetimeMs,
  });
  return {
    registrar,
    defence,
    directory,
    events,
    commands,
    install(s) {
      for (const fn of defence.middleware()) s.use(fn);
      for (const fn of authChain({ directory, log }, defence, { digest })) s.use(fn);
      s.use("register", registrar.middleware());
      // calls are another feature's: here an authenticated INVITE is simply refused
      s.use("invite", o.onInvite ?? ((_req, res) => res.send(480)));
      registrar.useSrf(s);
    },
    async close() {
      await registrar.close();
      await defence.close();
      client.close();
    },
  };
}

export async function startRegistrarPbx(o: RegistrarPbxOptions): Promise<RegistrarPbx> {
  const chain = await createRegistrarChain(o);
  const engine = await startTestEngine();
  const srf = await engine.connectApp((s) => chain.install(s));
  return {
    engine,
    srf,
    registrar: chain.registrar,
    defence: chain.defence,
    directory: chain.directory,
    events: chain.events,
    commands: chain.commands,
    async close() {
      await engine.close();
      await chain.close();
    },
  };
}

export interface RawMessage {
  text: string;
  address: string;
  port: number;
}

export function statusOf(text: string): number {
  return text.startsWith("SIP/2.0 ") ? Number(text.slice(8, 11)) : 0;
}

/** Every value of a header (by long name, case-insensitive), one per header line. */
export function headersOf(text: string, name: string): string[] {
  const head = text.split("\r\n\r\n")[0] ?? "";
  const lower = `${name.toLowerCase()}:`;
  return head
    .split("\r\n")
    .filter((l) => l.toLowerCase().startsWith(lower))
    .map((l) => l.slice(lower.length).trim());
}

export interface RegisterOptions {
  user: string;
  /** AOR user in To/From (default: user). */
  aor?: string;
  contact?: string | string[];
  expires?: number;
  userAgent?: string;
  callId?: string;
  cseq?: number;
  authorization?: string;
  extra?: string[];
}

let seq = 0;

/** A phone on a raw UDP socket bound to `address` (any 127.x.y.z works on Linux loopback). */
export class RawPhone {
  readonly received: RawMessage[] = [];
  private waiters: { match: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void }[] = [];
  /** Answer OPTIONS keepalives with 200 (false: stay silent, like a phone that went away). */
  answerOptions = true;

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    readonly port: number,
    private readonly target: number,
  ) {
    socket.on("message", (buf, rinfo) => {
      const m = { text: buf.toString("utf8"), address: rinfo.address, port: rinfo.port };
      if (m.text.startsWith("OPTIONS ")) {
        if (this.answerOptions)
          this.socket.send(Buffer.from(responseTo(m.text, 200, "OK")), rinfo.port, rinfo.address);
      }
      this.received.push(m);
      const ready = this.waiters.filter((w) => w.match(m));
      this.waiters = this.waiters.filter((w) => !w.match(m));
      for (const w of ready) w.resolve(m);
    });
  }

  static async open(address: string, enginePort: number): Promise<RawPhone> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, address, () => resolve()));
    return new RawPhone(socket, address, socket.address().port, enginePort);
  }

  send(text: string): void {
    this.socket.send(Buffer.from(text), this.target, "127.0.0.1");
  }

  /** The next message matching (arrived since `since`, an index into received), or undefined after timeoutMs. */
  wait(match: (m: RawMessage) => boolean, timeoutMs = 5000, since = 0): Promise<RawMessage | undefined> {
    const seen = this.received.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const waiter = {
        match,
        resolve: (m: RawMessage) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Builds a REGISTER as a phone would. */
  register(o: RegisterOptions): { text: string; callId: string; branch: string } {
    seq++;
    const branch = `z9hG4bKraw${process.pid}x${seq}`;
    const callId = o.callId ?? `raw-${process.pid}-${seq}@${this.address}`;
    const aor = o.aor ?? o.user;
    const contacts =
      o.contact === undefined ? [`<sip:${o.user}@${this.address}:${this.port}>`] : [o.contact].flat();
    const lines = [
      `REGISTER sip:${TEST_REALM} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.address}:${this.port};branch=${branch};rport`,
      "Max-Forwards: 70",
      `From: <sip:${aor}@${TEST_REALM}>;tag=ft${seq}`,
      `To: <sip:${aor}@${TEST_REALM}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${o.cseq ?? seq} REGISTER`,
      ...contacts.map((c) => `Contact: ${c}`),
      ...(o.expires !== undefined ? [`Expires: ${o.expires}`] : []),
      `User-Agent: ${o.userAgent ?? "GoSIP-test-phone/1.0"}`,
      ...(o.authorization ? [`Authorization: ${o.authorization}`] : []),
      ...(o.extra ?? []),
      "Content-Length: 0",
      "",
      "",
    ];
    return { text: lines.join("\r\n"), callId, branch };
  }

  /** Sends a request and waits for its final response (by Via branch). */
  async request(msg: { text: string; branch: string }, timeoutMs = 5000): Promise<RawMessage | undefined> {
    const since = this.received.length;
    this.send(msg.text);
    return this.wait(
      (m) => statusOf(m.text) >= 200 && m.text.includes(`branch=${msg.branch}`),
      timeoutMs,
      since,
    );
  }

  /**
   * A whole registration: REGISTER, answer the 401 with `password` (challenge `algorithm`), return the final
   * response (undefined when nothing came back).
   */
  async registerWithAuth(
    o: RegisterOptions & { password: string; algorithm?: DigestAlgorithm; nc?: string; timeoutMs?: number },
  ): Promise<{ challenge: RawMessage | undefined; final: RawMessage | undefined; authorization: string }> {
    const callId = o.callId ?? `raw-${process.pid}-${++seq}@${this.address}`;
    const first = this.register({ ...o, callId, cseq: 1 });
    const challenge = await this.request(first, o.timeoutMs);
    if (challenge === undefined || statusOf(challenge.text) !== 401)
      return { challenge, final: challenge, authorization: "" };
    const authorization = answerChallenge(challenge.text, {
      username: o.user,
      password: o.password,
      method: "REGISTER",
      uri: `sip:${TEST_REALM}`,
      algorithm: o.algorithm ?? "MD5",
      nc: o.nc,
    });
    const second = this.register({ ...o, callId, cseq: 2, authorization });
    return { challenge, final: await this.request(second, o.timeoutMs), authorization };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** The Authorization header a phone sends for the challenge of `algorithm` in a 401/407. */
export function answerChallenge(
  response: string,
  o: {
    username: string;
    password: string;
    method: string;
    uri: string;
    algorithm: DigestAlgorithm;
    nc?: string;
    realm?: string;
  },
): string {
  const values = [...headersOf(response, "WWW-Authenticate"), ...headersOf(response, "Proxy-Authenticate")];
  const chosen = values.find(
    (v) => (parseDigestHeader(v)?.get("algorithm") ?? "MD5").toUpperCase() === o.algorithm,
  );
  const p = parseDigestHeader(chosen ?? "") ?? new Map<string, string>();
  const realm = o.realm ?? p.get("realm") ?? "";
  const nonce = p.get("nonce") ?? "";
  const nc = o.nc ?? "00000001";
  const cnonce = `c${Math.random().toString(16).slice(2, 10)}`;
  const ha1 = computeHa1(o.username, realm, o.password, o.algorithm);
  const resp = computeDigestResponse({
    ha1,
    algorithm: o.algorithm,
    method: o.method,
    uri: o.uri,
    nonce,
    qop: "auth",
    nc,
    cnonce,
  });
  return `Digest username="${o.username}", realm="${realm}", nonce="${nonce}", uri="${o.uri}", response="${resp}", algorithm=${o.algorithm}, qop=auth, nc=${nc}, cnonce="${cnonce}", opaque="${p.get("opaque") ?? ""}"`;
}

/** A response to a request text (for OPTIONS keepalives): Via, From, To (with a tag), Call-ID, CSeq copied. */
export function responseTo(request: string, status: number, reason: string): string {
  const head = request.split("\r\n\r\n")[0] ?? "";
  const lines = head.split("\r\n").slice(1);
  const keep = lines.filter((l) => /^(via|from|to|call-id|cseq|v|f|t|i):/i.test(l));
  const withTag = keep.map((l) => (/^(to|t):/i.test(l) && !/;tag=/i.test(l) ? `${l};tag=ka${seq}` : l));
  return [`SIP/2.0 ${status} ${reason}`, ...withTag, "Content-Length: 0", "", ""].join("\r\n");
}
