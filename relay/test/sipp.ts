// Runs real sipp processes for the engine's integration tests and benchmarks: free loopback ports,
// one temp dir per run (statistics CSV, response-time trace, error log), parsed results, and a
// process registry so everything started here is killed by PID, even when a test fails.
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Folder holding the sipp scenario files. */
export const SCENARIO_DIR = join(dirname(fileURLToPath(import.meta.url)), "sipp");

const live = new Set<ChildProcess>();

/** Kills (SIGKILL, by PID) every process this module or harness.ts started that is still running. */
export function killAll(): void {
  for (const child of live) killChild(child);
}

function killChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.delete(child);
}

process.once("exit", killAll);

/** Registers a child process so killAll() ends it; harness.ts uses this for the engine process. */
export function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** Kills one tracked child by PID and waits for it to exit; escalates to SIGKILL after graceMs. */
export async function stop(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGKILL",
  graceMs = 3000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  if (child.pid === undefined) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  const timer = setTimeout(() => killChild(child), graceMs);
  await exited;
  clearTimeout(timer);
  live.delete(child);
}

async function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket("udp4");
    sock.once("error", () => resolve(false));
    sock.bind(port, "127.0.0.1", () => sock.close(() => resolve(true)));
  });
}

async function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port that is free for both UDP and TCP right now (ephemeral range, picked by the OS). Another
 * process can take it before the caller binds it: startSipp() retries on a new port when that happens.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const sock = createSocket("udp4");
      sock.once("error", reject);
      sock.bind(0, "127.0.0.1", () => {
        const { port: p } = sock.address();
        sock.close(() => resolve(p));
      });
    });
    if ((await tcpPortFree(port)) && (await udpPortFree(port))) return port;
  }
  throw new Error("no free loopback port found");
}

export interface SippOptions {
  /** Scenario file name in relay/test/sipp (e.g. "uac-invite.xml") or an absolute path. */
  scenario: string;
  /** Remote host:port for a UAC; omit for a UAS. */
  remote?: string;
  /** Local SIP port; picked with freePort() when omitted (and picked again if sipp cannot bind it). */
  port?: number;
  transport?: "udp" | "tcp";
  /** Number of calls after which sipp exits (-m). */
  calls: number;
  /** Calls per second (-r); default 10. */
  rate?: number;
  /** Maximum simultaneous calls (-l). */
  limit?: number;
  /** Global timeout in seconds; reaching it is a failure. Default 20. */
  timeoutSeconds?: number;
  /** Request-URI user (-s). */
  service?: string;
  /** Digest credentials for [authentication] (-au/-ap). */
  auth?: { username: string; password: string };
  /** Generic -key name value pairs (e.g. user/password for uas-register-challenge.xml). */
  keys?: Record<string, string>;
  /** Percentage of packets sipp drops on purpose (-lost), UDP only. */
  lostPercent?: number;
  /** Duration of <pause/> in ms (-d). */
  pauseMs?: number;
  /** Record every response time (-trace_rtt) so p50/p99 can be computed. */
  traceRtt?: boolean;
  /** Keep the temp dir (for debugging); also set by GOSIP_SIPP_KEEP=1, which adds -trace_msg. */
  keepFiles?: boolean;
  extraArgs?: string[];
}

export interface SippStats {
  successful: number;
  failed: number;
  created: number;
  /** Seconds sipp ran, from its statistics. */
  elapsedSeconds: number;
  /** The last statistics row, column name to value. */
  raw: Record<string, string>;
}

export interface SippResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stats: SippStats;
  /** Response times (ms) of response-time counter 1, when traceRtt was set. */
  rtt: number[];
  /** When each of those measurements completed (ms since sipp started), in order. */
  rttTimes: number[];
  /** Unexpected messages and errors sipp logged (-trace_err), trimmed. */
  errors: string;
  /** sipp's stderr plus the tail of its final screen, for failure messages. */
  log: string;
  /** Wall-clock time the process ran, ms. */
  wallMs: number;
}

export interface SippProcess {
  readonly pid: number;
  readonly port: number;
  /** Resolves when sipp exits (or is killed). */
  readonly done: Promise<SippResult>;
  kill(): void;
}

function parseStats(csv: string): SippStats {
  const lines = csv.split("\n").filter((l) => l.trim() !== "");
  const header = (lines[0] ?? "").split(";");
  const last = (lines[lines.length - 1] ?? "").split(";");
  const raw: Record<string, string> = {};
  if (lines.length >= 2) {
    header.forEach((name, i) => {
      raw[name] = last[i] ?? "";
    });
  }
  const num = (name: string): number => Number(raw[name] ?? 0) || 0;
  const elapsed = raw["ElapsedTime(C)"] ?? "00:00:00:000000";
  // sipp prints elapsed time as HH:MM:SS:uuuuuu
  const [h = "0", m = "0", s = "0", us = "0"] = elapsed.split(":");
  return {
    successful: num("SuccessfulCall(C)"),
    failed: num("FailedCall(C)"),
    created: num("TotalCallCreated"),
    elapsedSeconds: Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(us) / 1e6,
    raw,
  };
}

