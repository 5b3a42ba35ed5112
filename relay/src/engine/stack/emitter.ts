// Minimal typed event emitter: transactions are created by the thousand per second, so this keeps per-object
// cost to one lazily created listener table and never throws a listener's exception into the stack.

/** Event map: event name → tuple of listener arguments. */
export type EventMap = { [event: string]: unknown[] };

export type Listener<A extends unknown[]> = (...args: A) => void;

export class Emitter<Events extends EventMap> {
  private listeners: { [K in keyof Events]?: Listener<Events[K]>[] } | undefined;

  on<K extends keyof Events>(event: K, cb: Listener<Events[K]>): this {
    this.listeners ??= {};
    const list = this.listeners[event];
    if (list) list.push(cb);
    else this.listeners[event] = [cb];
    return this;
  }

  off<K extends keyof Events>(event: K, cb: Listener<Events[K]>): this {
    const list = this.listeners?.[event];
    if (!list) return this;
    const i = list.indexOf(cb);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** True when someone listens (lets callers skip building event arguments). */
  protected hasListeners(event: keyof Events): boolean {
    const list = this.listeners?.[event];
    return list !== undefined && list.length > 0;
  }

  /** Calls every listener; a throwing listener is reported to onListenerError and the others still run. */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const list = this.listeners?.[event];
    if (!list) return;
    for (const cb of list.length === 1 ? list : list.slice()) {
      try {
        cb(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  protected removeAllListeners(): void {
    this.listeners = undefined;
  }

  protected onListenerError(_err: unknown, _event: keyof Events): void {}
}
