// Relay call benchmark: prints figures and ratios against baselines measured in the same run; asserts nothing.
// Run: npx tsx tests/bench/relay-calls.ts   (about 8-12 minutes; loopback only; every run bounded in calls and
// time; every process it starts is ended by its pid). Knobs, all optional:
//   BENCH_ONLY=concurrent,setup,rate   which parts to run (default all three)
//   BENCH_CALLS=1200 BENCH_HOLD=30 BENCH_RAMP_RATE=100   part 1: target concurrent calls, hold (s), ramp (calls/s)
//   BENCH_SETUP_RATE=100 BENCH_SETUP_CALLS=2000           part 2: rate and count of the setup-share runs
//   BENCH_RATES=100,200,300,400,500,550,600,700,800,1000 BENCH_RATE_CALLS=3000   part 3: rising rates, calls per step
//   BENCH_RATE_HOLD_MS=200                              part 3: ACK to BYE of each call
//
// 1. Concurrent calls with RTP both ways (phone 101 -> extension 102, both our own UAs, 20 ms PCMU on every
//    leg from rtpgen.c): ramp to N, hold, count failed calls and packet loss, CPU of relay, rtpengine and the
//    load generator. Baseline: the same media load through an rtpengine of its own set up by ng offer/answer
//    directly (no SIP, no relay). When N fails (any failed call, or loss >= 0.1 %), N is bisected down to the
//    highest that passes, and the saturated process named from the CPU figures.
// 2. The relay's share of call setup (authenticated INVITE sent by the caller -> the relay's INVITE received by
//    the callee), p50/p99 at 100 calls/s, measured on the wire by our own phones; the same phones calling each
//    other directly give the floor of the method.
// 3. Call attempts per second through the relay with rtpengine offer/answer/delete (sipp UAC with digest ->
//    relay -> sipp UAS registered as 103), rising rates for a fixed count; the highest rate with zero failed,
//    against sipp UAC -> sipp UAS direct at the same rates in the same run.
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { MediaService } from "../../relay/src/pbx/media/media.ts";
import { startRtpengine } from "../../relay/src/pbx/media/rtpengine-process.ts";
import { installTestApp } from "../../relay/test/apps/test-app.ts";
import { startEngineProcess } from "../../relay/test/harness.ts";
import {
  freePort,
  killAll,
  quantile,
  runSipp,
  type SippResult,
  startSipp,
  startSippServer,
  waitForListening,
} from "../../relay/test/sipp.ts";
import { type ConcurrentResult, runConcurrent } from "./relay-calls/concurrent.ts";
import {
  CALLEE,
  CALLER,
  cpuMs,
  machineBusyMs,
  PASSWORDS,
  type RelayProcess,
  registeredCallee,
  runQueueWaitMs,
  SIPP_CALLEE,
  selfCpuMs,
  startRelay,
} from "./relay-calls/processes.ts";
import { runSetupShare, type SetupShareResult } from "./relay-calls/setup-share.ts";
import { Callee, Caller, SipEndpoint } from "./relay-calls/sip-ua.ts";

const env = (k: string, d: number): number => {
  const v = Number(process.env[k]);
  return Number.isFinite(v) && v > 0 ? v : d;
};
const ONLY = new Set((process.env.BENCH_ONLY ?? "concurrent,setup,rate").split(","));
const CALLS = env("BENCH_CALLS", 1200);
const HOLD = env("BENCH_HOLD", 30);
const RAMP = env("BENCH_RAMP_RATE", 100);
const SETUP_RATE = env("BENCH_SETUP_RATE", 100);
const SETUP_CALLS = env("BENCH_SETUP_CALLS", 2000);
const RATES = (process.env.BENCH_RATES ?? "100,200,300,400,500,550,600,700,800,1000").split(",").map(Number);
const RATE_CALLS = env("BENCH_RATE_CALLS", 3000);
/** How long each call of part 3 stays up between ACK and BYE, ms. */
const RATE_HOLD_MS = Number(process.env.BENCH_RATE_HOLD_MS ?? 200);
/** BENCH_ENGINE_BASELINE=0 skips the signalling-only engine B2BUA reference in part 3. */
const ENGINE_BASELINE = process.env.BENCH_ENGINE_BASELINE !== "0";
const LOSS_GOAL = 0.001;
const SCENARIOS = join(dirname(fileURLToPath(import.meta.url)), "relay-calls");
/** rtpengine ports: the relay's and the baseline's ranges apart, both below the ephemeral range rtpgen binds in. */
const RELAY_RTP = { min: 20_000, max: 31_999 };
const BASELINE_RTP = { min: 10_000, max: 19_999 };
const BIG_BUFFERS = ["-buff_size", "4194304"];