function parseRtt(csv: string): { rtt: number[]; rttTimes: number[] } {
  const rtt: number[] = [];
  const rttTimes: number[] = [];
  for (const line of csv.split("\n")) {
    // Date_ms;response_time_ms;rtd_no
    const [at, ms, rtd] = line.split(";");
    if (rtd?.trim() === "1") {
      const v = Number(ms);
      const t = Number(at);
      if (Number.isFinite(v) && Number.isFinite(t)) {
        rtt.push(v);
        rttTimes.push(t);
      }
    }
  }
  return { rtt, rttTimes };
}

/**
 * Starts sipp and resolves once it holds its SIP and control ports; resolve `done` to get its results. Never
 * rejects: spawn failures show in exitCode/log. The ports come from freePort(), so another process can take one
 * before sipp binds it: sipp then exits at once ("Address already in use") and is started again on new ports,
 * up to `attempts` times (the SIP port only when the caller did not choose it).
 */
export async function startSipp(opts: SippOptions, attempts = 3): Promise<SippProcess> {
  const transport = opts.transport ?? "udp";
  for (let attempt = 1; ; attempt++) {
    const sipp = await spawnSipp(opts, opts.port ?? (await freePort()), await freePort());
    const state = await boundOrExited(sipp, transport);
    if (state !== "exited" || attempt >= attempts) return sipp;
    const result = await sipp.done;
    const retryable = opts.port === undefined ? BIND_FAILURE : CONTROL_BIND_FAILURE;
    if (!retryable.test(result.log)) return sipp;
  }
}

/** sipp's messages when its main (SIP) or remote control socket cannot be bound. */
const BIND_FAILURE = /Unable to bind (?:main|remote control) socket.*Address already in use/;
const CONTROL_BIND_FAILURE = /Unable to bind remote control socket.*Address already in use/;

/**
 * Waits until sipp holds both of its ports ("bound"), or has exited, or 10 s passed (then the caller's own
 * checks report what is wrong). Checked by socket ownership, not by probing the port: a port another process
 * took looks just as busy.
 */
async function boundOrExited(
  sipp: SpawnedSipp,
  transport: "udp" | "tcp",
): Promise<"bound" | "exited" | "timeout"> {
  let exited = false;
  void sipp.done.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) return "exited";
    const owned = await socketsOwnedBy(sipp.pid);
    if (owned.has(`${transport}:${sipp.port}`) && owned.has(`udp:${sipp.controlPort}`)) return "bound";
    await new Promise((r) => setTimeout(r, 10));
  }
  return exited ? "exited" : "timeout";
}

/** "udp:<port>" / "tcp:<port>" of every socket process `pid` holds (Linux /proc; empty when it is gone). */
async function socketsOwnedBy(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m?.[1]) inodes.add(m[1]);
  }
  const owned = new Set<string>();
  if (inodes.size === 0) return owned;
  for (const table of ["udp", "udp6", "tcp", "tcp6"]) {
    const text = await readFile(`/proc/${pid}/net/${table}`, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      const inode = cols[9];
      if (local === undefined || inode === undefined || !inodes.has(inode)) continue;
      const port = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      owned.add(`${table.startsWith("udp") ? "udp" : "tcp"}:${port}`);
    }
  }
  return owned;
}

interface SpawnedSipp extends SippProcess {
  readonly controlPort: number;
}

