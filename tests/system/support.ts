/**
 * Whole-system test parts, all real processes on loopback:
 * - `SystemEdge`: the Node edge (the same `startNodeEdge` as `npm start`) on a fixed
 *   port over a temp data directory, restartable on the same port and database,
 *   with an admin session for API calls;
 * - `RelayProcess`: `npm run relay` as a child (engine + PBX app + rtpengine child)
 *   linked to the edge with a relay token;
 * - `BaresipPhone`: baresip registering with its device's digest credentials,
 *   auto-answering, playing a sine as its microphone and writing what it hears to
 *   WAV (sndfile), driven over ctrl_tcp;
 * - `TwilioSide`: a second SIP engine + drachtio-srf app playing Twilio: the
 *   inbound trunk (answers the relay's 407 with the inbound credentials) and the
 *   SIP Domain for outbound calls (407 with its credentials, then 200), each
 *   leg's media an RtpPeer that sends a tone and analyses what it hears.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { computeDigestResponse, computeHa1 } from "@gosip/drizzle";
import Srf from "drachtio-srf";
import { type NodeEdge, startNodeEdge } from "../../edge/src/platform/node/server.ts";
import type { Logger } from "../../edge/src/platform/types.ts";
import { type Engine, startEngine } from "../../relay/src/engine/index.ts";
import { freeUdpPort } from "../../relay/src/pbx/media/rtpengine-process.ts";
import { RtpPeer, sdpMediaTarget } from "../../relay/src/testing/rtp-peer.ts";
import { wavTo8k } from "../../relay/src/testing/wav.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const tsx = join(repo, "node_modules/.bin/tsx");

export const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value (not undefined) or the deadline passes. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await wait(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`,
  );
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

// ——————————————————————————————————————— edge ———————————————————————————————————————

export interface CreatedDevice {
  id: string;
  extension: string;
  sipUsername: string;
  sipPassword: string;
}

export class SystemEdge {
  private edge: NodeEdge | undefined;
  private cookie = "";

  /** The admin session cookie, for requests made outside `api()`. */
  get session(): string {
    return this.cookie;
  }

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly extraEnv: Record<string, string>,
  ) {}

  /** `env` adds variables to the edge's environment (e.g. TWILIO_API_BASE for the Twilio simulator). */
  static async start(opts: { env?: Record<string, string> } = {}): Promise<SystemEdge> {
    const dataDir = await mkdtemp(join(tmpdir(), "gosip-system-"));
    const e = new SystemEdge(dataDir, await freeTcpPort(), opts.env ?? {});
    await e.up();
    return e;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts) the edge on the same port and database. */
  async up(): Promise<void> {
    this.edge = await startNodeEdge(
      {
        PORT: String(this.port),
        HOST: "127.0.0.1",
        GOSIP_DATA_DIR: this.dataDir,
        PUBLIC_URL: this.url,
        LOG_LEVEL: "warn",
        ...this.extraEnv,
      },
      { logger: quiet },
    );
  }

  async down(): Promise<void> {
    await this.edge?.close(200);
    this.edge = undefined;
  }

  async close(): Promise<void> {
    await this.down();
    await rm(this.dataDir, { recursive: true, force: true });
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(method !== "GET" ? { "X-GoSIP-CSRF": "1" } : {}),
        ...(this.cookie ? { cookie: this.cookie } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  /** GET/POST that must succeed; returns the JSON body. */
  async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.api(method, path, body);
    if (r.status < 200 || r.status > 299) {
      throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.json)}`);
    }
    return r.json as T;
  }

  /** First-run setup, then a signed-in admin session. */
  async signInAdmin(): Promise<void> {
    const creds = { email: "owner@example.com", password: "a long passphrase 42" };
    await this.ok("POST", "/api/setup", creds);
    const res = await fetch(`${this.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-GoSIP-CSRF": "1" },
      body: JSON.stringify(creds),
    });
    if (res.status !== 200) throw new Error(`login → ${res.status}`);
    const set = res.headers.get("set-cookie") ?? "";
    this.cookie = set.split(";")[0] ?? "";
  }

  async createDevice(name: string, extension: string): Promise<CreatedDevice> {
    return this.ok<CreatedDevice>("POST", "/api/devices", { name, extension });
  }
}

