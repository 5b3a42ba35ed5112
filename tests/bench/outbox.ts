/**
 * Outbox runner throughput on Node: BENCH_JOBS (2,000) jobs with a handler that does
 * nothing, run by runDueJobs on a fresh libSQL file database with production's
 * settings, against the baseline measured in the same run: the same number of bare
 * claim-and-finish UPDATEs (the least any durable outbox must write per job).
 * Prints jobs/s of both and the ratio. Bounded: one database, BENCH_JOBS jobs.
 * Usage: npx tsx tests/bench/outbox.ts
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDb, jobs, migrate } from "@gosip/drizzle";
import { and, eq } from "drizzle-orm";
import { FsBlobStore } from "../../edge/src/blobs/fs.ts";
import { loadConfig } from "../../edge/src/config.ts";
import { ServiceBreakers } from "../../edge/src/jobs/breaker.ts";
import { runDueJobs } from "../../edge/src/jobs/runner.ts";
import { openNodeClient } from "../../edge/src/platform/node/database.ts";
import { type EdgeDeps, systemClock } from "../../edge/src/platform/types.ts";
import { NodeRelayLink } from "../../edge/src/relay/node-link.ts";

const COUNT = Number(process.env.BENCH_JOBS ?? 2_000);

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gosip-bench-outbox-"));
  const config = loadConfig({ GOSIP_DATA_DIR: dir });
  const client = await openNodeClient(config);
  try {
    await migrate(client);
    const db = createDb(client);
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const deps: EdgeDeps = {
      db,
      clock: systemClock,
      config,
      logger: quiet,
      runtime: "node",
      relayChannel: new NodeRelayLink(),
      blobs: new FsBlobStore(join(dir, "blobs")),
    };
    const insert = async (prefix: string) => {
      for (let i = 0; i < COUNT; i += 500)
        await db.insert(jobs).values(
          Array.from({ length: Math.min(500, COUNT - i) }, (_, k) => ({
            kind: "bench.noop",
            payload: { v: 1 as const },
            idempotencyKey: `${prefix}:${i + k}`,
          })),
        );
    };

    // Baseline: claim and finish each job with one conditional UPDATE each, nothing else.
    await insert("baseline");
    const ids = (await db.select({ id: jobs.id }).from(jobs)).map((r) => r.id);
    let t0 = performance.now();
    for (const id of ids) {
      await db
        .update(jobs)
        .set({ status: "running", lockedUntil: new Date(Date.now() + 60_000) })
        .where(and(eq(jobs.id, id), eq(jobs.status, "pending")));
      await db.update(jobs).set({ status: "succeeded", lockedUntil: null }).where(eq(jobs.id, id));
    }
    const baselineMs = performance.now() - t0;
    await db.delete(jobs);

    await insert("runner");
    const handlers = { "bench.noop": { service: "internal" as const, run: async () => undefined } };
    t0 = performance.now();
    let ran = 0;
    while (ran < COUNT) {
      const r = await runDueJobs(deps, { handlers, breakers: new ServiceBreakers(), maxJobs: 1_000 });
      if (r.ran === 0) break;
      ran += r.succeeded;
    }
    const runnerMs = performance.now() - t0;

    const rate = (ms: number) => Math.round((COUNT / ms) * 1000);
    console.log(`outbox: ${COUNT} no-op jobs`);
    console.log(`  baseline (claim + finish UPDATEs): ${rate(baselineMs)} jobs/s`);
    console.log(`  runDueJobs:                        ${rate(runnerMs)} jobs/s (${ran} succeeded)`);
    console.log(`  ratio runner/baseline time:        ${(runnerMs / baselineMs).toFixed(2)}×`);
  } finally {
    client.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