const log = (line: string): void => console.log(line);
const fmt = (n: number | undefined, d = 0): string =>
  n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(d);
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

function table(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(w[i] ?? 0)).join("  ");
  log(line(head));
  log(w.map((x) => "-".repeat(x)).join("  "));
  for (const r of rows) log(line(r));
}

// ---------------------------------------------------------------- 1. concurrent calls with RTP

/**
 * Share of the nominal media the generator could not send (it skips 1 ms slots it cannot catch up on, one
 * packet per 20 legs each): above 1 % the run did not offer the load it claims, so it cannot pass.
 */
const shortfall = (r: ConcurrentResult): number => {
  const skipped = (r.rtp.skippedSlots * r.rtp.started) / 20;
  return skipped / Math.max(1, skipped + r.rtp.sent);
};

const passes = (r: ConcurrentResult): boolean =>
  r.failed === 0 && r.loss < LOSS_GOAL && r.rtp.misrouted === 0 && shortfall(r) < 0.01;

function describeRun(r: ConcurrentResult): string {
  const why = [...r.failures].map(([k, v]) => `${k}: ${v}`).join(", ");
  return (
    `${r.mode} N=${r.calls}: answered ${r.answered}, failed ${r.failed}${why ? ` (${why})` : ""}, ` +
    `loss ${(r.loss * 100).toFixed(3)} % (${r.rtp.sent - r.rtp.received} of ${r.rtp.sent}), worst leg lost ${r.rtp.worstLegLost}, ` +
    `misrouted ${r.rtp.misrouted}, generator late ticks ${r.rtp.lateTicks} (max ${fmt(r.rtp.lateMsMax, 1)} ms), skipped slots ${r.rtp.skippedSlots} (${(shortfall(r) * 100).toFixed(1)} % of the media not offered)` +
    (r.cdrsAnswered === undefined ? "" : `, answered CDRs at the edge ${r.cdrsAnswered}`)
  );
}

/** Which process ran out of CPU: one using (nearly) a whole core, or the machine's two cores used up. */
function saturation(r: ConcurrentResult): string {
  const c = r.cpuHold;
  const parts = [
    ["relay (engine + PBX, one Node thread)", c.relay],
    ["rtpengine", c.rtpengine],
    ["rtpgen (load generator)", c.generator],
    ["bench process (SIP UAs, fake edge)", c.bench],
  ] as const;
  const total = parts.reduce((s, [, v]) => s + v, 0);
  const top = [...parts].sort((a, b) => b[1] - a[1])[0];
  const cores = cpus().length;
  const others = `other processes on the machine ${fmt(c.others)} %`;
  if (top && top[1] >= 90) return `${top[0]} at ${fmt(top[1])} % of a core (${others})`;
  if (total + c.others >= cores * 100 * 0.85)
    return `the machine: this benchmark ${fmt(total)} % + ${others}, of ${cores * 100} % (largest of ours: ${top?.[0]} ${fmt(top?.[1])} %)`;
  return `no process saturated (ours ${fmt(total)} %, ${others}, of ${cores * 100} %)`;
}

/**
 * Runs `run` at the target N; when that fails, bisects down (in steps of 25 calls, to within N/8) for the
 * highest N that passes. Returns every run made and the best passing one.
 */
