// Concurrent calls with RTP both ways: ramp to N calls at a fixed rate, hold them all for a while with 20 ms
// PCMU both ways on every leg, stop the media, count what arrived, hang up. Two ways to set a call up:
//   "relay":     phone 101 (our UA, digest) INVITEs extension 102 at the relay; the relay's B2BUA rings the
//                registered phone 102 (our UA) through rtpengine; media flows phone ↔ rtpengine ↔ phone.
//   "rtpengine": the baseline: the same media through an rtpengine of its own, set up by ng offer/answer
//                straight from here (no SIP), so the difference is what the relay (signalling, B2BUA, events)
//                costs, and the rtpengine CPU of both says whether the relay's media setup costs anything more.
// Every call is bounded (16 s transaction timeouts), the run stops by itself, and each call's outcome is counted.
import type { MediaService } from "../../../relay/src/pbx/media/media.ts";
import { track } from "../../../relay/test/sipp.ts";
import { cpuMs, machineBusyMs, type RelayProcess, runQueueWaitMs, selfCpuMs } from "./processes.ts";
import { RtpLoad, type RtpStats } from "./rtp-load.ts";
import { benchSdp, type Callee, type Caller, type CallerDialog, sdpMedia } from "./sip-ua.ts";

export interface ConcurrentOptions {
  calls: number;
  /** New calls per second during the ramp. */
  rate: number;
  holdSeconds: number;
  log: (line: string) => void;
}

export type CallSetupPath =
  | { kind: "relay"; relay: RelayProcess; caller: Caller; callee: Callee; dial: string }
  | { kind: "rtpengine"; media: MediaService; rtpenginePid: number };

/** CPU use in % of one core (the machine has cpus().length of them). */
export interface CpuShare {
  relay: number;
  rtpengine: number;
  generator: number;
  bench: number;
  /** Everything else running on the machine (other work than this benchmark). */
  others: number;
  /** Time the relay's main thread was runnable but waiting for a CPU, % of the wall time. */
  relayWait: number;
}

