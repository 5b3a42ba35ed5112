// Hashed timer wheel shared by every transaction of a stack: O(1) schedule/cancel and one Node timer in total,
// so thousands of live transactions (each with 2-3 RFC 3261 timers) cost no setTimeout churn.
// Precision is one tick (a few ms), which is far below what SIP timers need.

/** Whatever owns timers; `kind` says which of its timers fired (no closure per timer). */
export interface TimerTarget {
  onTimer(kind: number): void;
}

export class Timer {
  /** Set to undefined once fired or cancelled. */
  slot: Set<Timer> | undefined;
  constructor(
    readonly dueTick: number,
    readonly target: TimerTarget,
    readonly kind: number,
  ) {}
}

const SLOTS = 1024; // power of two; timers further out than SLOTS ticks just wait more rounds

export class TimerWheel {
  private readonly slots: Set<Timer>[] = [];
  private readonly origin = performance.now();
  /** Last tick whose slot was processed. */
  private processed: number;
  private handle: NodeJS.Timeout | undefined;
  private count = 0;
  private dead = false;
  /** Errors thrown by timer targets (they must not stop the wheel). */
  errors = 0;

  constructor(
    private readonly tickMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    for (let i = 0; i < SLOTS; i++) this.slots.push(new Set());
    this.processed = this.nowTick();
  }

  get size(): number {
    return this.count;
  }

  private nowTick(): number {
    return Math.floor((performance.now() - this.origin) / this.tickMs);
  }

  /** Fires target.onTimer(kind) after about delayMs (never earlier, at most one tick later). */
  schedule(delayMs: number, target: TimerTarget, kind: number): Timer {
    const due = Math.max(
      Math.ceil((performance.now() - this.origin + delayMs) / this.tickMs),
      this.processed + 1,
    );
    const timer = new Timer(due, target, kind);
    if (this.dead) return timer; // after shutdown(): never fires
    const slot = this.slots[due & (SLOTS - 1)];
    if (slot) {
      slot.add(timer);
      timer.slot = slot;
      this.count++;
    }
    if (this.handle === undefined) this.start();
    return timer;
  }

  cancel(timer: Timer | undefined): void {
    if (timer?.slot === undefined) return;
    timer.slot.delete(timer);
    timer.slot = undefined;
    this.count--;
  }

  /** Forgets every timer and ignores later schedules (stack closed). */
  shutdown(): void {
    this.dead = true;
    this.clear();
  }

  /** Stops the driver and forgets every timer. */
  clear(): void {
    for (const slot of this.slots) {
      for (const t of slot) t.slot = undefined;
      slot.clear();
    }
    this.count = 0;
    this.stop();
  }

  private start(): void {
    this.processed = Math.max(this.processed, this.nowTick() - 1);
    this.handle = setInterval(() => this.advance(), this.tickMs);
    this.handle.unref();
  }

  private stop(): void {
    if (this.handle !== undefined) clearInterval(this.handle);
    this.handle = undefined;
  }

  /** Processes every slot between the last processed tick and now (catching up after event-loop stalls). */
  private advance(): void {
    const now = this.nowTick();
    const steps = Math.min(now - this.processed, SLOTS);
    const first = now - steps + 1;
    for (let tick = first; tick <= now; tick++) {
      this.processed = tick;
      const slot = this.slots[tick & (SLOTS - 1)];
      if (slot === undefined || slot.size === 0) continue;
      for (const t of slot) {
        if (t.dueTick > now) continue;
        slot.delete(t);
        t.slot = undefined;
        this.count--;
        try {
          t.target.onTimer(t.kind);
        } catch (err) {
          this.errors++;
          this.onError(err);
        }
      }
    }
    this.processed = now;
    if (this.count === 0) this.stop();
  }
}