async function highestPassing(
  label: string,
  run: (n: number) => Promise<ConcurrentResult>,
): Promise<{ rows: ConcurrentResult[]; best: ConcurrentResult | undefined; atTarget: ConcurrentResult }> {
  log(`${label}, N=${CALLS}`);
  const atTarget = await run(CALLS);
  log(`  ${describeRun(atTarget)}`);
  const rows = [atTarget];
  if (passes(atTarget)) return { rows, best: atTarget, atTarget };
  log(
    `  N=${CALLS} did not pass (saturated: ${saturation(atTarget)}); bisecting for the highest N that passes`,
  );
  let best: ConcurrentResult | undefined;
  let lo = 0;
  let hi = CALLS;
  while (hi - lo > Math.max(50, CALLS / 8)) {
    const n = Math.max(25, Math.round((lo + hi) / 2 / 25) * 25);
    log(`${label}, N=${n}`);
    const r = await run(n);
    rows.push(r);
    log(`  ${describeRun(r)}`);
    if (passes(r)) {
      lo = n;
      best = r;
    } else hi = n;
  }
  return { rows, best, atTarget };
}

async function concurrentPart(relay: RelayProcess): Promise<string[]> {
  log(`\n=== 1. concurrent calls with RTP both ways (target ${CALLS}, hold ${HOLD} s, ramp ${RAMP} calls/s)`);
  const rtpe = await startRtpengine({
    interface: "127.0.0.1",
    portMin: BASELINE_RTP.min,
    portMax: BASELINE_RTP.max,
    logger: pino({ level: "warn" }),
  });
  const media = new MediaService({ ng: rtpe.ng });
  const caller = new Caller(await SipEndpoint.open(), CALLER.sipUsername, {
    username: CALLER.sipUsername,
    password: PASSWORDS[CALLER.sipUsername] ?? "",
  });
  const callee = await registeredCallee(relay, CALLEE);
  try {
    const opts = { rate: RAMP, holdSeconds: HOLD, log };
    const base = await highestPassing("baseline: rtpengine alone (ng offer/answer from here, no SIP)", (n) =>
      runConcurrent({ kind: "rtpengine", media, rtpenginePid: rtpe.pid ?? -1 }, { calls: n, ...opts }),
    );
    const full = await highestPassing("relay: phone 101 -> relay (B2BUA + rtpengine) -> phone 102", (n) =>
      runConcurrent({ kind: "relay", relay, caller, callee, dial: CALLEE.extension }, { calls: n, ...opts }),
    );
    log("");
    table(
      [
        "run",
        "N",
        "answered",
        "failed",
        "loss %",
        "late>=150ms %",
        "delay p99 ms",
        "RTP sent",
        "not offered %",
        "relay %",
        "rtpengine %",
        "rtpgen %",
        "bench %",
        "others %",
        "relay wait %",
        "pass",
      ],
      [...base.rows, ...full.rows].map((r) => [
        r.mode === "relay" ? "relay + rtpengine" : "rtpengine alone",
        String(r.calls),
        String(r.answered),
        String(r.failed),
        (r.loss * 100).toFixed(3),
        ((r.rtp.latePackets / Math.max(1, r.rtp.received)) * 100).toFixed(2),
        String(r.rtp.delayP99),
        String(r.rtp.sent),
        (shortfall(r) * 100).toFixed(1),
        fmt(r.cpuHold.relay),
        fmt(r.cpuHold.rtpengine),
        fmt(r.cpuHold.generator),
        fmt(r.cpuHold.bench),
        fmt(r.cpuHold.others),
        fmt(r.cpuHold.relayWait),
        passes(r) ? "yes" : "no",
      ]),
    );
    log(
      "(CPU columns: % of one core during the hold, steady media load; the machine has " +
        `${cpus().length * 100} %. others: processes outside this benchmark. relay wait: time the relay's main ` +
        "thread was runnable but had no CPU. late: packets that arrived 150 ms or more after they were sent.)",
    );
    const b = base.best;
    const f = full.best;
    return [
      `concurrent calls, highest N with 0 failed and < 0.1 % loss: relay ${f?.calls ?? "none"}, rtpengine alone ${b?.calls ?? "none"} ` +
        `(target ${CALLS}: ${f && f.calls >= CALLS ? "PASS" : "FAIL"}); ratio relay/alone ${fmt((f?.calls ?? 0) / Math.max(1, b?.calls ?? 0), 2)}x`,
      `  at N=${CALLS}: relay ${describeRun(full.atTarget)}; saturated: ${saturation(full.atTarget)}`,
      `  at N=${CALLS}: rtpengine alone ${describeRun(base.atTarget)}; saturated: ${saturation(base.atTarget)}`,
      // per call from the largest runs that offered their whole media (the failing ones did not)
      `  media CPU per call during the hold (% of one core per call): rtpengine through the relay ${fmt((f?.cpuHold.rtpengine ?? Number.NaN) / (f?.answered ?? Number.NaN), 3)} ` +
        `(N=${f?.calls ?? "-"}), rtpengine alone ${fmt((b?.cpuHold.rtpengine ?? Number.NaN) / (b?.answered ?? Number.NaN), 3)} (N=${b?.calls ?? "-"}), ` +
        `rtpgen ${fmt((b?.cpuHold.generator ?? Number.NaN) / (b?.answered ?? Number.NaN), 3)}; the relay process ${fmt(f?.cpuHold.relay)} % of a core while holding`,
    ];
  } finally {
    caller.ep.close();
    callee.ep.close();
    media.close();
    await rtpe.stop();
  }
}

