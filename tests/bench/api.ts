/**
 * API latency benchmark (`npm run bench:api -w @gosip/tests`): the real Node edge
 * (startNodeEdge: libSQL file database, migrations, session middleware, an admin
 * signed in) and, as the baseline measured in the same run, a bare hono handler
 * on @hono/node-server. Each target is driven by autocannon with 50 concurrent
 * keep-alive connections for a bounded time; every response time is recorded to
 * print exact p50/p95, req/s, and the ratios against the baseline.
 *
 * Targets run in interleaved rounds (baseline, me, list, create, baseline, ...) and
 * each figure is the median over the rounds, so a burst of load from elsewhere on
 * the machine skews one round, not the comparison. The list always reads the same
 * data set (an admin's LIST_DEVICES devices): the devices each create round adds
 * are removed after the round, so later rounds do not list (or sort) a bigger table.
 * The machine's load average is printed before and after: other work on the same
 * cores shows in every figure.
 *
 * Options (env): BENCH_SECONDS (default 3) per target per round, BENCH_ROUNDS
 * (default 3), BENCH_CONNECTIONS (default 50). Everything runs in this one process
 * on loopback, so the load generator shares the CPU with the servers: compare
 * ratios, not absolute numbers, across machines.
 */
import autocannon from "autocannon";
import { CREATED_NAME_PREFIX, loadAverage, runBench, startBenchEdge } from "./edge-fixture.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const WARMUP_SECONDS = 1;
/** Devices in the listed data set (a home office has a handful to a few dozen). */
const LIST_DEVICES = Number(process.env.BENCH_LIST_DEVICES ?? 30);

interface Target {
  name: string;
  url: string;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  /** Body per request (so creates do not collide). */
  body?: () => string;
}

interface Result {
  name: string;
  requests: number;
  reqPerSec: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

async function drive(target: Target, seconds: number): Promise<Result> {
  const times: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        method: target.method,
        connections: CONNECTIONS,
        duration: seconds,
        headers: target.headers,
        requests: target.body
          ? [{ setupRequest: (req) => ({ ...req, body: target.body?.() ?? "" }) }]
          : undefined,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      times.push(responseTime);
    });
  });
  times.sort((a, b) => a - b);
  return {
    name: target.name,
    requests: result.requests.total,
    reqPerSec: result.requests.total / seconds,
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    p99: percentile(times, 99),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const median = (values: number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/** Per-figure median over rounds; failures are summed. */
function medianResult(rounds: Result[]): Result {
  const first = rounds[0];
  if (!first) throw new Error("no rounds");
  return {
    name: first.name,
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    reqPerSec: median(rounds.map((r) => r.reqPerSec)),
    p50: median(rounds.map((r) => r.p50)),
    p95: median(rounds.map((r) => r.p95)),
    p99: median(rounds.map((r) => r.p99)),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}

/** Aligned table: absolute figures, then each target's ratio to the bare hono baseline. */
function printTable(results: Result[]): void {
  const base = results[0];
  if (!base) throw new Error("no baseline result");
  const header = [
    "target",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "p50 ×base",
    "p95 ×base",
    "req/s ×base",
    "failed",
  ];
  const rows = results.map((r) => [
    r.name,
    Math.round(r.reqPerSec).toString(),
    r.p50.toFixed(2),
    r.p95.toFixed(2),
    r.p99.toFixed(2),
    `${(r.p50 / base.p50).toFixed(1)}×`,
    `${(r.p95 / base.p95).toFixed(1)}×`,
    `${(r.reqPerSec / base.reqPerSec).toFixed(3)}×`,
    String(r.non2xx + r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

async function main(): Promise<void> {
  // An admin, signed in, with a few devices, all through the API.
  const { edge, barePort, cookie, auth, dropCreated, close } = await startBenchEdge(
    "bench-api",
    LIST_DEVICES,
  );
  try {
    let serial = 0;
    const targets: Target[] = [
      { name: "bare hono GET /", url: `http://127.0.0.1:${barePort}/`, method: "GET" },
      { name: "GET /api/auth/me", url: `${edge.url}/api/auth/me`, method: "GET", headers: { cookie } },
      { name: "GET /api/devices", url: `${edge.url}/api/devices`, method: "GET", headers: { cookie } },
      {
        name: "POST /api/devices",
        url: `${edge.url}/api/devices`,
        method: "POST",
        headers: auth,
        body: () => {
          serial += 1;
          return JSON.stringify({
            name: `${CREATED_NAME_PREFIX}${serial}`,
            extension: String(20_000 + serial),
          });
        },
      },
    ];

    // Creates are measured, then removed, so the listed data set stays the same in every round.
    const run = async (target: Target, seconds: number): Promise<Result> => {
      const result = await drive(target, seconds);
      if (target.body) await dropCreated();
      return result;
    };

    console.log(
      `API benchmark: ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s per target ` +
        `(after ${WARMUP_SECONDS} s warm-up each), medians over rounds; Node ${process.version}, ` +
        `libSQL file database, list of ${LIST_DEVICES} devices`,
    );
    const loadBefore = loadAverage();
    for (const target of targets) await run(target, WARMUP_SECONDS);
    const rounds: Result[][] = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, target] of targets.entries()) rounds[i]?.push(await run(target, SECONDS));
    }
    const results = rounds.map(medianResult);
    const loadAfter = loadAverage();

    printTable(results);
    console.log(`load average (1/5/15 min): before ${loadBefore}, after ${loadAfter}`);
    const failed = results.filter((r) => r.non2xx > 0 || r.errors > 0);
    if (failed.length > 0) {
      console.error(`Some requests failed: ${failed.map((r) => r.name).join(", ")}`);
      process.exitCode = 1;
    }
  } finally {
    await close();
  }
}

runBench(main);
