// Test harness for the SIP engine: starts the engine in-process (startEngine, Contract 3) or as a child
// process (relay/src/engine/main.ts as `npm run engine` does, or relay/test/engine-child.ts with short timers
// and GC'd memory readings, for the crash and memory tests), connects unmodified drachtio-srf applications
// to it, and cleans up everything it started (by PID) even when a test fails. sipp helpers: ./sipp.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Srf from "drachtio-srf";
import type { Engine, EngineOptions, EngineStats } from "../src/engine/index.ts";
import { killAll, stop, track } from "./sipp.ts";

export * from "./sipp.ts";

/** USER_HZ of Linux /proc accounting (100 on every mainstream architecture). */
const CLOCK_TICKS_PER_SECOND = 100;

const RELAY_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface TestEngine {
  /** host:port of the engine's SIP listener (UDP and TCP). */
  readonly sipTarget: string;
  readonly sipPort: number;
  readonly adminPort: number;
  readonly secret: string;
  /** Connects a new drachtio-srf application to the engine; setup installs its handlers first. */
  connectApp(setup?: (srf: Srf) => void): Promise<Srf>;
  /** Disconnects the apps and stops the engine. */
  close(): Promise<void>;
}

/**
 * Connects an unmodified drachtio-srf app to a drachtio server (our engine) and resolves once the engine has
 * processed the app's routes, so a request sent right after is routed to it.
 */
export async function connectSrf(
  host: string,
  port: number,
  secret: string,
  setup?: (srf: Srf) => void,
  timeoutMs = 10_000,
): Promise<Srf> {
  const srf = new Srf();
  // Handlers installed before connect() are routed as part of the login.
  setup?.(srf);
  // srf turns an unhandled 'error' into an exception; a failed connect is reported through 'connect'.
  srf.on("error", () => undefined);
  const connected = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`drachtio-srf did not connect within ${timeoutMs} ms`)),
      timeoutMs,
    );
    srf.on("connect", (err: Error | null, hostport: string) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(hostport);
    });
  });
  void srf.connect({ host, port, secret });
  try {
    await routesLanded(srf, sipTargetOf(await connected));
  } catch (err) {
    disconnectQuietly(srf);
    throw err;
  }
  return srf;
}

/** The first host:port of the hostports a drachtio server sends at login ("udp/127.0.0.1:5060,tcp/..."). */
function sipTargetOf(hostports: string): string {
  const first = hostports.split(",")[0] ?? "";
  return first.slice(first.indexOf("/") + 1);
}

/**
 * Resolves once the engine has processed the routes `srf` sent at login. srf writes its `route` frames just
 * before it emits 'connect', but the engine may read a SIP request before that TCP data (an in-process engine
 * under load does). The engine handles one app's frames in order, so the answer to a later request of the app
 * proves the routes landed: a request to the engine's own SIP address (`sipTarget`, host:port), which the
 * engine refuses without sending anything ("can not send request to myself", as drachtio-server does).
 */
export async function routesLanded(srf: Srf, sipTarget: string): Promise<void> {
  const send = srf.request.bind(srf) as unknown as (
    uri: string,
    opts: { method: string },
    callback: (err: unknown) => void,
  ) => void;
  await new Promise<void>((resolve, reject) => {
    send(`sip:route-fence@${sipTarget}`, { method: "OPTIONS" }, (err) => {
      if (String(err).includes("can not send request to myself")) resolve();
      else
        reject(
          new Error(`route fence: expected the engine to refuse a request to itself, got ${String(err)}`),
        );
    });
  });
}

function disconnectQuietly(srf: Srf): void {
  try {
    srf.disconnect();
  } catch {
    // not connected
  }
}

/** Starts the engine in this process on ephemeral loopback ports. */
export async function startTestEngine(options: Partial<EngineOptions> = {}): Promise<TestEngine> {
  const secret = randomBytes(12).toString("hex");
  // Loaded on demand so tools that only run the engine as a child process (the benchmark) do not load it here.
  const { startEngine } = await import("../src/engine/index.ts");
  const engine: Engine = await startEngine({
    adminHost: "127.0.0.1",
    adminPort: 0,
    secret,
    sipHost: "127.0.0.1",
    sipPort: 0,
    logLevel: "warn",
    ...options,
  });
  const apps: Srf[] = [];
  return {
    sipTarget: `127.0.0.1:${engine.sipPort}`,
    sipPort: engine.sipPort,
    adminPort: engine.adminPort,
    secret,
    async connectApp(setup) {
      const srf = await connectSrf("127.0.0.1", engine.adminPort, secret, setup);
      apps.push(srf);
      return srf;
    },
    async close() {
      for (const srf of apps) disconnectQuietly(srf);
      await engine.close();
    },
  };
}

export interface EngineProcess extends TestEngine {
  readonly pid: number;
  readonly child: ChildProcess;
  /** stderr and stdout of the engine so far (tail), for failure messages. */
  output(): string;
  /** Resident set size of the engine process in kB, from /proc/<pid>/status. */
  rssKb(): Promise<number>;
  /** CPU time (user + system) the engine process used so far, ms, from /proc/<pid>/stat. */
  cpuMs(): Promise<number>;
  /** Engine.stats() of the engine process (test entry only). */
  engineStats(): Promise<EngineStats | undefined>;
  /** GC pauses in the engine process so far (test entry only). */
  gcStats(): Promise<{ count: number; totalMs: number; maxMs: number; over5ms: number } | undefined>;
  /** After a full GC in the engine process: its memoryUsage() (test entry only, undefined for the CLI). */
  memory(): Promise<NodeJS.MemoryUsage | undefined>;
  alive(): boolean;
}

