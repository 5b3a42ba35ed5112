/**
 * The outbox runner's clock on Node: runs due jobs every second, and at once after
 * `wake()` (an enqueue), never two runs at the same time: a wake during a run asks
 * for one more run right after it, so a job enqueued mid-run is not left for the
 * next tick. `stop()` ends the timer and waits (bounded) for the run in progress.
 */
import type { JobScheduler, Logger } from "../types.ts";

export const JOB_TICK_MS = 1_000;

export class NodeJobTimer implements JobScheduler {
  private interval: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly runOnce: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly tickMs = JOB_TICK_MS,
  ) {}

  start(): void {
    if (this.interval || this.stopped) return;
    this.interval = setInterval(() => this.tick(false), this.tickMs);
    // The HTTP server keeps the process alive; the timer alone must not.
    this.interval.unref();
    this.tick(false);
  }

  wake(): void {
    if (this.stopped || !this.interval) return;
    // Off the caller's stack: enqueueJob's caller (a webhook) answers first.
    setImmediate(() => this.tick(true));
  }

  private tick(woken: boolean): void {
    if (this.stopped) return;
    if (this.running) {
      if (woken) this.again = true;
      return;
    }
    this.running = this.runOnce()
      .then(
        () => undefined,
        (err: unknown) => {
          // A database hiccup: logged, and the next tick tries again.
          this.logger.error({ err: err instanceof Error ? err.message : String(err) }, "job runner failed");
        },
      )
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.tick(true);
        }
      });
  }

  /** Stops ticking; resolves when the current run ends or after `graceMs` (its leases then expire). */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    this.interval = undefined;
    const current = this.running;
    if (!current) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([current, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
}
