// Child-process entry for the engine's robustness and memory tests: like `npm run engine` (main.ts) but with
// SIP timers from TEST_T1/TEST_T2/TEST_T4 (short timers let transactions expire within a test run), and IPC
// requests: "memory" (full GC, then process.memoryUsage()), "gc-stats" (GC pauses), "stats" (Engine.stats()).
// Started by harness.ts with --expose-gc; once listening it sends { ready: { adminPort, sipPort } }, so the ports
// can be 0 (bound by the OS, nothing to race for).
import { PerformanceObserver } from "node:perf_hooks";
import { closeOnSignal } from "../src/engine/cli.ts";
import { startEngine } from "../src/engine/index.ts";

function num(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : Number(v);
}

const timers: { T1?: number; T2?: number; T4?: number } = {};
for (const t of ["T1", "T2", "T4"] as const) {
  const v = num(`TEST_${t}`);
  if (v !== undefined) timers[t] = v;
}

const engine = await startEngine({
  adminHost: "127.0.0.1",
  adminPort: num("ENGINE_PORT") ?? 0,
  secret: process.env.ENGINE_SECRET ?? "",
  sipHost: process.env.SIP_HOST ?? "127.0.0.1",
  sipPort: num("SIP_PORT") ?? 0,
  logLevel: process.env.LOG_LEVEL ?? "warn",
  timers,
});

// GC pauses, for latency investigations: count, total and longest, and how many took over 5 ms.
const gcStats = { count: 0, totalMs: 0, maxMs: 0, over5ms: 0 };
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcStats.count++;
    gcStats.totalMs += entry.duration;
    gcStats.maxMs = Math.max(gcStats.maxMs, entry.duration);
    if (entry.duration > 5) gcStats.over5ms++;
  }
});
gcObserver.observe({ entryTypes: ["gc"] });

process.on("message", (msg: unknown) => {
  if (msg === "gc-stats") {
    process.send?.({ gcStats });
    return;
  }
  if (msg === "stats") {
    process.send?.({ engineStats: engine.stats() });
    return;
  }
  if (msg !== "memory") return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  process.send?.({ memory: process.memoryUsage(), gc: gc !== undefined });
});

closeOnSignal(() => engine.close());
process.send?.({ ready: { adminPort: engine.adminPort, sipPort: engine.sipPort } });
