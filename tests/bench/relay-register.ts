// REGISTER benchmark of the PBX's registrar chain: prints figures, asserts nothing.
// Run: `npx tsx tests/bench/relay-register.ts`. Loopback only, every run bounded in count and time.
//
// Two engines (child processes, relay/src/engine/main.ts) run side by side, each with one drachtio-srf app in
// this process:
//   A. engine alone: a trivial app that answers a REGISTER without credentials 401 (fixed challenge) and one
//      with credentials 200, checking nothing;
//   B. full chain: scanner defence (bans, scanner filter, token bucket: limits raised so sipp's one source is
//      not throttled, but the bucket still runs) → digest auth (real HMAC nonce, MD5 verification, replay
//      table) → registrar (location service, write-behind to a real libSQL file).
// sipp (uac-register-auth.xml: REGISTER, 401, authenticated REGISTER, 200 = one dialog) drives each at a fixed
// rate and at an offered rate above capacity, alternating A and B, ROUNDS times; figures are the medians.
// Target (issue): B >= 0.8 × A in dialogs/s.
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type Srf from "drachtio-srf";
import { testDevice } from "../../relay/src/pbx/testing/fakes.ts";
import { createRegistrarChain } from "../../relay/src/pbx/testing/registrar-pbx.ts";
import {
  type EngineProcess,
  killAll,
  quantile,
  runSipp,
  type SippResult,
  startEngineProcess,
} from "../../relay/test/harness.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FIXED_RATE = Number(process.env.BENCH_REGISTER_RATE ?? 1500);
const CAPACITY_RATE = Number(process.env.BENCH_CAPACITY_RATE ?? 8000);
const CREDENTIALS = { username: "alice", password: "secret" };

interface Figures {
  /** CPU ms per completed dialog: the app (this process) and the engine process. */
  appCpu: number;
  engineCpu: number;
  rate: number;
  successful: number;
  failed: number;
  p50: number;
  p99: number;
}

function figures(r: SippResult, attempted: number): Figures {
  const t = r.rttTimes;
  const span = Math.max(0.001, ((t[t.length - 1] ?? 0) - (t[0] ?? 0)) / 1000);
  return {
    appCpu: 0,
    engineCpu: 0,
    rate: t.length > 1 ? (t.length - 1) / span : 0,
    successful: r.stats.successful,
    failed: attempted - r.stats.successful,
    p50: quantile(r.rtt, 0.5),
    p99: quantile(r.rtt, 0.99),
  };
}

async function load(engine: EngineProcess, rate: number, seconds: number): Promise<Figures> {
  const attempted = Math.round(rate * seconds);
  const engineBefore = await engine.cpuMs();
  const appBefore = process.cpuUsage();
  const r = await runSipp({
    scenario: "uac-register-auth.xml",
    remote: engine.sipTarget,
    service: CREDENTIALS.username,
    auth: CREDENTIALS,
    calls: attempted,
    rate,
    limit: Math.max(200, rate),
    timeoutSeconds: seconds + 15,
    traceRtt: true,
    extraArgs: ["-buff_size", "4194304"],
  });
  const app = process.cpuUsage(appBefore);
  const f = figures(r, attempted);
  const ops = Math.max(1, f.successful);
  f.appCpu = (app.user + app.system) / 1000 / ops;
  f.engineCpu = ((await engine.cpuMs()) - engineBefore) / ops;
  return f;
}

/** The engine-only baseline app: 401 without credentials, 200 with, nothing checked. */
function trivialApp(srf: Srf): void {
  srf.use("register", (req, res) => {
    if (req.get("Authorization") === undefined) {
      res.send(401, {
        headers: {
          "WWW-Authenticate": 'Digest realm="gosip.test", nonce="bench", algorithm=MD5, qop="auth"',
        },
      });
      return;
    }
    res.send(200, { headers: { Contact: `${req.get("Contact")};expires=3600` } });
  });
}

const median = (xs: number[]): number => quantile(xs, 0.5);
const fmt = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : "-");

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gosip-bench-register-"));
  const chain = await createRegistrarChain({
    dbFile: join(dir, "relay.db"),
    devices: [testDevice(CREDENTIALS.username, CREDENTIALS.password)],
    defence: { rate: { perSecond: 1_000_000, burst: 1_000_000 } },
  });
  const engineA = await startEngineProcess();
  const engineB = await startEngineProcess();
  try {
    await engineA.connectApp(trivialApp);
    await engineB.connectApp((srf) => chain.install(srf));
    // warm-up (JIT, sipp, sockets), not measured
    await load(engineA, 300, 1);
    await load(engineB, 300, 1);
    const rows: { name: string; f: Figures }[] = [];
    const fixed = { a: [] as Figures[], b: [] as Figures[] };
    const cap = { a: [] as Figures[], b: [] as Figures[] };
    for (let i = 1; i <= ROUNDS; i++) {
      for (const [key, engine] of [
        ["a", engineA],
        ["b", engineB],
      ] as const) {
        const f = await load(engine, FIXED_RATE, SECONDS);
        fixed[key].push(f);
        rows.push({ name: `${key === "a" ? "engine alone" : "full chain  "} @${FIXED_RATE}/s #${i}`, f });
        const c = await load(engine, CAPACITY_RATE, Math.min(SECONDS, 3));
        cap[key].push(c);
        rows.push({ name: `${key === "a" ? "engine alone" : "full chain  "} capacity #${i}`, f: c });
      }
    }
    console.log(
      `REGISTER dialogs (401 + authenticated REGISTER + 200), ${ROUNDS} rounds, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    console.log(
      "run                               dialogs/s  ok      failed  p50 ms  p99 ms  app CPU ms/dialog  engine CPU ms/dialog",
    );
    for (const { name, f } of rows)
      console.log(
        `${name.padEnd(34)}${fmt(f.rate).padStart(9)}  ${String(f.successful).padEnd(8)}${String(f.failed).padEnd(8)}${fmt(f.p50).padStart(6)}  ${fmt(f.p99).padStart(6)}  ${fmt(f.appCpu, 3).padStart(17)}  ${fmt(f.engineCpu, 3).padStart(20)}`,
      );
    const capA = median(cap.a.map((f) => f.rate));
    const capB = median(cap.b.map((f) => f.rate));
    const fixA = median(fixed.a.map((f) => f.rate));
    const fixB = median(fixed.b.map((f) => f.rate));
    console.log("");
    console.log(
      `capacity (offered ${CAPACITY_RATE}/s): engine alone ${fmt(capA)}/s, full chain ${fmt(capB)}/s -> ratio ${fmt(capB / capA, 2)} (target >= 0.80)`,
    );
    console.log(
      `fixed ${FIXED_RATE}/s: engine alone ${fmt(fixA)}/s p99 ${fmt(median(fixed.a.map((f) => f.p99)))} ms, ` +
        `full chain ${fmt(fixB)}/s p99 ${fmt(median(fixed.b.map((f) => f.p99)))} ms, failed ${fixed.b.reduce((n, f) => n + f.failed, 0)} -> ratio ${fmt(fixB / fixA, 2)}`,
    );
    console.log(
      `contacts registered in the chain: ${chain.registrar.all().length}, bans: ${chain.defence.listBans().length}`,
    );
  } finally {
    await engineA.close();
    await engineB.close();
    await chain.close();
    killAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