// ---------------------------------------------------------------- 2. setup share

async function setupPart(relay: RelayProcess): Promise<string[]> {
  log(`\n=== 2. the relay's share of call setup at ${SETUP_RATE} calls/s (${SETUP_CALLS} calls per run)`);
  const caller = new Caller(await SipEndpoint.open(), CALLER.sipUsername, {
    username: CALLER.sipUsername,
    password: PASSWORDS[CALLER.sipUsername] ?? "",
  });
  const callee = await registeredCallee(relay, CALLEE);
  const direct = new Callee(await SipEndpoint.open());
  try {
    // warm-up: JIT in the relay, nonce cache, rtpengine port pool
    await runSetupShare(
      "warm-up",
      caller,
      callee,
      { dial: CALLEE.extension, via: relay.sip },
      300,
      SETUP_RATE,
    );
    const rows: SetupShareResult[] = [];
    rows.push(
      await runSetupShare(
        "floor: caller -> callee direct",
        caller,
        direct,
        {
          dial: "direct",
          via: { address: "127.0.0.1", port: direct.ep.port },
        },
        SETUP_CALLS,
        SETUP_RATE,
      ),
    );
    const relayCpu0 = await cpuMs(relay.pid);
    const wait0 = await runQueueWaitMs(relay.pid);
    const machine0 = await machineBusyMs();
    const self0 = selfCpuMs();
    const t0 = performance.now();
    rows.push(
      await runSetupShare(
        "relay: INVITE in -> INVITE out",
        caller,
        callee,
        { dial: CALLEE.extension, via: relay.sip },
        SETUP_CALLS,
        SETUP_RATE,
      ),
    );
    const wall = performance.now() - t0;
    const relayMs = (await cpuMs(relay.pid)) - relayCpu0;
    const relayCpuPct = (relayMs / wall) * 100;
    const waitPct = (((await runQueueWaitMs(relay.pid)) - wait0) / wall) * 100;
    const othersPct = (((await machineBusyMs()) - machine0 - relayMs - (selfCpuMs() - self0)) / wall) * 100;
    table(
      ["run", "calls", "ok", "failed", "p50 ms", "p90 ms", "p99 ms", "max ms", "bench loop p99 ms"],
      rows.map((r) => [
        r.name,
        String(r.calls),
        String(r.ok),
        String(r.failed),
        fmt(r.p50, 2),
        fmt(r.p90, 2),
        fmt(r.p99, 2),
        fmt(r.max, 2),
        fmt(r.loopP99, 2),
      ]),
    );
    const floor = rows[0];
    const share = rows[1];
    if (!floor || !share) return [];
    log(
      `relay process during the relay run: CPU ${fmt(relayCpuPct)} % of a core, runnable without a CPU ${fmt(waitPct)} % ` +
        `of the time; rtpengine and the rest of the machine ${fmt(othersPct)} %`,
    );
    return [
      `setup share at ${SETUP_RATE}/s: p50 ${fmt(share.p50, 2)} ms, p99 ${fmt(share.p99, 2)} ms (target p99 < 5 ms: ${share.p99 < 5 && share.failed === 0 ? "PASS" : "FAIL"}), ` +
        `${share.failed} failed; method floor (direct) p50 ${fmt(floor.p50, 2)} / p99 ${fmt(floor.p99, 2)} ms; ` +
        `relay CPU ${fmt(relayCpuPct)} %, waited for a CPU ${fmt(waitPct)} % of the time`,
    ];
  } finally {
    caller.ep.close();
    callee.ep.close();
    direct.ep.close();
  }
}

