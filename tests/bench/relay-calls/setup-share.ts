// The relay's own share of call setup, measured on the wire: our caller timestamps the moment it sends the
// INVITE that gets through (the one answering the 407), our callee the moment the relay's b-leg INVITE for
// that call arrives (matched by a token in the SDP's s= line, which rtpengine keeps). Both phones live in this
// process, so one clock serves both ends. The same phones calling each other directly (no relay) give the
// floor of the method itself (loopback, this process's event loop), reported beside it. Calls are short
// (BYE at once after the answer) and placed on a fixed schedule at `rate` per second.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { quantile } from "../../../relay/test/sipp.ts";
import { benchSdp, type Callee, type Caller } from "./sip-ua.ts";

export interface SetupShareResult {
  name: string;
  calls: number;
  rate: number;
  ok: number;
  failed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** This process's event-loop delay p99 during the run (it inflates the figures when high), ms. */
  loopP99: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSetupShare(
  name: string,
  caller: Caller,
  callee: Callee,
  target: { dial: string; via: { address: string; port: number } },
  calls: number,
  rate: number,
): Promise<SetupShareResult> {
  const runId = Math.random().toString(36).slice(2, 8);
  const arrived = new Map<string, number>();
  callee.answer = (leg) => {
    if (!leg.token.startsWith(`share-${runId}-`)) return undefined;
    arrived.set(leg.token, leg.invitedAt);
    return benchSdp(40_000, leg.token);
  };
  const shares: number[] = [];
  let failed = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const one = async (i: number): Promise<void> => {
    const token = `share-${runId}-${i}`;
    try {
      const d = await caller.call(target.dial, target.via, benchSdp(30_000 + (i % 1000), token));
      const at = arrived.get(token);
      if (at === undefined) failed++;
      else shares.push(at - d.invitedAt);
      const status = await caller.bye(d);
      if (status !== 200) failed++;
      callee.forget(d.callId);
    } catch {
      failed++;
    }
  };
  const all: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < calls; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    all.push(one(i));
  }
  await Promise.all(all);
  loop.disable();
  for (const leg of [...callee.legs.values()])
    if (leg.token.startsWith(`share-${runId}-`)) callee.forget(leg.callId);
  return {
    name,
    calls,
    rate,
    ok: shares.length,
    failed,
    p50: quantile(shares, 0.5),
    p90: quantile(shares, 0.9),
    p99: quantile(shares, 0.99),
    max: quantile(shares, 1),
    loopP99: loop.percentile(99) / 1e6,
  };
}
