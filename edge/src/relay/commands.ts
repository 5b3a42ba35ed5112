/**
 * Commands waiting for the relay's `command-result`, by command id. Held in memory
 * by whoever sent them (the Node link, or the Durable Object during the RPC that
 * waits): a command outlives neither its timeout nor the socket it went out on.
 */
import type { EdgeMessage, RelayCommand } from "@gosip/drizzle";
import type { RelayCommandOutcome } from "../platform/types.ts";

export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

export class PendingCommands {
  private readonly waiting = new Map<
    string,
    { resolve: (outcome: RelayCommandOutcome) => void; timer: ReturnType<typeof setTimeout> }
  >();

  /** Registers a command id; the promise settles with its result, a timeout, or `failAll`. */
  wait(id: string, timeoutMs: number): Promise<RelayCommandOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ ok: false, reason: "timeout", error: "The relay did not answer in time" });
      }, timeoutMs);
      this.waiting.set(id, { resolve, timer });
    });
  }

  /**
   * Sends `command` with a fresh id through `send` (the runtime's socket) and waits for its command-result;
   * "offline" at once when no relay could be sent to.
   */
  async run(
    command: RelayCommand,
    timeoutMs: number,
    send: (message: EdgeMessage) => Promise<boolean>,
  ): Promise<RelayCommandOutcome> {
    const id = crypto.randomUUID();
    const result = this.wait(id, timeoutMs);
    if (!(await send({ type: "command", id, command }))) {
      this.settle(id, false, undefined);
      return { ok: false, reason: "offline", error: "No relay is connected" };
    }
    return result;
  }

  /** A `command-result` arrived; false when nobody waits for it (late, or unknown). */
  settle(id: string, ok: boolean, error: string | undefined): boolean {
    const entry = this.waiting.get(id);
    if (!entry) return false;
    this.waiting.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(ok ? { ok: true } : { ok: false, reason: "refused", error: error ?? "The relay refused" });
    return true;
  }

  /** The socket went away: nothing will answer these. */
  failAll(): void {
    for (const [id, entry] of this.waiting) {
      clearTimeout(entry.timer);
      entry.resolve({ ok: false, reason: "offline", error: "The relay disconnected" });
      this.waiting.delete(id);
    }
  }
}
