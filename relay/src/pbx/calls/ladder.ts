// A call's SIP ladder for the CDR: every message of every leg as (time, leg, direction, label), no bodies and
// no credentials. Bounded: past MAX_LADDER_STEPS it keeps the first steps (how the call was set up) and the
// latest ones (how it ended), dropping the middle (e.g. a long series of re-INVITEs).
import { type LadderStep, MAX_LADDER_STEPS } from "@gosip/drizzle";

const HEAD = Math.floor(MAX_LADDER_STEPS / 2);
const TAIL = MAX_LADDER_STEPS - HEAD;

export class Ladder {
  private readonly head: LadderStep[] = [];
  private tail: LadderStep[] = [];

  constructor(
    private readonly startedAt: number,
    private readonly now: () => number,
  ) {}

  /** A method ("INVITE") or a status (180, "Ringing" → "180 Ringing"). */
  add(leg: string, dir: "in" | "out", what: string | number, reason?: string): void {
    const label = (typeof what === "number" ? `${what}${reason ? ` ${reason}` : ""}` : what).slice(0, 64);
    const step: LadderStep = { t: Math.max(0, Math.round(this.now() - this.startedAt)), leg, dir, label };
    if (this.head.length < HEAD) {
      this.head.push(step);
      return;
    }
    this.tail.push(step);
    // Trim in batches so a long call costs O(1) per step on average.
    if (this.tail.length > TAIL * 2) this.tail = this.tail.slice(-TAIL);
  }

  steps(): LadderStep[] {
    return [...this.head, ...this.tail.slice(-TAIL)];
  }
}

/** Reason phrases for the statuses the B2BUA itself sends or commonly sees. */
export const REASONS: Readonly<Record<number, string>> = {
  100: "Trying",
  180: "Ringing",
  181: "Call Is Being Forwarded",
  183: "Session Progress",
  200: "OK",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  484: "Address Incomplete",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  500: "Server Internal Error",
  503: "Service Unavailable",
  600: "Busy Everywhere",
  603: "Decline",
};