// ---------------------------------------------------------------- 3. call attempts per second

interface RateRow {
  name: string;
  rate: number;
  calls: number;
  ok: number;
  failed: number;
  achieved: number;
  p50: number;
  p99: number;
  /** % of one core over the step; per call: CPU ms per completed call; wait: relay main thread runnable, no CPU. */
  cpu?: {
    relay: number;
    rtpengine: number;
    relayPerCall: number;
    rtpenginePerCall: number;
    others: number;
    wait: number;
  };
  note: string;
}

function rateRow(
  name: string,
  rate: number,
  calls: number,
  uac: SippResult,
  uasOk: number,
  note = "",
): RateRow {
  const t = uac.rttTimes;
  const span = Math.max(0.001, ((t[t.length - 1] ?? 0) - (t[0] ?? 0)) / 1000);
  const ok = uac.stats.successful;
  const failed = Math.max(calls - ok, calls - uasOk, uac.stats.failed);
  const err = uac.exitCode === 0 ? "" : `sipp exit ${uac.exitCode}: ${firstError(uac)}`;
  return {
    name,
    rate,
    calls,
    ok,
    failed,
    achieved: t.length > 1 ? (t.length - 1) / span : 0,
    p50: quantile(uac.rtt, 0.5),
    p99: quantile(uac.rtt, 0.99),
    note: [note, err].filter(Boolean).join("; "),
  };
}

function firstError(r: SippResult): string {
  const line =
    r.errors.split("\n").find((l) => /\d{4}-\d\d-\d\d/.test(l)) ?? r.log.trim().split("\n")[0] ?? "";
  return line.replace(/^\S+\s+\S+\s+\S+:\s*/, "").slice(0, 90);
}

async function sippStep(
  name: string,
  rate: number,
  target: string,
  uacScenario: string,
  uasPort: number | undefined,
  extra: { auth?: { username: string; password: string }; service: string },
  onUasPort?: (port: number) => void,
): Promise<{ uac: SippResult; uasOk: number }> {
  const calls = RATE_CALLS;
  const seconds = calls / rate;
  const uasOpts = {
    scenario: "uas-answer.xml",
    calls,
    timeoutSeconds: seconds + 30,
    extraArgs: BIG_BUFFERS,
  };
  // the relay's UAS must answer on the port registered for extension 103; the direct one on any port
  const uas = uasPort ? await startSipp({ ...uasOpts, port: uasPort }) : await startSippServer(uasOpts);
  if (uasPort) await waitForListening(uasPort, "udp", 10_000);
  onUasPort?.(uas.port);
  try {
    const remote = target || `127.0.0.1:${uas.port}`;
    const uac = await runSipp({
      scenario: uacScenario,
      remote,
      calls,
      rate,
      limit: Math.max(300, rate),
      timeoutSeconds: seconds + 20,
      traceRtt: true,
      // short calls, but not a BYE in the same millisecond as the ACK: with BENCH_RATE_HOLD_MS=0 the relay loses
      // some of those BYEs (see the README), which would hide its throughput behind that one bug
      pauseMs: RATE_HOLD_MS,
      service: extra.service,
      ...(extra.auth ? { auth: extra.auth } : {}),
      // sipp digests "sip:<remote>" unless told the Request-URI
      extraArgs: [...BIG_BUFFERS, ...(extra.auth ? ["-auth_uri", `${extra.service}@${remote}`] : [])],
    });
    const grace = setTimeout(() => uas.kill(), 6000);
    const b = await uas.done;
    clearTimeout(grace);
    void name;
    return { uac, uasOk: b.stats.successful };
  } finally {
    uas.kill();
  }
}