export interface EngineProcessOptions {
  /** "cli": relay/src/engine/main.ts exactly as `npm run engine`; "test": relay/test/engine-child.ts (timers, GC). */
  entry?: "cli" | "test";
  /** SIP timers in ms (test entry only). */
  timers?: { T1?: number; T2?: number; T4?: number };
  env?: Record<string, string>;
}

/**
 * Starts the engine as a separate process on ephemeral loopback ports: it binds port 0 and reports what it got
 * (the test entry over IPC, main.ts in its "engine started" log line), so no other process can take the ports
 * between picking and binding them.
 */
export async function startEngineProcess(options: EngineProcessOptions = {}): Promise<EngineProcess> {
  const entry = options.entry ?? "cli";
  const secret = randomBytes(12).toString("hex");
  const script =
    entry === "cli" ? join(RELAY_DIR, "src/engine/main.ts") : join(RELAY_DIR, "test/engine-child.ts");
  const timerEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.timers ?? {})) timerEnv[`TEST_${k}`] = String(v);
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", script], {
    cwd: RELAY_DIR,
    env: {
      ...process.env,
      ENGINE_PORT: "0",
      ENGINE_SECRET: secret,
      SIP_PORT: "0",
      SIP_HOST: "127.0.0.1",
      // main.ts reports its ports only in its "engine started" info line (the one info line the engine logs)
      LOG_LEVEL: entry === "cli" ? "info" : "warn",
      ...timerEnv,
      ...options.env,
    },
    stdio: entry === "test" ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
  });
  track(child);
  let out = "";
  const collect = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = once(child, "exit").then(() => {
    throw new Error(`engine process exited during start-up:\n${out}`);
  });
  exited.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`engine process did not start within 20 s:\n${out}`)), 20_000);
  });
  let ports: { adminPort: number; sipPort: number };
  try {
    ports = await Promise.race([
      entry === "test" ? readyMessage(child) : startedLine(child),
      exited,
      timedOut,
    ]);
  } catch (err) {
    await stop(child, "SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const { adminPort, sipPort } = ports;
  const apps: Srf[] = [];
  return {
    pid: child.pid ?? -1,
    child,
    sipTarget: `127.0.0.1:${sipPort}`,
    sipPort,
    adminPort,
    secret,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    async rssKb() {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8");
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      return match?.[1] ? Number(match[1]) : Number.NaN;
    },
    async cpuMs() {
      const stat = await readFile(`/proc/${child.pid}/stat`, "utf8");
      // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15 (clock ticks).
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(fields[11]) + Number(fields[12]);
      return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
    },
    async engineStats() {
      if (entry !== "test" || !child.connected) return undefined;
      return new Promise<EngineStats | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 5000);
        const onMessage = (msg: unknown): void => {
          const stats = (msg as { engineStats?: EngineStats }).engineStats;
          if (!stats) return;
          clearTimeout(timer);
          child.off("message", onMessage);
          resolve(stats);
        };
        child.on("message", onMessage);
        child.send("stats");
      });
    },
    async gcStats() {
      if (entry !== "test" || !child.connected) return undefined;
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 5000);
        const onMessage = (msg: unknown): void => {
          const stats = (
            msg as { gcStats?: { count: number; totalMs: number; maxMs: number; over5ms: number } }
          ).gcStats;
          if (!stats) return;
          clearTimeout(timer);
          child.off("message", onMessage);
          resolve(stats);
        };
        child.on("message", onMessage);
        child.send("gc-stats");
      });
    },
    async memory() {
      if (entry !== "test" || !child.connected) return undefined;
      return new Promise<NodeJS.MemoryUsage | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 5000);
        const onMessage = (msg: unknown): void => {
          const memory = (msg as { memory?: NodeJS.MemoryUsage }).memory;
          if (!memory) return;
          clearTimeout(timer);
          child.off("message", onMessage);
          resolve(memory);
        };
        child.on("message", onMessage);
        child.send("memory");
      });
    },
    async connectApp(setup) {
      const srf = await connectSrf("127.0.0.1", adminPort, secret, setup);
      apps.push(srf);
      return srf;
    },
    async close() {
      for (const srf of apps) disconnectQuietly(srf);
      await stop(child, "SIGTERM");
    },
  };
}

/** The { ready: { adminPort, sipPort } } IPC message engine-child.ts sends once it listens. */
function readyMessage(child: ChildProcess): Promise<{ adminPort: number; sipPort: number }> {
  return new Promise((resolve) => {
    const onMessage = (msg: unknown): void => {
      const ready = (msg as { ready?: { adminPort: number; sipPort: number } } | null)?.ready;
      if (!ready) return;
      child.off("message", onMessage);
      resolve(ready);
    };
    child.on("message", onMessage);
  });
}

/** The ports in main.ts's "engine started" log line (pino JSON on stdout). */
function startedLine(child: ChildProcess): Promise<{ adminPort: number; sipPort: number }> {
  return new Promise((resolve) => {
    let pending = "";
    const onData = (d: Buffer): void => {
      pending += d.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        let entry: { msg?: unknown; adminPort?: unknown; sipPort?: unknown };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          continue;
        }
        if (entry.msg !== "engine started") continue;
        if (typeof entry.adminPort !== "number" || typeof entry.sipPort !== "number") continue;
        child.stdout?.off("data", onData);
        resolve({ adminPort: entry.adminPort, sipPort: entry.sipPort });
        return;
      }
    };
    child.stdout?.on("data", onData);
  });
}

/** Kills every sipp and engine process started by the harness (call from afterAll / finally). */
export function cleanup(): void {
  killAll();
}
