// Benchmark (prints figures, asserts nothing): ng round trips of the B2BUA's per-call sequence, offer,
// answer, delete, against a real rtpengine; first one call at a time, then with calls in flight.
// Run: npx tsx relay/src/pbx/media/ng-bench.ts [calls=500]
import { loadavg } from "node:os";
import pino from "pino";
import { RtpPeer } from "../../testing/rtp-peer.ts";
import { MediaService } from "./media.ts";
import { startRtpengine } from "./rtpengine-process.ts";

const calls = Number(process.argv[2] ?? 500);
const pct = (xs: number[], q: number): number =>
  [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
const ms = (x: number): string => `${x.toFixed(2)} ms`;

async function main(): Promise<void> {
  const rtpe = await startRtpengine({
    interface: "127.0.0.1",
    portMin: 36000,
    portMax: 39999,
    logger: pino({ level: "warn" }),
  });
  const media = new MediaService({ ng: rtpe.ng });
  const a = await RtpPeer.open();
  const b = await RtpPeer.open();
  const offerSdp = a.sdp();
  const answerSdp = b.sdp();
  try {
    for (const inFlight of [1, 8, 32]) {
      const lat = { offer: [] as number[], answer: [] as number[], delete: [] as number[] };
      let failed = 0;
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < calls) {
            const callId = `bench-${inFlight}-${next++}`;
            try {
              let s = performance.now();
              await media.offer({ callId, fromTag: "a", sdp: offerSdp });
              lat.offer.push(performance.now() - s);
              s = performance.now();
              await media.answer({ callId, fromTag: "a", toTag: "b", sdp: answerSdp });
              lat.answer.push(performance.now() - s);
              s = performance.now();
              if (!(await media.delete(callId))) failed++;
              lat.delete.push(performance.now() - s);
            } catch {
              failed++;
            }
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      const line = (k: keyof typeof lat): string =>
        `${k} p50 ${ms(pct(lat[k], 0.5))} p99 ${ms(pct(lat[k], 0.99))}`;
      console.log(
        `${calls} calls, ${inFlight} in flight: ${(calls / secs).toFixed(0)} calls/s, ${failed} failed; ${line("offer")}; ${line("answer")}; ${line("delete")}`,
      );
    }
    console.log(
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} (2 cores; other work on the machine inflates these)`,
    );
  } finally {
    a.close();
    b.close();
    media.close();
    await rtpe.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