// ——————————————————————————————————————— relay ———————————————————————————————————————

export interface RelayOptions {
  edgeUrl: string;
  token: string;
  dataDir: string;
  sipPort: number;
  metricsPort: number;
  twilioSipProxy: string;
  rtpPorts: [number, number];
}

export class RelayProcess {
  private child: ChildProcess | undefined;
  output = "";

  constructor(readonly opts: RelayOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts `npm run relay`'s entry and waits for its "relay started" line. */
  async start(): Promise<void> {
    const o = this.opts;
    const child = spawn(tsx, [join(repo, "relay/src/main.ts")], {
      cwd: join(repo, "relay"),
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        EDGE_URL: o.edgeUrl,
        RELAY_TOKEN: o.token,
        RELAY_DATA_DIR: o.dataDir,
        ENGINE_SECRET: "system-test-secret",
        ENGINE_PORT: "0",
        SIP_HOST: "127.0.0.1",
        SIP_PORT: String(o.sipPort),
        RTP_PORT_MIN: String(o.rtpPorts[0]),
        RTP_PORT_MAX: String(o.rtpPorts[1]),
        RELAY_METRICS_PORT: String(o.metricsPort),
        TWILIO_SIP_PROXY: o.twilioSipProxy,
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const started = this.output.length;
    const onData = (d: Buffer): void => {
      this.output += d.toString();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    await until("the relay's 'relay started' line", 60_000, async () => {
      if (child.exitCode !== null)
        throw new Error(`relay exited ${child.exitCode}: ${this.output.slice(-2000)}`);
      return this.output.slice(started).includes('"msg":"relay started"') ? true : undefined;
    });
  }

  /** SIGTERM (clean stop) or SIGKILL; waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill("SIGKILL"), 8000);
    await gone;
    clearTimeout(t);
  }

  /** The pid of the relay's rtpengine (from /proc: a descendant of the relay process; tsx runs node under it). */
  async rtpenginePid(): Promise<number | undefined> {
    const relayPid = this.child?.pid;
    if (!relayPid) return undefined;
    const procs = new Map<number, { name: string; parent: number }>();
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const m = /^\d+ \((.*)\) \S (\d+)/.exec(await readFile(`/proc/${entry}/stat`, "utf8"));
        if (m?.[1] !== undefined) procs.set(Number(entry), { name: m[1], parent: Number(m[2]) });
      } catch {
        // the process ended while we looked
      }
    }
    const descends = (pid: number): boolean => {
      for (
        let p = procs.get(pid)?.parent, hops = 0;
        p !== undefined && hops < 10;
        p = procs.get(p)?.parent, hops++
      )
        if (p === relayPid) return true;
      return false;
    };
    for (const [pid, p] of procs) if (p.name === "rtpengine" && descends(pid)) return pid;
    return undefined;
  }

  /** WAV files the relay still keeps in its recording directory. */
  async localRecordings(): Promise<string[]> {
    const dir = join(this.opts.dataDir, "recordings", "wav");
    return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".wav"));
  }

  async metrics(): Promise<Record<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.opts.metricsPort}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const m = /^(gosip_[a-z_]+) (\S+)$/.exec(line);
      if (m?.[1] && m[2]) out[m[1]] = Number(m[2]);
    }
    return out;
  }
}

// ——————————————————————————————————————— baresip ———————————————————————————————————————

export class BaresipPhone {
  private child: ChildProcess | undefined;
  output = "";
  private ctrlPort = 0;

  private constructor(
    readonly dir: string,
    readonly device: CreatedDevice,
    readonly relaySipPort: number,
    readonly toneHz: number,
  ) {}

  /** Starts baresip registered as `device` at the relay; resolves once it is running. */
  static async start(device: CreatedDevice, relaySipPort: number, toneHz: number): Promise<BaresipPhone> {
    const dir = await mkdtemp(join(tmpdir(), "gosip-phone-"));
    const phone = new BaresipPhone(dir, device, relaySipPort, toneHz);
    await phone.launch();
    return phone;
  }