async function spawnSipp(opts: SippOptions, port: number, controlPort: number): Promise<SpawnedSipp> {
  const dir = await mkdtemp(join(tmpdir(), "gosip-sipp-"));
  const scenario = isAbsolute(opts.scenario) ? opts.scenario : join(SCENARIO_DIR, opts.scenario);
  const args = [
    ...(opts.remote ? [opts.remote] : []),
    "-sf",
    scenario,
    "-i",
    "127.0.0.1",
    "-p",
    String(port),
    "-cp",
    String(controlPort),
    "-t",
    opts.transport === "tcp" ? "t1" : "u1",
    "-m",
    String(opts.calls),
    "-r",
    String(opts.rate ?? 10),
    "-timeout",
    `${opts.timeoutSeconds ?? 20}s`,
    "-timeout_error",
    "-nostdin",
    "-trace_stat",
    "-stf",
    join(dir, "stat.csv"),
    "-fd",
    "1",
    "-trace_err",
    "-error_file",
    join(dir, "errors.log"),
    "-trace_screen",
    "-max_recv_loops",
    "10000",
    "-max_sched_loops",
    "10000",
  ];
  if (opts.limit !== undefined) args.push("-l", String(opts.limit));
  if (opts.service !== undefined) args.push("-s", opts.service);
  if (opts.auth) args.push("-au", opts.auth.username, "-ap", opts.auth.password);
  for (const [k, v] of Object.entries(opts.keys ?? {})) args.push("-key", k, v);
  if (opts.lostPercent !== undefined) args.push("-lost", String(opts.lostPercent));
  if (opts.pauseMs !== undefined) args.push("-d", String(opts.pauseMs));
  if (opts.traceRtt) args.push("-trace_rtt", "-rtt_freq", "1");
  if (opts.extraArgs) args.push(...opts.extraArgs);
  const keep = opts.keepFiles ?? process.env.GOSIP_SIPP_KEEP === "1";
  if (process.env.GOSIP_SIPP_KEEP === "1") args.push("-trace_msg");

  const started = performance.now();
  const child = spawn("sipp", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  track(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString();
  });
  const done = new Promise<SippResult>((resolve) => {
    let settled = false;
    const finish = async (code: number | null, signal: NodeJS.Signals | null): Promise<void> => {
      if (settled) return;
      settled = true;
      const wallMs = performance.now() - started;
      const read = async (name: string): Promise<string> => readFile(join(dir, name), "utf8").catch(() => "");
      const files = await readdir(dir).catch(() => [] as string[]);
      const rttFile = files.find((f) => f.endsWith("_rtt.csv"));
      const screenFile = files.find((f) => f.endsWith("_screen.log"));
      const stats = parseStats(await read("stat.csv"));
      const { rtt, rttTimes } = parseRtt(rttFile ? await read(rttFile) : "");
      const errors = withoutPlannedTimeouts(await read("errors.log")).slice(-4000);
      const screen = screenFile ? (await read(screenFile)).slice(-3000) : "";
      if (!keep) await rm(dir, { recursive: true, force: true });
      resolve({ exitCode: code, signal, stats, rtt, rttTimes, errors, log: `${stderr}\n${screen}`, wallMs });
    };
    child.once("error", (err) => {
      stderr += String(err);
      void finish(null, null);
    });
    child.once("exit", (code, signal) => void finish(code, signal));
  });
  return {
    pid: child.pid ?? -1,
    port,
    controlPort,
    done,
    kill: () => killChild(child),
  };
}

/**
 * sipp logs every receive timeout that jumps to an `ontimeout` label, though a scenario may use one on purpose
 * (uas-answer-linger.xml ends its linger that way): those lines would push real errors out of the kept tail.
 */
function withoutPlannedTimeouts(log: string): string {
  // entries are not newline-terminated: each starts with "YYYY-MM-DD<TAB>HH:MM:SS.us<TAB>epoch: "
  const stamp = String.raw`\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: `;
  const planned = new RegExp(
    String.raw`${stamp}Call-Id: [^,]*, receive timeout on message \S+, jumping to label \d+?(?=${stamp}|\s*$)`,
    "g",
  );
  return log.replace(planned, "");
}

/** Runs sipp to completion. */
export async function runSipp(opts: SippOptions): Promise<SippResult> {
  return (await startSipp(opts)).done;
}

/** Readable one-line summary of a sipp run for assertion messages. */
export function describe(r: SippResult): string {
  return `exit=${r.exitCode} signal=${r.signal} successful=${r.stats.successful} failed=${r.stats.failed}\nerrors:\n${r.errors}\nlog:\n${r.log.slice(-2500)}`;
}

/** Value at quantile q (0..1) of an unsorted sample; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

/** Waits until something listens on a loopback port (sipp UAS readiness, engine child process). */
export async function waitForListening(
  port: number,
  transport: "udp" | "tcp",
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const bound = transport === "udp" ? !(await udpPortFree(port)) : await tcpAccepts(port);
    if (bound) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listening on ${transport} port ${port} within ${timeoutMs} ms`);
}

async function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

/**
 * Starts a sipp UAS on a free port and resolves once it listens (startSipp picks a new port if the first one was
 * taken before sipp could bind it); throws if it could not start.
 */
export async function startSippServer(
  opts: Omit<SippOptions, "port" | "remote">,
  attempts = 3,
): Promise<SippProcess> {
  const sipp = await startSipp(opts, attempts);
  const early = await Promise.race([
    sipp.done,
    waitForListening(sipp.port, opts.transport ?? "udp", 10_000).then(() => undefined),
  ]).catch(() => "not listening" as const);
  if (early === undefined) return sipp;
  sipp.kill();
  const why = early === "not listening" ? describe(await sipp.done) : describe(early);
  throw new Error(`sipp UAS ${opts.scenario} did not start after ${attempts} attempts:\n${why}`);
}
