// rtpengine as a supervised child process of the relay: Debian's rtpengine-daemon in userspace mode (no
// kernel module), its ng control port on loopback, its log piped into pino. If it dies unexpectedly it is
// restarted on the same ng port, so a MediaService keeps working once 'ready' fires again; the backoff starts
// at 1 s and doubles (to at most 30 s) while it keeps dying within 30 s of starting. The calls it held are
// gone (rtpengine keeps sessions in memory only): MediaService.watch() reports them as lost.
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { EventEmitter } from "node:events";
import { mkdir } from "node:fs/promises";
import pino, { type Logger } from "pino";
import rtpengine from "rtpengine-client";

export interface RtpengineOptions {
  /** The daemon; default /usr/bin/rtpengine. */
  binary?: string;
  /** Local address rtpengine binds RTP ports on (and puts in SDP unless advertiseAddress is set). */
  interface: string;
  /** Address put into SDP instead of `interface` (the public address of a relay behind NAT). */
  advertiseAddress?: string;
  /** ng control address; loopback by default (the ng protocol has no authentication). */
  ngHost?: string;
  /** ng control UDP port; 0 or absent = a free port picked at start (kept across restarts). */
  ngPort?: number;
  /** RTP port range, default 30000-30200. */
  portMin?: number;
  portMax?: number;
  /** Spool directory for pcap recordings (pcaps/, metadata/, tmp/ inside); recording disabled without it. */
  recordingDir?: string;
  /** Seconds without any RTP before rtpengine drops a call (default 60). */
  timeout?: number;
  /** Same for a call on hold (sendonly/inactive), default 3600. */
  silentTimeout?: number;
  /** rtpengine's syslog-style level 0-7 (default 5, notice: no per-call chatter). */
  logLevel?: number;
  logger?: Logger;
  /** How long the first start may take before startRtpengine rejects (default 10 s). */
  startTimeoutMs?: number;
  /** Extra command-line arguments, appended last. */
  extraArgs?: string[];
}

export interface RtpengineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface RtpengineEvents {
  /** The daemon died unexpectedly (a restart is scheduled). */
  exit: [RtpengineExit];
  /** The daemon (re)started and answers ng ping. */
  ready: [];
  /** A restart attempt failed; the next one follows after the backoff. */
  error: [Error];
}

export interface RtpengineProcess extends EventEmitter<RtpengineEvents> {
  /** The running daemon's pid (undefined while it is being restarted or after stop). */
  readonly pid: number | undefined;
  readonly ng: { readonly host: string; readonly port: number };
  /** The command line it was started with (without the binary). */
  readonly args: readonly string[];
  /** Restarts so far. */
  readonly restarts: number;
  /** Ends the daemon for good: SIGTERM, SIGKILL after 3 s. */
  stop(): Promise<void>;
}

const BACKOFF_MIN_MS = 1000;
/** A daemon that ran this long before dying starts its backoff again from the minimum. */
const STABLE_AFTER_MS = 30_000;
const BACKOFF_MAX_MS = 30_000;
const KILL_AFTER_MS = 3000;
const PING_INTERVAL_MS = 50;

// Children still running when the relay's process exits (however it exits) are killed, so a crashed relay
// or test run never leaves an rtpengine holding the RTP ports.
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) if (child.pid !== undefined) child.kill("SIGKILL");
});

/** A UDP port on `host` that is free right now (bound then released; rtpengine binds it next). */
export function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket(host.includes(":") ? "udp6" : "udp4");
    s.once("error", reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The daemon's command line for these options. */
export function rtpengineArgs(opts: RtpengineOptions, ngHost: string, ngPort: number): string[] {
  const iface = opts.advertiseAddress ? `${opts.interface}!${opts.advertiseAddress}` : opts.interface;
  const args = [
    // Never read /etc/rtpengine/rtpengine.conf: every setting comes from here.
    "--config-file=none",
    "--table=-1",
    "--foreground",
    "--log-stderr",
    "--no-log-timestamps",
    `--log-level=${opts.logLevel ?? 5}`,
    `--listen-ng=${ngHost.includes(":") ? `[${ngHost}]` : ngHost}:${ngPort}`,
    `--interface=${iface}`,
    `--port-min=${opts.portMin ?? 30000}`,
    `--port-max=${opts.portMax ?? 30200}`,
    `--timeout=${opts.timeout ?? 60}`,
    `--silent-timeout=${opts.silentTimeout ?? 3600}`,
    // Sessions go the moment the B2BUA deletes them, so their ports are free for the next call.
    "--delete-delay=0",
    // Symmetric RTP: within 3 s of each offer/answer rtpengine follows the source of each incoming packet,
    // then locks onto it, so a phone behind NAT gets its audio at the address it really sends from.
    "--endpoint-learning=delayed",
  ];
  if (opts.recordingDir) args.push(`--recording-dir=${opts.recordingDir}`, "--recording-method=pcap");
  args.push(...(opts.extraArgs ?? []));
  return args;
}

// rtpengine's stderr lines look like "NOTICE: [core] Startup complete, ..." (or with a "[callid port]:"
// prefix); their level decides pino's.
const LINE = /^(EMERG|ALERT|CRIT|ERR|ERROR|WARNING|WARN|NOTICE|INFO|DEBUG): (.*)$/;
// Lines about one call ("[call-id]: ...") are per-call chatter at any level below warning: debug.
const CALL_SCOPED = /^\[[^\]]*\]: /;
function logLine(log: Logger, line: string): void {
  const m = LINE.exec(line);
  const msg = m?.[2] ?? line;
  let level = m?.[1];
  if ((level === "NOTICE" || level === "INFO") && CALL_SCOPED.test(msg)) level = "INFO";
  switch (level) {
    case "EMERG":
    case "ALERT":
    case "CRIT":
    case "ERR":
    case "ERROR":
      log.error(msg);
      break;
    case "WARNING":
    case "WARN":
      log.warn(msg);
      break;
    case "NOTICE":
      log.info(msg);
      break;
    case "INFO":
      log.debug(msg);
      break;
    default:
      log.trace(msg);
  }
}

