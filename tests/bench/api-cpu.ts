/**
 * API CPU benchmark (`npm run bench:api-cpu -w @gosip/tests`): CPU time per request
 * of the real Node edge (startNodeEdge: libSQL file database with migrations, the
 * session middleware, an admin signed in), one request at a time, measured two ways:
 *
 * - in-process with `app.request`: the edge's own work (routing, auth, database,
 *   DTOs, JSON) without sockets. Reading the body (`arrayBuffer()`) turns the JSON
 *   string into a web stream and bytes, which the Node server does not do (it writes
 *   the string to the socket), so larger responses look dearer here than served;
 * - over loopback HTTP to the edge's own server (@hono/node-server), with a
 *   keep-alive node:http client in the same process: CPU includes that client and
 *   the HTTP parsing on both sides, as the baseline's does.
 *
 * The baseline of each way, measured in the same run, is a bare hono app answering
 * `c.json({ ok: true })` (in-process, and on its own @hono/node-server).
 *
 * Targets: GET /api/auth/me, GET /api/devices with 1, 20 and 100 rows (the same
 * 100-device data set, paged with ?limit), GET /api/devices/{id}, and POST /api/devices (the devices it
 * creates are deleted after each round, outside the measurement, so the list always
 * reads the same rows). Targets run in interleaved rounds and each figure is the
 * median over rounds; CPU is user + system time of this process (process.cpuUsage),
 * so garbage collection is included. The cost of one more row is derived from the
 * 1- and 100-row lists.
 *
 * Options (env): BENCH_CPU_REQUESTS (default 2000) per target per round,
 * BENCH_CPU_ROUNDS (default 5).
 */
import { Agent, request } from "node:http";
import { CREATED_NAME_PREFIX, loadAverage, runBench, startBenchEdge } from "./edge-fixture.ts";

const REQUESTS = Number(process.env.BENCH_CPU_REQUESTS ?? 2000);
const ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 5);
const WARMUP_REQUESTS = 500;
const LIST_DEVICES = 100;

/** Sends one request, reads the whole response body, answers the status. */
type Handler = (path: string, init: RequestInit) => Promise<number>;

/** In-process through hono's `app.request`. */
function inProcess(app: {
  request: (path: string, init: RequestInit) => Response | Promise<Response>;
}): Handler {
  return async (path, init) => {
    const res = await app.request(path, init);
    // The body is part of the work (c.json serialises lazily into the stream).
    await res.arrayBuffer();
    return res.status;
  };
}

