/**
 * Injectable failures for the simulator's REST server: each rule matches a
 * method and path and is consumed `times` times, rules in the order they were
 * added. The kinds are what a Twilio client meets in practice: throttling
 * (429 with Retry-After), server errors, a request that never gets an answer,
 * one that takes effect and then never answers (the ambiguous case an outbox
 * must check before retrying), and a connection reset.
 */

export type FaultKind = "429" | "500" | "503" | "timeout" | "timeout-after-apply" | "reset";

export const FAULT_KINDS: readonly FaultKind[] = [
  "429",
  "500",
  "503",
  "timeout",
  "timeout-after-apply",
  "reset",
];

export interface FaultRule {
  /** Only this method (any when absent). */
  method?: string;
  /** A string matches when the request path ends with it (e.g. "/Messages.json"); a RegExp is tested. */
  path: string | RegExp;
  /** How many matching requests it affects. */
  times: number;
  kind: FaultKind;
  /** Retry-After for 429 (and 503), in seconds. */
  retryAfterSeconds?: number;
}

export interface ActiveFault extends FaultRule {
  remaining: number;
}

export class Faults {
  private readonly rules: ActiveFault[] = [];

  add(rule: FaultRule): void {
    if (!FAULT_KINDS.includes(rule.kind)) throw new Error(`unknown fault kind ${String(rule.kind)}`);
    if (!Number.isInteger(rule.times) || rule.times < 1) throw new Error("times must be a positive integer");
    this.rules.push({ ...rule, remaining: rule.times });
  }

  clear(): void {
    this.rules.length = 0;
  }

  /** Rules still waiting to fire. */
  pending(): ActiveFault[] {
    return this.rules.filter((r) => r.remaining > 0);
  }

  /** The first rule matching this request, consumed once; undefined when none. */
  take(method: string, path: string): ActiveFault | undefined {
    const rule = this.rules.find(
      (r) =>
        r.remaining > 0 &&
        (!r.method || r.method.toUpperCase() === method) &&
        (typeof r.path === "string" ? path.endsWith(r.path) : r.path.test(path)),
    );
    if (rule) rule.remaining -= 1;
    return rule;
  }
}