/**
 * A rate is sustained when no call failed and the calls completed at (nearly) the offered rate: a side that
 * falls behind completes every call eventually, but seconds late, and its backlog grows without bound.
 */
const sustained = (r: RateRow): boolean => r.failed === 0 && r.achieved >= 0.9 * r.rate;

async function ratePart(relay: RelayProcess): Promise<string[]> {
  log(
    `\n=== 3. call attempts per second, rtpengine offer/answer/delete, ${RATE_CALLS} calls of ${RATE_HOLD_MS} ms per step, rising rates ${RATES.join(", ")}`,
  );
  // sipp's UAS answers on a fixed port registered as extension 103 (registered from that port, then handed over)
  const uasPort = await freePort();
  const reg = await registeredCallee(relay, SIPP_CALLEE, uasPort);
  reg.ep.close();
  const rows: RateRow[] = [];
  let bestRelay = 0;
  let bestDirect = 0;
  let relayFailedAt: RateRow | undefined;
  let relayDone = false;
  let directDone = false;
  let engineDone = !ENGINE_BASELINE;
  let bestEngine = 0;
  let cdrsBefore = relay.cdrCounts();
  // Signalling-only reference: the same engine with a bare srf.createB2BUA app (relay/test/apps/test-app.ts,
  // as tests/bench/sip-engine.ts runs it): no auth, no rtpengine, no events; engine in a child, app here.
  let b2buaTarget = "";
  const engine = ENGINE_BASELINE ? await startEngineProcess() : undefined;
  await engine?.connectApp((srf) => {
    installTestApp(srf, { b2buaTarget: () => b2buaTarget });
  });
  try {
    for (const rate of RATES) {
      if (!engineDone && engine) {
        const e0 = { engine: await engine.cpuMs(), app: selfCpuMs(), at: performance.now() };
        const { uac, uasOk } = await sippStep(
          "engine",
          rate,
          engine.sipTarget,
          "uac-invite.xml",
          undefined,
          {
            service: "b2bua",
          },
          (port) => {
            b2buaTarget = `sip:callee@127.0.0.1:${port}`;
          },
        );
        const wall = performance.now() - e0.at;
        const row = rateRow(
          "sipp -> engine + bare srf B2BUA -> sipp",
          rate,
          RATE_CALLS,
          uac,
          uasOk,
          `b-leg ok ${uasOk}`,
        );
        const engineMs = (await engine.cpuMs()) - e0.engine;
        const appMs = selfCpuMs() - e0.app;
        row.cpu = {
          relay: ((engineMs + appMs) / wall) * 100,
          rtpengine: 0,
          relayPerCall: (engineMs + appMs) / Math.max(1, row.ok),
          rtpenginePerCall: 0,
          others: Number.NaN,
          wait: Number.NaN,
        };
        rows.push(row);
        log(
          `  ${row.name} at ${rate}/s: ok ${row.ok}, failed ${row.failed}, achieved ${fmt(row.achieved)}/s, CPU engine + app ${fmt(row.cpu.relay)} % (${fmt(row.cpu.relayPerCall, 2)} ms/call); ${row.note}`,
        );
        if (sustained(row)) bestEngine = rate;
        else engineDone = true;
      }
      if (!directDone) {
        const { uac, uasOk } = await sippStep(
          "direct",
          rate,
          "",
          "uac-invite.xml" /* relay/test/sipp */,
          undefined,
          { service: "callee" },
        );
        const row = rateRow("sipp -> sipp direct", rate, RATE_CALLS, uac, uasOk);
        rows.push(row);
        log(
          `  ${row.name} at ${rate}/s: ok ${row.ok}, failed ${row.failed}, achieved ${fmt(row.achieved)}/s ${row.note}`,
        );
        if (sustained(row)) bestDirect = rate;
        else directDone = true;
      }
      if (!relayDone) {
        const c0 = {
          relay: await cpuMs(relay.pid),
          rtpengine: await cpuMs(relay.rtpenginePid),
          machine: await machineBusyMs(),
          wait: await runQueueWaitMs(relay.pid),
          self: selfCpuMs(),
          at: performance.now(),
        };
        const { uac, uasOk } = await sippStep(
          "relay",
          rate,
          `${relay.sip.address}:${relay.sip.port}`,
          join(SCENARIOS, "uac-invite-auth.xml"),
          uasPort,
          {
            service: SIPP_CALLEE.extension,
            auth: { username: CALLER.sipUsername, password: PASSWORDS[CALLER.sipUsername] ?? "" },
          },
        );
        const wall = performance.now() - c0.at;
        const relayMs = (await cpuMs(relay.pid)) - c0.relay;
        const rtpengineMs = (await cpuMs(relay.rtpenginePid)) - c0.rtpengine;
        // sipp's own CPU is not read (it has exited); "others" then includes the two sipp processes
        const othersMs =
          (await machineBusyMs()) - c0.machine - relayMs - rtpengineMs - (selfCpuMs() - c0.self);
        const waitMs = (await runQueueWaitMs(relay.pid)) - c0.wait;
        // every call the relay started must end (its CDR reaches the edge): a call whose b-leg never got its
        // BYE stays up in the relay, in rtpengine and at the callee
        const cdr0 = cdrsBefore;
        await relay.edge
          .until(() => relay.cdrCounts().ended - cdr0.ended >= RATE_CALLS, 10_000, "CDRs")
          .catch(() => undefined);
        const cdr = relay.cdrCounts();
        cdrsBefore = cdr;
        const row = rateRow(
          "sipp -> relay -> sipp",
          rate,
          RATE_CALLS,
          uac,
          uasOk,
          `b-leg ok ${uasOk}; CDRs started ${cdr.started - cdr0.started}, ended ${cdr.ended - cdr0.ended}`,
        );
        // a call the relay never ended is a failed call, whatever sipp counted
        row.failed = Math.max(row.failed, RATE_CALLS - (cdr.ended - cdr0.ended));
        row.cpu = {
          relay: (relayMs / wall) * 100,
          rtpengine: (rtpengineMs / wall) * 100,
          relayPerCall: relayMs / Math.max(1, row.ok),
          rtpenginePerCall: rtpengineMs / Math.max(1, row.ok),
          others: (othersMs / wall) * 100,
          wait: (waitMs / wall) * 100,
        };
        rows.push(row);
        log(
          `  ${row.name} at ${rate}/s: ok ${row.ok}, failed ${row.failed}, achieved ${fmt(row.achieved)}/s, CPU relay ${fmt(row.cpu.relay)} % (${fmt(row.cpu.relayPerCall, 2)} ms/call) rtpengine ${fmt(row.cpu.rtpengine)} %, sipp + other processes ${fmt(row.cpu.others)} %, relay waited for a CPU ${fmt(row.cpu.wait)} % of the time; ${row.note}`,
        );
        if (!relay.alive()) {
          log(
            `  THE RELAY PROCESS EXITED during this step; its last output:\n${relay.output().slice(-3000)}`,
          );
          relayFailedAt = row;
          relayDone = true;
        } else if (sustained(row)) bestRelay = rate;
        else {
          relayFailedAt = row;
          relayDone = true;
        }
      }
      if (relayDone && directDone && engineDone) break;
    }
  } finally {
    await engine?.close();
  }
  log("");
  table(
    [
      "run",
      "rate/s",
      "calls",
      "ok",
      "failed",
      "achieved/s",
      "INVITE->200 p50 ms",
      "p99 ms",
      "relay %",
      "relay ms/call",
      "rtpengine %",
      "others %",
      "relay wait %",
      "note",
    ],
    rows.map((r) => [
      r.name,
      String(r.rate),
      String(r.calls),
      String(r.ok),
      String(r.failed),
      fmt(r.achieved),
      fmt(r.p50),
      fmt(r.p99),
      fmt(r.cpu?.relay),
      fmt(r.cpu?.relayPerCall, 2),
      fmt(r.cpu?.rtpengine),
      fmt(r.cpu?.others),
      fmt(r.cpu?.wait),
      r.note,
    ]),
  );
  const relayRows = rows.filter((r) => r.cpu !== undefined && r.name.includes("relay"));
  const perCall = quantile(
    relayRows.map((r) => r.cpu?.relayPerCall ?? Number.NaN).filter(Number.isFinite),
    0.5,
  );
  log(
    "(sustained: 0 failed and completed at >= 90 % of the offered rate. relay %: of one core; others: sipp and every " +
      "process outside this benchmark; relay wait: its main thread runnable but without a CPU)",
  );
  return [
    `call attempts/s with rtpengine, sustained with 0 failed: ${bestRelay || "none"} of the rates tried (target >= 550: ${bestRelay >= 550 ? "PASS" : "FAIL"})` +
      (relayFailedAt
        ? `, first failing rate ${relayFailedAt.rate}/s (${relayFailedAt.failed} failed, achieved ${fmt(relayFailedAt.achieved)}/s, relay CPU ${fmt(relayFailedAt.cpu?.relay)} %, relay waited for a CPU ${fmt(relayFailedAt.cpu?.wait)} %)`
        : "") +
      `; sipp -> sipp direct: ${bestDirect}${directDone ? "" : "+ (every rate tried passed)"}/s; ratio ${fmt(bestRelay / Math.max(1, bestDirect), 2)}x`,
    ...(ENGINE_BASELINE
      ? [
          `  signalling only, engine + bare srf B2BUA (no auth, no rtpengine, no events): sustained ${bestEngine || "none"}/s, ` +
            `${fmt(
              quantile(
                rows
                  .filter((r) => r.name.includes("engine"))
                  .map((r) => r.cpu?.relayPerCall ?? Number.NaN)
                  .filter(Number.isFinite),
                0.5,
              ),
              2,
            )} ms CPU per call (engine + app)`,
        ]
      : []),
    `  relay CPU per call (median over the steps): ${fmt(perCall, 2)} ms -> ceiling of one Node thread with a core to itself ` +
      `~${fmt(1000 / perCall)} calls/s`,
  ];
}