/** Over loopback HTTP with one keep-alive connection. */
function overLoopback(port: number): Handler {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return (path, init) =>
    new Promise((resolve, reject) => {
      const headers = (init.headers ?? {}) as Record<string, string>;
      const req = request(
        { host: "127.0.0.1", port, path, method: init.method ?? "GET", headers, agent },
        (res) => {
          res.on("data", () => {});
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(typeof init.body === "string" ? init.body : undefined);
    });
}

interface Target {
  name: string;
  handler: Handler;
  path: string;
  /** Request init per call (so creates do not collide). */
  init: () => RequestInit;
  status: number;
}

interface Sample {
  cpuUs: number;
  wallUs: number;
}

/** Runs `count` requests back to back; CPU and wall time per request in µs. */
async function measure(target: Target, count: number): Promise<Sample> {
  const inits = Array.from({ length: count }, target.init);
  const wallStart = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  for (const init of inits) {
    const status = await target.handler(target.path, init);
    if (status !== target.status) {
      throw new Error(`${target.name}: status ${status}, expected ${target.status}`);
    }
  }
  const cpu = process.cpuUsage(cpuStart);
  const wallNs = Number(process.hrtime.bigint() - wallStart);
  return { cpuUs: (cpu.user + cpu.system) / count, wallUs: wallNs / 1000 / count };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function printTable(names: string[], samples: Sample[][]): void {
  const cpu = samples.map((s) => median(s.map((x) => x.cpuUs)));
  const wall = samples.map((s) => median(s.map((x) => x.wallUs)));
  const base = cpu[0] ?? Number.NaN;
  const header = ["target", "CPU µs/req", "min", "max", "wall µs/req", "CPU ×base"];
  const rows = names.map((name, i) => {
    const all = (samples[i] ?? []).map((x) => x.cpuUs);
    return [
      name,
      (cpu[i] ?? Number.NaN).toFixed(1),
      Math.min(...all).toFixed(1),
      Math.max(...all).toFixed(1),
      (wall[i] ?? Number.NaN).toFixed(1),
      `${((cpu[i] ?? Number.NaN) / base).toFixed(1)}×`,
    ];
  });
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
  const { edge, bare, barePort, cookie, auth, deviceId, dropCreated, close } = await startBenchEdge(
    "bench-api-cpu",
    LIST_DEVICES,
  );
  try {
    const app = inProcess(edge.app);
    let serial = 0;
    const targetsOf = (handler: Handler, bareHandler: Handler): Target[] => {
      const get = (path: string, name: string): Target => ({
        name,
        handler,
        path,
        init: () => ({ headers: { cookie } }),
        status: 200,
      });
      return [
        { name: "bare hono GET /", handler: bareHandler, path: "/", init: () => ({}), status: 200 },
        get("/api/auth/me", "GET /api/auth/me"),
        get("/api/devices?limit=1", "GET /api/devices (1 row)"),
        get("/api/devices?limit=20", "GET /api/devices (20 rows)"),
        get("/api/devices?limit=100", "GET /api/devices (100 rows)"),
        get(`/api/devices/${deviceId}`, "GET /api/devices/{id}"),
        {
          name: "POST /api/devices",
          handler,
          path: "/api/devices",
          init: () => {
            serial += 1;
            const body = { name: `${CREATED_NAME_PREFIX}${serial}`, extension: String(20_000 + serial) };
            return { method: "POST", headers: auth, body: JSON.stringify(body) };
          },
          status: 201,
        },
      ];
    };

    const run = async (title: string, targets: Target[]): Promise<void> => {
      console.log(`\n${title}`);
      const loadBefore = loadAverage();
      for (const target of targets) {
        await measure(target, WARMUP_REQUESTS);
        if (target.name.startsWith("POST")) await dropCreated();
      }
      const samples: Sample[][] = targets.map(() => []);
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, target] of targets.entries()) {
          samples[i]?.push(await measure(target, REQUESTS));
          if (target.name.startsWith("POST")) await dropCreated();
        }
      }
      const loadAfter = loadAverage();
      printTable(
        targets.map((t) => t.name),
        samples,
      );
      const cpuOf = (name: string) =>
        median((samples[targets.findIndex((t) => t.name === name)] ?? []).map((s) => s.cpuUs));
      const perRow =
        (cpuOf("GET /api/devices (100 rows)") - cpuOf("GET /api/devices (1 row)")) / (LIST_DEVICES - 1);
      console.log(`per returned device row (100-row list − 1-row list) / 99: ${perRow.toFixed(2)} µs CPU`);
      console.log(`load average (1/5/15 min): before ${loadBefore}, after ${loadAfter}`);
    };

    console.log(
      `API CPU benchmark: one request at a time, ${ROUNDS} interleaved rounds of ${REQUESTS} requests ` +
        `per target (after ${WARMUP_REQUESTS} warm-up), medians over rounds; Node ${process.version}, ` +
        `libSQL file database, ${LIST_DEVICES} devices`,
    );
    await run("in-process (app.request, body read with arrayBuffer())", targetsOf(app, inProcess(bare)));
    await run(
      "over loopback HTTP (@hono/node-server; CPU includes the keep-alive client)",
      targetsOf(overLoopback(edge.port), overLoopback(barePort)),
    );
  } finally {
    await close();
  }
}

runBench(main);
