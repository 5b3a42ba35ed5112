// The Node outbox timer with a scripted run function: it ticks, a wake runs at once,
// runs never overlap, a wake during a run asks for exactly one more, a failing run
// is logged and the timer goes on, stop waits for the run in progress.
import { describe, expect, it, vi } from "vitest";
import type { Logger } from "../types.ts";
import { NodeJobTimer } from "./job-timer.ts";

function logger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  return {
    errors,
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (data) => void errors.push(String(data.err)),
  };
}

/** A run function whose runs the test finishes by hand; counts concurrent runs. */
function controlledRuns() {
  let active = 0;
  let maxActive = 0;
  const finishers: (() => void)[] = [];
  return {
    started: () => finishers.length,
    maxActive: () => maxActive,
    finish: (i: number) => finishers[i]?.(),
    run: () =>
      new Promise<void>((resolve) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        finishers.push(() => {
          active -= 1;
          resolve();
        });
      }),
  };
}

describe("NodeJobTimer", () => {
  it("runs at start, never overlaps, and a wake during a run gives exactly one more run", async () => {
    const runs = controlledRuns();
    // A tick far away: only start() and wake() cause runs in this test.
    const timer = new NodeJobTimer(runs.run, logger(), 3_600_000);
    timer.start();
    expect(runs.started()).toBe(1);
    timer.wake();
    timer.wake();
    timer.wake();
    await new Promise((r) => setImmediate(r));
    expect(runs.started()).toBe(1);
    runs.finish(0);
    await vi.waitFor(() => expect(runs.started()).toBe(2));
    runs.finish(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(runs.started()).toBe(2);
    expect(runs.maxActive()).toBe(1);
    await timer.stop();
  });

  it("a wake when idle runs at once; ticks keep coming", async () => {
    let count = 0;
    const timer = new NodeJobTimer(
      async () => {
        count += 1;
      },
      logger(),
      3_600_000,
    );
    timer.start();
    await vi.waitFor(() => expect(count).toBe(1));
    timer.wake();
    await vi.waitFor(() => expect(count).toBe(2));
    await timer.stop();

    let ticks = 0;
    const fast = new NodeJobTimer(
      async () => {
        ticks += 1;
      },
      logger(),
      5,
    );
    fast.start();
    await vi.waitFor(() => expect(ticks).toBeGreaterThanOrEqual(3));
    await fast.stop();
  });

  it("a failing run is logged and the next tick runs again", async () => {
    const log = logger();
    let calls = 0;
    const timer = new NodeJobTimer(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error("database is locked");
      },
      log,
      5,
    );
    timer.start();
    await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(2));
    await timer.stop();
    expect(log.errors[0]).toBe("database is locked");
  });

  it("stop waits for the run in progress, then nothing runs any more", async () => {
    const runs = controlledRuns();
    const timer = new NodeJobTimer(runs.run, logger(), 5);
    timer.start();
    let stopped = false;
    const stopping = timer.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    runs.finish(0);
    await stopping;
    timer.wake();
    await new Promise((r) => setTimeout(r, 20));
    expect(runs.started()).toBe(1);
  });

  it("stop gives up waiting after the grace period", async () => {
    const runs = controlledRuns();
    const timer = new NodeJobTimer(runs.run, logger(), 3_600_000);
    timer.start();
    await timer.stop(10);
    expect(runs.started()).toBe(1);
    runs.finish(0);
  });
});