class Supervisor extends EventEmitter<RtpengineEvents> implements RtpengineProcess {
  readonly ng: { readonly host: string; readonly port: number };
  readonly args: readonly string[];
  restarts = 0;
  private child: ChildProcess | undefined;
  /** The child that passed its ping; only its death counts as a crash. */
  private ready: ChildProcess | undefined;
  private stopped = false;
  private backoff = BACKOFF_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly pinger = new rtpengine.Client({ localPort: 0, localAddress: "127.0.0.1", timeout: 200 });
  private readonly tail: string[] = [];
  private readyAt = 0;

  constructor(
    private readonly binary: string,
    ng: { host: string; port: number },
    args: string[],
    private readonly log: Logger,
  ) {
    super();
    this.ng = ng;
    this.args = args;
    // A late pong after a ping timeout is reported as an 'error' by the client library; it is harmless.
    this.pinger.on("error", () => {});
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the daemon and resolves once it answers ping; rejects if it exits or times out first. */
  async launch(timeoutMs: number): Promise<void> {
    const child = spawn(this.binary, [...this.args], { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    running.add(child);
    let exited: RtpengineExit | undefined;
    let spawnError: Error | undefined;
    child.once("error", (err) => {
      spawnError = err;
    });
    let buf = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl).trimEnd();
        buf = buf.slice(nl + 1);
        if (line) {
          logLine(this.log, line);
          this.tail.push(line);
          if (this.tail.length > 20) this.tail.shift();
        }
        nl = buf.indexOf("\n");
      }
    });
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      if (this.child === child) this.child = undefined;
      if (!this.stopped && this.ready === child) {
        this.ready = undefined;
        // A crash loop (starts, dies at once) keeps doubling the wait; a long-lived daemon restarts at once.
        if (Date.now() - this.readyAt >= STABLE_AFTER_MS) this.backoff = BACKOFF_MIN_MS;
        this.log.error(
          { code, signal, retryInMs: this.backoff },
          "rtpengine exited unexpectedly; restarting",
        );
        this.emit("exit", { code, signal });
        this.scheduleRestart();
      }
    });

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError) throw new Error(`cannot start ${this.binary}: ${spawnError.message}`);
      if (exited) {
        throw new Error(
          `rtpengine exited during start (code ${exited.code}, signal ${exited.signal}): ${this.tail.slice(-5).join(" | ")}`,
        );
      }
      if (this.stopped) throw new Error("rtpengine stopped during start");
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`rtpengine did not answer ng ping within ${timeoutMs} ms`);
      }
      try {
        const r = await this.pinger.ping(this.ng);
        if (r.result === "pong") break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, PING_INTERVAL_MS));
    }
    this.ready = child;
    this.readyAt = Date.now();
    this.log.info({ pid: child.pid, ng: `${this.ng.host}:${this.ng.port}` }, "rtpengine ready");
    this.emit("ready");
  }

  private scheduleRestart(): void {
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.restarts++;
      this.launch(10_000).catch((err: Error) => {
        if (this.stopped) return;
        this.log.error({ err: err.message }, "rtpengine restart failed");
        // An 'error' event without a listener would throw; the supervisor keeps trying either way.
        if (this.listenerCount("error") > 0) this.emit("error", err);
        this.scheduleRestart();
      });
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.pinger.close();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
    await gone;
    clearTimeout(timer);
  }
}

/** Starts rtpengine and resolves once it answers an ng ping. */
export async function startRtpengine(opts: RtpengineOptions): Promise<RtpengineProcess> {
  const log = (opts.logger ?? pino({ name: "rtpengine", level: "info" })).child({ component: "rtpengine" });
  const ngHost = opts.ngHost ?? "127.0.0.1";
  if (opts.recordingDir) await mkdir(opts.recordingDir, { recursive: true });
  const fixedPort = opts.ngPort ?? 0;
  // A picked port can be taken by someone else between our release and rtpengine's bind: try a few.
  for (let attempt = 0; ; attempt++) {
    const ngPort = fixedPort || (await freeUdpPort(ngHost));
    const args = rtpengineArgs(opts, ngHost, ngPort);
    const sup = new Supervisor(
      opts.binary ?? "/usr/bin/rtpengine",
      { host: ngHost, port: ngPort },
      args,
      log,
    );
    try {
      await sup.launch(opts.startTimeoutMs ?? 10_000);
      return sup;
    } catch (err) {
      await sup.stop();
      if (fixedPort !== 0 || attempt >= 2) throw err;
    }
  }
}