export interface ConcurrentResult {
  mode: string;
  calls: number;
  rate: number;
  holdSeconds: number;
  answered: number;
  /** Calls that did not get answered, lost a leg early, or whose BYE failed. */
  failed: number;
  failures: Map<string, number>;
  /** Concurrent calls reached (all answered and not yet ended) at the start of the hold. */
  peak: number;
  rtp: RtpStats;
  /** Loss over the whole run: 1 − received / sent. */
  loss: number;
  /** CPU during the hold (steady media load), % of one core. */
  cpuHold: CpuShare;
  /** CPU over the whole run (ramp, hold, teardown), % of one core. */
  cpuAll: CpuShare;
  /** Calls whose CDR (call.ended "answered") reached the edge, relay mode only. */
  cdrsAnswered: number | undefined;
  seconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const SETUP_WATCHDOG_MS = 40_000;

export async function runConcurrent(path: CallSetupPath, o: ConcurrentOptions): Promise<ConcurrentResult> {
  const started = performance.now();
  const rtp = await RtpLoad.start(track);
  const failures = new Map<string, number>();
  /** Calls with at least one failure (a call counts once, whatever went wrong with it). */
  const failedCalls = new Set<number>();
  const fail = (i: number, why: string): void => {
    failedCalls.add(i);
    failures.set(why, (failures.get(why) ?? 0) + 1);
  };
  const relayPid = path.kind === "relay" ? path.relay.pid : -1;
  const rtpenginePid = path.kind === "relay" ? path.relay.rtpenginePid : path.rtpenginePid;
  const cpuNow = async () => ({
    relay: relayPid > 0 ? await cpuMs(relayPid) : 0,
    rtpengine: await cpuMs(rtpenginePid),
    generator: await cpuMs(rtp.pid),
    bench: selfCpuMs(),
    machine: await machineBusyMs(),
    relayWait: relayPid > 0 ? await runQueueWaitMs(relayPid) : 0,
    at: performance.now(),
  });
  const pct = (a: Awaited<ReturnType<typeof cpuNow>>, b: Awaited<ReturnType<typeof cpuNow>>): CpuShare => {
    const wall = b.at - a.at;
    const p = (k: "relay" | "rtpengine" | "generator" | "bench" | "machine" | "relayWait") =>
      ((b[k] - a[k]) / wall) * 100;
    const ours = p("relay") + p("rtpengine") + p("generator") + p("bench");
    return {
      relay: p("relay"),
      rtpengine: p("rtpengine"),
      generator: p("generator"),
      bench: p("bench"),
      others: Math.max(0, p("machine") - ours),
      relayWait: p("relayWait"),
    };
  };
  const cdrsBefore = path.kind === "relay" ? (path.relay.endedByDisposition().get("answered") ?? 0) : 0;

  try {
    const legs = await rtp.open(2 * o.calls);
    const cpu0 = await cpuNow();
    const runId = Math.random().toString(36).slice(2, 8);
    const tokenOf = (i: number): string => `bench-${runId}-${i}`;
    const calleeMedia = new Map<string, { port: number }>();
    const dialogs: (CallerDialog | undefined)[] = [];
    const rtpCalls: string[] = [];
    let answered = 0;
    let endedEarly = 0;

    if (path.kind === "relay") {
      const { callee } = path;
      callee.answer = (leg) => {
        const i = Number(leg.token.slice(leg.token.lastIndexOf("-") + 1));
        const b = legs[2 * i + 1];
        if (!leg.token.startsWith(`bench-${runId}-`) || !b || !leg.media) return undefined;
        calleeMedia.set(leg.token, leg.media);
        return benchSdp(b.port, leg.token);
      };
      callee.onBye = (leg) => {
        if (!leg.token.startsWith(`bench-${runId}-`)) return;
        // the relay hung up a call we still hold: that is a dropped call (counted when we find it byed)
      };
    }

    const stage: string[] = [];
    const settled: boolean[] = [];
    const setUp = async (i: number): Promise<void> => {
      const a = legs[2 * i];
      const b = legs[2 * i + 1];
      if (!a || !b) return;
      try {
        if (path.kind === "relay") {
          stage[i] = "INVITE";
          const d = await path.caller.call(path.dial, path.relay.sip, benchSdp(a.port, tokenOf(i)));
          dialogs[i] = d;
          const bMedia = calleeMedia.get(tokenOf(i));
          if (!d.media || !bMedia) {
            fail(i, "answered without usable SDP");
            return;
          }
          answered++;
          stage[i] = "rtpgen start";
          await rtp.start(a.id, d.media.port, b.id);
          await rtp.start(b.id, bMedia.port, a.id);
        } else {
          const callId = `${tokenOf(i)}@bench`;
          stage[i] = "ng offer";
          const offer = await path.media.offer({ callId, fromTag: "a", sdp: benchSdp(a.port, tokenOf(i)) });
          rtpCalls[i] = callId;
          stage[i] = "ng answer";
          const answer = await path.media.answer({
            callId,
            fromTag: "a",
            toTag: "b",
            sdp: benchSdp(b.port, tokenOf(i)),
          });
          const toB = sdpMedia(offer.sdp);
          const toA = sdpMedia(answer.sdp);
          if (!toA || !toB) {
            fail(i, "rtpengine answered without usable SDP");
            return;
          }
          answered++;
          stage[i] = "rtpgen start";
          await rtp.start(a.id, toA.port, b.id);
          await rtp.start(b.id, toB.port, a.id);
        }
        stage[i] = "done";
      } catch (err) {
        const status = (err as { status?: number }).status;
        fail(i, status ? `setup ${status}` : `setup: ${String((err as Error).message ?? err).slice(0, 60)}`);
      } finally {
        settled[i] = true;
      }
    };

    // Ramp: one new call every 1/rate s, on a schedule (not after the previous one), like phones do.
    const setups: Promise<void>[] = [];
    const rampStart = performance.now();
    for (let i = 0; i < o.calls; i++) {
      const due = rampStart + (i * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      // a watchdog per call, so one answer that never comes cannot hold the run up
      setups.push(
        Promise.race([
          setUp(i),
          sleep(SETUP_WATCHDOG_MS).then(() => {
            if (!settled[i]) fail(i, `setup stuck in ${stage[i] ?? "?"} for ${SETUP_WATCHDOG_MS / 1000} s`);
          }),
        ]),
      );
      if (i > 0 && i % Math.max(1, Math.round(o.rate * 5)) === 0)
        o.log(
          `  ${i} calls offered, ${answered} answered, ${[...failures.values()].reduce((x, y) => x + y, 0)} failed`,
        );
    }
    await Promise.all(setups);
    const peak = answered;
    o.log(
      `  ramp done in ${((performance.now() - rampStart) / 1000).toFixed(1)} s: ${answered}/${o.calls} answered; holding ${o.holdSeconds} s`,
    );

    // Hold, with a progress line every 5 s (packets/s both ways, CPU).
    const holdStart = await cpuNow();
    let before = await rtp.stats();
    let prev = holdStart;
    for (let t = 0; t < o.holdSeconds; ) {
      const step = Math.min(5, o.holdSeconds - t);
      await sleep(step * 1000);
      t += step;
      const now = await cpuNow();
      const s = await rtp.stats();
      const c = pct(prev, now);
      const secs = (now.at - prev.at) / 1000;
      o.log(
        `  hold ${t}/${o.holdSeconds} s: ${((s.received - before.received) / secs).toFixed(0)} RTP packets/s received ` +
          `(${((s.sent - before.sent) / secs).toFixed(0)} sent); CPU relay ${c.relay.toFixed(0)}% rtpengine ${c.rtpengine.toFixed(0)}% ` +
          `rtpgen ${c.generator.toFixed(0)}% bench ${c.bench.toFixed(0)}% other processes ${c.others.toFixed(0)}%; ` +
          `one-way delay p99 ${s.delayP99} ms, late ${s.latePackets}`,
      );
      before = s;
      prev = now;
    }
    const holdEnd = await cpuNow();

    // Media off first, so hanging up does not count as loss; let what is in flight arrive.
    await rtp.stopAll();
    await sleep(1000);
    const stats = await rtp.stats();
    // a leg that heard nothing is a call with one-way (or no) audio: failed, as its user would say
    if (stats.silent > 0) failures.set("legs that received no RTP", stats.silent);

    // Tear down at twice the ramp rate.
    const ends: Promise<void>[] = [];
    const byeStart = performance.now();
    for (let i = 0; i < o.calls; i++) {
      const due = byeStart + (i * 1000) / (2 * o.rate);
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (path.kind === "relay") {
        const d = dialogs[i];
        if (!d) continue;
        ends.push(
          path.caller.bye(d).then((status) => {
            if (status === -1) endedEarly++;
            else if (status !== 200) fail(i, `BYE ${status || "timeout"}`);
            path.callee.forget(d.callId);
          }),
        );
      } else {
        const callId = rtpCalls[i];
        if (callId)
          ends.push(
            path.media.delete(callId).then(
              (ok) => {
                if (!ok) fail(i, "delete: unknown call");
              },
              () => fail(i, "delete failed"),
            ),
          );
      }
    }
    await Promise.all(ends);
    if (endedEarly > 0) failures.set("ended by the relay before our BYE", endedEarly);

    let cdrsAnswered: number | undefined;
    if (path.kind === "relay") {
      const { relay } = path;
      const want = cdrsBefore + answered - endedEarly;
      await relay.edge
        .until(() => (relay.endedByDisposition().get("answered") ?? 0) >= want, 15_000, "CDRs")
        .catch(() => undefined);
      cdrsAnswered = (relay.endedByDisposition().get("answered") ?? 0) - cdrsBefore;
      // forget the callee side of calls that never got a dialog
      for (const leg of [...path.callee.legs.values()])
        if (leg.token.startsWith(`bench-${runId}-`)) path.callee.forget(leg.callId);
    }
    const end = await cpuNow();
    // every call not answered, or failed later, plus each leg that heard nothing (one-way audio)
    for (let i = 0; i < o.calls; i++)
      if (!dialogs[i] && !rtpCalls[i] && !failedCalls.has(i)) fail(i, "not set up");
    const failed = failedCalls.size + stats.silent + endedEarly;
    return {
      mode: path.kind,
      calls: o.calls,
      rate: o.rate,
      holdSeconds: o.holdSeconds,
      answered,
      failed,
      failures,
      peak,
      rtp: stats,
      loss: stats.sent > 0 ? 1 - stats.received / stats.sent : 1,
      cpuHold: pct(holdStart, holdEnd),
      cpuAll: pct(cpu0, end),
      cdrsAnswered,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await rtp.close();
  }
}
