// Child-process entry for the engine's robustness and memory tests: like `npm run engine` (main.ts) but with
// SIP timers from TEST_T1/TEST_T2/TEST_T4 (short timers let transactions expire within a test run), and an IPC
// "memory" request that runs a full GC and reports process.memoryUsage(). Started by harness.ts with --expose-gc.
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

process.on("message", (msg: unknown) => {
  if (msg !== "memory") return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  process.send?.({ memory: process.memoryUsage(), gc: gc !== undefined });
});

const stop = (): void => {
  engine.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