  private async launch(): Promise<void> {
    const sipPort = await freeUdpPort("127.0.0.1");
    this.ctrlPort = await freeTcpPort();
    await mkdir(join(this.dir, "wav"), { recursive: true });
    const config = [
      "module_path /usr/lib/baresip/modules",
      `sip_listen 127.0.0.1:${sipPort}`,
      // Use loopback for SIP and RTP (baresip otherwise picks the default interface and finds no transport).
      "net_interface 127.0.0.1",
      "net_af ipv4",
      "module g711.so",
      "module ausine.so",
      "module aubridge.so",
      "module sndfile.so",
      "module account.so",
      "module menu.so",
      "module ctrl_tcp.so",
      `ctrl_tcp_listen 127.0.0.1:${this.ctrlPort}`,
      `audio_source ausine,${this.toneHz}`,
      "audio_player aubridge,sink",
      "ausrc_srate 48000",
      "ausrc_channels 2",
      `snd_path ${join(this.dir, "wav")}`,
      "rtp_ports 34000-34999",
      "",
    ].join("\n");
    await writeFile(join(this.dir, "config"), config);
    const d = this.device;
    await writeFile(
      join(this.dir, "accounts"),
      `<sip:${d.sipUsername}@127.0.0.1:${this.relaySipPort};transport=udp>;auth_pass=${d.sipPassword};regint=3600;answermode=auto;audio_codecs=PCMU\n`,
    );
    await writeFile(join(this.dir, "contacts"), "");
    const child = spawn("baresip", ["-f", this.dir], { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    const onData = (b: Buffer): void => {
      this.output += b.toString();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    await until("baresip to start", 15_000, async () => {
      if (child.exitCode !== null) throw new Error(`baresip exited: ${this.output}`);
      return /baresip is ready/i.test(this.output) ? true : undefined;
    });
  }

  /** Sends one ctrl_tcp command (netstring-framed JSON). */
  async command(command: string, params = ""): Promise<void> {
    const json = JSON.stringify({ command, params, token: randomBytes(4).toString("hex") });
    await new Promise<void>((resolve, reject) => {
      const sock = connect(this.ctrlPort, "127.0.0.1", () => {
        sock.write(`${Buffer.byteLength(json)}:${json},`);
        setTimeout(() => {
          sock.end();
          resolve();
        }, 200);
      });
      sock.once("error", reject);
    });
  }

  /** What the phone heard in its most recent call, decoded to 8 kHz PCM (sndfile's *-dec.wav). */
  async lastHeard(): Promise<Int16Array> {
    const dir = join(this.dir, "wav");
    const files = (await readdir(dir)).filter((f) => f.endsWith("-dec.wav")).sort();
    const last = files[files.length - 1];
    if (!last) return new Int16Array(0);
    return wavTo8k(await readFile(join(dir, last)));
  }

  async clearRecordings(): Promise<void> {
    const dir = join(this.dir, "wav");
    for (const f of await readdir(dir)) await rm(join(dir, f), { force: true });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(t);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ——————————————————————————————————————— Twilio ———————————————————————————————————————

export const SIP_DOMAIN = "gosip-system.sip.twilio.com";

export interface TwilioLeg {
  dialog: Srf.Dialog;
  peer: RtpPeer;
  /** The SDP the relay sent for this leg (where to send RTP). */
  remoteSdp: string;
  /** Resolves when the relay ends the leg with BYE. */
  ended: Promise<void>;
}

interface DomainCall {
  requestUri: string;
  from: string;
  headers: Record<string, string>;
  leg: TwilioLeg;
}

function digestParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.replace(/^Digest\s+/i, "").matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) {
    if (m[1]) out[m[1].toLowerCase()] = m[3] ?? m[2] ?? "";
  }
  return out;
}

export class TwilioSide {
  readonly domainCalls: DomainCall[] = [];
  private readonly peers: RtpPeer[] = [];
  private domainWaiters: ((c: DomainCall) => void)[] = [];

  private constructor(
    private readonly engine: Engine,
    private readonly srf: Srf,
    readonly domainCreds: { username: string; password: string },
  ) {}

  static async start(domainCreds: { username: string; password: string }): Promise<TwilioSide> {
    const engine = await startEngine({
      adminPort: 0,
      secret: "twilio-side-secret",
      sipHost: "127.0.0.1",
      sipPort: 0,
      logLevel: "silent",
    });
    const srf = new Srf();
    srf.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      (srf.on.bind(srf) as (e: string, fn: (err: unknown) => void) => void)("connect", (err) =>
        err ? reject(err) : resolve(),
      );
      void srf.connect({ host: "127.0.0.1", port: engine.adminPort, secret: "twilio-side-secret" });
    });
    const side = new TwilioSide(engine, srf, domainCreds);
    srf.invite((req, res) => {
      side.onDomainInvite(req, res).catch(() => res.send(500));
    });
    return side;
  }

  get sipPort(): number {
    return this.engine.sipPort;
  }

  /** The SIP Domain: 407 first, then the credential check, then 200 with an RtpPeer answering. */
  private async onDomainInvite(req: Srf.SrfRequest, res: Srf.SrfResponse): Promise<void> {
    const auth = req.get("Proxy-Authorization");
    const realm = "sip.twilio.com";
    if (!auth) {
      res.send(407, {
        headers: {
          "Proxy-Authenticate": `Digest realm="${realm}", nonce="${randomBytes(12).toString("hex")}", algorithm=MD5, qop="auth"`,
        },
      });
      return;
    }
    const p = digestParams(auth);
    const expected = computeDigestResponse({
      ha1: computeHa1(this.domainCreds.username, realm, this.domainCreds.password, "MD5"),
      algorithm: "MD5",
      method: "INVITE",
      uri: p.uri ?? "",
      nonce: p.nonce ?? "",
      ...(p.qop === "auth" ? { qop: "auth" as const, nc: p.nc ?? "", cnonce: p.cnonce ?? "" } : {}),
    });
    if (p.username !== this.domainCreds.username || p.response !== expected) {
      res.send(403);
      return;
    }
    const peer = await RtpPeer.open();
    this.peers.push(peer);
    const dialog = await this.srf.createUAS(req, res, { localSdp: peer.sdp({ codec: "PCMU", dtmf: true }) });
    const leg: TwilioLeg = {
      dialog,
      peer,
      remoteSdp: req.body,
      ended: new Promise<void>((r) => dialog.on("destroy", () => r())),
    };
    const call: DomainCall = {
      requestUri: req.uri,
      from: req.get("From"),
      headers: { "x-gosip-device": req.get("X-GoSIP-Device") ?? "" },
      leg,
    };
    this.domainCalls.push(call);
    for (const w of this.domainWaiters.splice(0)) w(call);
  }

  /** The next call that reaches the SIP Domain. */
  nextDomainCall(timeoutMs = 15_000): Promise<DomainCall> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no call reached the SIP Domain")), timeoutMs);
      this.domainWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /**
   * Twilio's <Dial><Sip> into the relay: INVITE sip:<ext>@relay, answering the relay's 407 with the
   * inbound credentials; resolves once the relay's 200 arrived.
   */
  async callRelay(
    relaySipPort: number,
    extension: string,
    opts: { from: string; callSid: string; creds: { username: string; password: string } },
  ): Promise<TwilioLeg> {
    const peer = await RtpPeer.open();
    this.peers.push(peer);
    const dialog = await this.srf.createUAC(`sip:${extension}@127.0.0.1:${relaySipPort}`, {
      localSdp: peer.sdp({ codec: "PCMU", dtmf: true }),
      auth: opts.creds,
      headers: {
        From: `<sip:${opts.from}@${SIP_DOMAIN}>`,
        "X-Twilio-CallSid": opts.callSid,
      },
    });
    return {
      dialog,
      peer,
      remoteSdp: dialog.remote.sdp,
      ended: new Promise<void>((r) => dialog.on("destroy", () => r())),
    };
  }

  /** Sends `hz` for `ms` on a leg, and returns what the leg heard meanwhile (frequency, packets). */
  async talk(
    leg: TwilioLeg,
    hz: number,
    ms: number,
  ): Promise<{ sent: number; heardHz: number | undefined; heardPackets: number }> {
    leg.peer.reset();
    const sent = await leg.peer.sendTone(hz, ms, sdpMediaTarget(leg.remoteSdp));
    const r = leg.peer.received();
    return { sent, heardHz: r.frequency, heardPackets: r.audioPackets };
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.close();
    this.srf.disconnect();
    await this.engine.close();
  }
}
