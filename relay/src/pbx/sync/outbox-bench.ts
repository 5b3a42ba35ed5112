/**
 * Benchmark (a script printing figures, not a test): the relay's outbox and link
 * with the fake edge in a child process, so the relay's own CPU per event shows.
 * Emits N events at once and reports events/s stored, events/s delivered and
 * acknowledged, and the relay process's CPU time per event; the load average is
 * printed beside them because the machine is shared.
 *
 *   npx tsx relay/src/pbx/sync/outbox-bench.ts [events=10000]
 */
import { fork } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { FakeEdge } from "./fake-edge.ts";
import { tempRelayDb } from "./fixtures.ts";
import { startSync } from "./index.ts";

const TOKEN = "bench-relay-token-0123456789";

async function runEdge(): Promise<void> {
  const edge = await FakeEdge.start({ token: TOKEN });
  process.send?.({ port: edge.port });
  process.on("message", () => {
    process.send?.({
      received: edge.received.length,
      stored: edge.stored.size,
      invalid: edge.invalid.length,
    });
  });
  process.on("disconnect", () => void edge.close().then(() => process.exit(0)));
}

async function runRelay(n: number): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["--edge"], { execArgv: process.execArgv });
  try {
    const port = await new Promise<number>((resolve) =>
      child.once("message", (m: { port: number }) => resolve(m.port)),
    );
    const tmp = await tempRelayDb();
    const sync = await startSync({
      db: tmp.db,
      log: pino({ level: "warn" }),
      edgeUrl: `http://127.0.0.1:${port}`,
      relayToken: TOKEN,
      software: "bench",
      hostports: [],
    });
    await sync.link?.whenConnected();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        sync.events.emit({ kind: "device.dnd", deviceId: `dev-${i}`, enabled: i % 2 === 0 }),
      ),
    );
    const stored = performance.now() - t0;
    while (sync.events.depth() > 0) await new Promise((r) => setTimeout(r, 5));
    const drained = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const edgeView = await new Promise<{ received: number; stored: number; invalid: number }>((resolve) => {
      child.once("message", (m: { received: number; stored: number; invalid: number }) => resolve(m));
      child.send("stats");
    });
    const rate = (ms: number) => Math.round((n / ms) * 1000);
    console.log(
      [
        `events: ${n}`,
        `stored: ${Math.round(stored)} ms (${rate(stored)}/s)`,
        `delivered + acked + deleted: ${Math.round(drained)} ms (${rate(drained)}/s)`,
        `relay CPU: ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${((cpu.user + cpu.system) / n).toFixed(1)} us/event)`,
        `edge received ${edgeView.received}, stored ${edgeView.stored}, invalid frames ${edgeView.invalid}`,
        `load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(" ")}`,
      ].join("\n"),
    );
    await sync.close();
    await tmp.close();
  } finally {
    child.disconnect();
  }
}

if (process.argv.includes("--edge")) {
  await runEdge();
} else {
  const n = Number(process.argv[2] ?? 10_000);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error("events must be 1..1000000");
  await runRelay(n);
}
