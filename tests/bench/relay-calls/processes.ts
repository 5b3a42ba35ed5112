// Processes of the relay call benchmark: the relay as `npm run relay` runs it (relay/src/main.ts in a child
// process: engine + PBX app + rtpengine grandchild + libSQL file), fed by a fake edge in this process that sends
// the configuration snapshot (devices, settings with 127.0.0.0/8 trusted so the rate limiter lets the load
// through) and acknowledges every event; and CPU time readings from /proc for any of them.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RelayEvent, SyncDevice } from "@gosip/drizzle";
import { FakeEdge } from "../../../relay/src/pbx/sync/fake-edge.ts";
import { device, settings, snapshot } from "../../../relay/src/pbx/sync/fixtures.ts";
import { freePort, stop, track } from "../../../relay/test/sipp.ts";
import { Callee, SipEndpoint } from "./sip-ua.ts";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system, all threads) a process used so far, ms; NaN once it is gone. */
export async function cpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** How long the process's main thread has waited for a CPU while runnable so far, ms (/proc schedstat). */
export async function runQueueWaitMs(pid: number): Promise<number> {
  try {
    const [, waitNs] = (await readFile(`/proc/${pid}/schedstat`, "utf8")).split(" ");
    return Number(waitNs) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** CPU time the whole machine spent busy so far (all cores, all processes), ms, from /proc/stat. */
export async function machineBusyMs(): Promise<number> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
  const busy = f.reduce((s, v, i) => (i === 3 || i === 4 || i > 7 ? s : s + v), 0);
  return (busy * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** This process's CPU time so far, ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Children of `pid` whose command name is `comm`. */
async function childrenNamed(pid: number, comm: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const close = stat.lastIndexOf(")");
    if (close < 0) continue;
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const ppid = Number(stat.slice(close + 2).split(" ")[1]);
    if (ppid === pid && name === comm) out.push(Number(entry));
  }
  return out;
}

/** The devices the benchmark's phones are: 101 calls, 102 (our UA) and 103 (sipp) answer. */
export const CALLER = device(1);
export const CALLEE = device(2);
export const SIPP_CALLEE = device(3);
export const PASSWORDS: Record<string, string> = {
  [CALLER.sipUsername]: "secret-1",
  [CALLEE.sipUsername]: "secret-2",
  [SIPP_CALLEE.sipUsername]: "secret-3",
};

export interface RelayProcess {
  pid: number;
  rtpenginePid: number;
  sip: { address: string; port: number };
  edge: FakeEdge;
  /** call.ended events the edge stored, by disposition. */
  endedByDisposition(): Map<string, number>;
  /** call.started and call.ended events the edge stored so far. */
  cdrCounts(): { started: number; ended: number };
  output(): string;
  alive(): boolean;
  stop(): Promise<void>;
}

export interface RelayStartOptions {
  rtpPortMin: number;
  rtpPortMax: number;
  devices?: SyncDevice[];
}

/** Starts the relay (child process) against a fake edge and waits until its PBX answers OPTIONS. */
export async function startRelay(opts: RelayStartOptions): Promise<RelayProcess> {
  const token = randomBytes(16).toString("hex");
  const devices = opts.devices ?? [CALLER, CALLEE, SIPP_CALLEE];
  const edge = await FakeEdge.start({
    token,
    snapshot: () => snapshot(1, devices, { settings: { ...settings, trustedNetworks: ["127.0.0.0/8"] } }),
  });
  const dataDir = await mkdtemp(join(tmpdir(), "gosip-relay-bench-"));
  const sipPort = await freePort();
  // BENCH_RELAY_NODE_ARGS: extra node flags for the relay, e.g. "--cpu-prof --cpu-prof-dir=<dir>" or
  // "--perf-basic-prof" (to look for its bottlenecks)
  const profile = (process.env.BENCH_RELAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...profile, "--import", "tsx", "relay/src/main.ts"], {
    cwd: REPO,
    env: {
      ...process.env,
      ENGINE_SECRET: randomBytes(12).toString("hex"),
      ENGINE_PORT: "0",
      SIP_HOST: "127.0.0.1",
      SIP_PORT: String(sipPort),
      RELAY_DATA_DIR: dataDir,
      RTP_PORT_MIN: String(opts.rtpPortMin),
      RTP_PORT_MAX: String(opts.rtpPortMax),
      RELAY_METRICS_PORT: "0",
      // keepalive OPTIONS would reach sipp's UAS as calls it does not expect
      KEEPALIVE_INTERVAL: "0",
      EDGE_URL: edge.url,
      RELAY_TOKEN: token,
      LOG_LEVEL: process.env.RELAY_LOG_LEVEL ?? "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  let out = "";
  const collect = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const sip = { address: "127.0.0.1", port: sipPort };
  let rtpenginePid = -1;
  let stopped = false;
  const cleanup = async (): Promise<void> => {
    await stop(child, "SIGTERM", 15_000);
    // a relay that had to be killed leaves its rtpengine behind: end it by its pid
    if (rtpenginePid > 0) {
      try {
        process.kill(rtpenginePid, "SIGKILL");
      } catch {
        // already gone with the relay
      }
    }
    stopped = true;
    await edge.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await edge.until(() => edge.configAcks.includes(1), 30_000, "the relay's config-ack");
    const probe = await SipEndpoint.open();
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const branch = probe.newBranch();
        const status = await probe
          .request(
            [
              `OPTIONS sip:${sip.address}:${sip.port} SIP/2.0`,
              `Via: SIP/2.0/UDP ${probe.contact};branch=${branch};rport`,
              "Max-Forwards: 70",
              `From: <sip:probe@${probe.contact}>;tag=${branch.slice(-6)}`,
              `To: <sip:${sip.address}:${sip.port}>`,
              `Call-ID: probe-${branch}`,
              "CSeq: 1 OPTIONS",
              "Content-Length: 0",
              "",
              "",
            ].join("\r\n"),
            branch,
            sip,
            { timeoutMs: 2000 },
          )
          .then((m) => m.status)
          .catch(() => 0);
        if (status === 200) break;
        if (Date.now() > deadline)
          throw new Error(`the relay's PBX does not answer OPTIONS (last ${status})`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      probe.close();
    }
    rtpenginePid = (await childrenNamed(child.pid ?? -1, "rtpengine"))[0] ?? -1;
    // when this script is stopped short (deadline, crash), the relay is SIGKILLed: end its rtpengine too
    process.once("exit", () => {
      if (!stopped && rtpenginePid > 0) {
        try {
          process.kill(rtpenginePid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    });
  } catch (err) {
    await cleanup();
    throw new Error(`${String(err)}\nrelay output:\n${out}`);
  }
  return {
    pid: child.pid ?? -1,
    rtpenginePid,
    sip,
    edge,
    endedByDisposition() {
      const m = new Map<string, number>();
      for (const e of edge.stored.values()) {
        const ev = e as RelayEvent & { disposition?: string };
        if (ev.kind === "call.ended") m.set(ev.disposition ?? "?", (m.get(ev.disposition ?? "?") ?? 0) + 1);
      }
      return m;
    },
    cdrCounts() {
      let started = 0;
      let ended = 0;
      for (const e of edge.stored.values()) {
        if (e.kind === "call.started") started++;
        else if (e.kind === "call.ended") ended++;
      }
      return { started, ended };
    },
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: cleanup,
  };
}

/** A called phone registered at the relay as `dev`, on a fresh endpoint (or on `port`). */
export async function registeredCallee(relay: RelayProcess, dev: SyncDevice, port = 0): Promise<Callee> {
  const callee = new Callee(await SipEndpoint.open(port));
  const status = await callee.register(dev.sipUsername, PASSWORDS[dev.sipUsername] ?? "", relay.sip);
  if (status !== 200) {
    callee.ep.close();
    throw new Error(`REGISTER of ${dev.sipUsername} answered ${status}`);
  }
  return callee;
}
