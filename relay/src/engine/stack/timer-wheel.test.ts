// The shared timer wheel: timers fire in due order, never early, cancelled ones never, and the wheel stops its
// interval when empty (so an idle stack costs nothing).
import { describe, expect, it } from "vitest";
import { type TimerTarget, TimerWheel } from "./timer-wheel.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("TimerWheel", () => {
  it("fires each timer once, not before its delay, in due order; cancelled timers never fire", async () => {
    const wheel = new TimerWheel(2);
    const fired: { kind: number; at: number }[] = [];
    const start = performance.now();
    const target: TimerTarget = { onTimer: (kind) => fired.push({ kind, at: performance.now() - start }) };
    wheel.schedule(30, target, 3);
    wheel.schedule(10, target, 1);
    const cancelled = wheel.schedule(15, target, 99);
    wheel.schedule(20, target, 2);
    wheel.cancel(cancelled);
    wheel.cancel(cancelled); // twice is harmless
    expect(wheel.size).toBe(3);
    await sleep(60);
    expect(fired.map((f) => f.kind)).toEqual([1, 2, 3]);
    for (const f of fired) expect(f.at).toBeGreaterThanOrEqual(f.kind * 10 - 1);
    expect(wheel.size).toBe(0);
  });

  it("handles delays longer than one revolution and thousands of timers", async () => {
    const wheel = new TimerWheel(1);
    let count = 0;
    const target: TimerTarget = { onTimer: () => count++ };
    for (let i = 0; i < 5000; i++) wheel.schedule(i % 50, target, 0);
    const far = wheel.schedule(1100, target, 1); // > 1024 ticks of 1 ms
    await sleep(80);
    expect(count).toBe(5000);
    expect(wheel.size).toBe(1);
    wheel.cancel(far);
    expect(wheel.size).toBe(0);
  });

  it("keeps running when a target throws, and reports the error", async () => {
    const errors: unknown[] = [];
    const wheel = new TimerWheel(2, (err) => errors.push(err));
    let ok = 0;
    wheel.schedule(
      5,
      {
        onTimer: () => {
          throw new Error("boom");
        },
      },
      0,
    );
    wheel.schedule(5, { onTimer: () => ok++ }, 0);
    await sleep(30);
    expect(ok).toBe(1);
    expect(errors).toHaveLength(1);
    expect(wheel.errors).toBe(1);
  });

  it("timers scheduled from a firing timer work, and shutdown() silences everything", async () => {
    const wheel = new TimerWheel(2);
    const fired: number[] = [];
    const target: TimerTarget = {
      onTimer: (kind) => {
        fired.push(kind);
        if (kind < 3) wheel.schedule(5, target, kind + 1);
      },
    };
    wheel.schedule(5, target, 1);
    await sleep(50);
    expect(fired).toEqual([1, 2, 3]);
    wheel.schedule(5, target, 10);
    wheel.shutdown();
    wheel.schedule(5, target, 11);
    await sleep(30);
    expect(fired).toEqual([1, 2, 3]);
    expect(wheel.size).toBe(0);
  });
});