/** Hard bound on the whole run: past it every process started here is killed and the script exits. */
const DEADLINE_MINUTES = env("BENCH_DEADLINE_MINUTES", 45);

async function main(): Promise<void> {
  const started = Date.now();
  setTimeout(() => {
    console.error(`benchmark still running after ${DEADLINE_MINUTES} minutes: stopping it`);
    killAll();
    process.exit(2);
  }, DEADLINE_MINUTES * 60_000).unref();
  log(
    `GoSIP relay call benchmark, ${new Date().toISOString()}, ${cpus().length} cores, load average ${load()}`,
  );
  const relay = await startRelay({ rtpPortMin: RELAY_RTP.min, rtpPortMax: RELAY_RTP.max });
  log(
    `relay pid ${relay.pid} (engine + PBX), rtpengine pid ${relay.rtpenginePid}, SIP ${relay.sip.address}:${relay.sip.port}`,
  );
  const summary: string[] = [];
  try {
    if (ONLY.has("setup")) summary.push(...(await setupPart(relay)));
    if (ONLY.has("concurrent")) summary.push(...(await concurrentPart(relay)));
    if (ONLY.has("rate")) summary.push(...(await ratePart(relay)));
  } finally {
    if (!relay.alive()) log(`the relay process had exited; its last output:\n${relay.output().slice(-3000)}`);
    await relay.stop();
    killAll();
  }
  log("\n=== summary");
  for (const s of summary) log(`- ${s}`);
  log(`load average after: ${load()}; took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
