// The RTP load of the relay call benchmark: builds rtpgen.c (one UDP socket per call leg, 20 ms PCMU packets,
// counts what comes back) into a temp dir and drives it over its stdin/stdout line protocol. One command at a
// time, answers in order, so a queue of resolvers is all the bookkeeping needed.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "rtpgen.c");

export interface RtpStats {
  /** Packets sent and received over all legs. */
  sent: number;
  received: number;
  /** Packets a leg received with another SSRC than its peer's (cross-connected calls). */
  misrouted: number;
  /** Legs started / started legs that received nothing (one-way or no audio). */
  started: number;
  silent: number;
  /** Largest (peer sent − this leg received) over all legs. */
  worstLegLost: number;
  /** How far the generator's 1 ms send clock fell behind at worst, and how often by more than 5 ms. */
  lateMsMax: number;
  lateTicks: number;
  /** One-way delay of received packets, ms (p99, max; 2000 means 2 s or more). */
  delayP99: number;
  delayMax: number;
  /** Packets received 150 ms or more after they were sent (a phone's jitter buffer drops them). */
  latePackets: number;
  /** 1 ms send slots the generator dropped because it fell more than 20 ms behind (it lacked CPU). */
  skippedSlots: number;
}

export class RtpLoad {
  private readonly queue: ((line: string) => void)[] = [];
  private pending = "";
  private broken = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    child.stdout?.on("data", (d: Buffer) => {
      this.pending += d.toString();
      let nl = this.pending.indexOf("\n");
      while (nl >= 0) {
        const line = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        this.queue.shift()?.(line);
        nl = this.pending.indexOf("\n");
      }
    });
    child.once("exit", () => {
      for (const resolve of this.queue.splice(0)) resolve("error exited");
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Compiles rtpgen.c with the system C compiler and starts it. */
  static async start(track: (child: ChildProcess) => void): Promise<RtpLoad> {
    const dir = await mkdtemp(join(tmpdir(), "gosip-rtpgen-"));
    const bin = join(dir, "rtpgen");
    try {
      await promisify(execFile)("cc", ["-O2", "-o", bin, SOURCE]);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`building rtpgen.c failed (a C compiler, cc, is needed): ${String(err)}`);
    }
    const child = spawn(bin, [], { stdio: ["pipe", "pipe", "inherit"] });
    track(child);
    return new RtpLoad(child, dir);
  }

  private command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null || !this.child.stdin || this.broken) {
        reject(new Error("rtpgen is not running or stopped answering"));
        return;
      }
      // Answers come in order; one that never comes would leave every later command waiting, and a late one
      // would answer the wrong command: after a timeout the generator is treated as broken.
      const timer = setTimeout(() => {
        this.broken = true;
        reject(new Error(`rtpgen did not answer "${line}" within 15 s`));
      }, 15_000);
      this.queue.push((answer) => {
        clearTimeout(timer);
        if (answer.startsWith("error")) reject(new Error(`rtpgen: ${answer} (for "${line}")`));
        else resolve(answer);
      });
      this.child.stdin.write(`${line}\n`);
    });
  }

  /** Opens `n` legs; returns their ids and local ports (what goes in the SDP). */
  async open(n: number): Promise<{ id: number; port: number }[]> {
    const out: { id: number; port: number }[] = [];
    // in chunks, so one answer line stays a reasonable size
    for (let done = 0; done < n; ) {
      const k = Math.min(500, n - done);
      const [, first, ...ports] = (await this.command(`open ${k}`)).split(" ");
      const base = Number(first);
      ports.forEach((p, i) => {
        const port = Number(p);
        if (!(port > 0)) throw new Error("rtpgen could not open a socket (file descriptor limit?)");
        out.push({ id: base + i, port });
      });
      done += k;
    }
    return out;
  }

  /** Leg `id` starts sending to 127.0.0.1:`port`; it expects packets from leg `peer`. */
  async start(id: number, port: number, peer: number): Promise<void> {
    await this.command(`start ${id} ${port} ${peer}`);
  }

  async stopAll(): Promise<void> {
    await this.command("stopall");
  }

  async stats(): Promise<RtpStats> {
    const f = (await this.command("stats")).split(" ").slice(1).map(Number);
    return {
      sent: f[0] ?? 0,
      received: f[1] ?? 0,
      misrouted: f[2] ?? 0,
      started: f[3] ?? 0,
      silent: f[4] ?? 0,
      worstLegLost: f[5] ?? 0,
      lateMsMax: f[6] ?? 0,
      lateTicks: f[7] ?? 0,
      delayP99: f[8] ?? 0,
      delayMax: f[9] ?? 0,
      latePackets: f[10] ?? 0,
      skippedSlots: f[11] ?? 0,
    };
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
      this.child.stdin?.end("quit\n");
      const timer = setTimeout(() => {
        if (this.child.pid !== undefined) process.kill(this.child.pid, "SIGKILL");
      }, 2000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
