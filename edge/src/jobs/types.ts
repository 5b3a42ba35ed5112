/**
 * The durable outbox's contract (SPEC §8). Work that talks to another service —
 * every Twilio REST call, email and push — is a row in `jobs`, enqueued with an
 * idempotency key and run by the job runner (runner.ts) with retries:
 * exponential backoff with jitter (base 1 s, cap 30 s), Retry-After honoured,
 * a circuit breaker per service, an admin alert after 3 consecutive failures.
 *
 * A feature defines its job kinds as `JobHandler`s and lists them in
 * registry.ts. A handler succeeds by returning, and fails by throwing:
 * - `RetryableJobError` (or TwilioApiError 429/5xx, TwilioNetworkError): try again later;
 * - `PermanentJobError` (or TwilioApiError 4xx): give up now, recorded as dead;
 * - anything else: retried like a RetryableJobError.
 * A handler must be safe to run again after a crash (at least once).
 */
import type { JobPayload } from "@gosip/drizzle";
import type { EdgeDeps } from "../platform/types.ts";

/** Services with their own backoff and circuit breaker. */
export type JobService = "twilio" | "email" | "gotify" | "relay" | "internal";

export interface JobContext<P extends JobPayload = JobPayload> {
  deps: EdgeDeps;
  job: {
    id: string;
    kind: string;
    payload: P;
    /** Attempts before this one (0 on the first run). */
    attempts: number;
    idempotencyKey: string;
  };
  /**
   * True when an earlier attempt may have reached the service (it timed out or the
   * connection broke after sending). A non-idempotent handler (sending an SMS) must
   * first check whether that attempt took effect, and must not send again if it did.
   */
  ambiguous: boolean;
}

export interface JobHandler<P extends JobPayload = JobPayload> {
  service: JobService;
  /** Attempts before the job is given up (default: the row's max_attempts, 10). */
  maxAttempts?: number;
  /**
   * Smallest delay between attempts in ms (overrides the 1 s backoff base), e.g. email's
   * "3 tries over an hour" uses a long base.
   */
  backoffBaseMs?: number;
  /** Silent: giving up does not alert the admin (Gotify: "silent fail after 3"). */
  silent?: boolean;
  run(ctx: JobContext<P>): Promise<void>;
  /** Called once when the job is given up (dead), e.g. to record "email not delivered". */
  onGiveUp?(ctx: JobContext<P>, error: string): Promise<void>;
}

export class RetryableJobError extends Error {
  override name = "RetryableJobError";
  constructor(
    message: string,
    readonly options: { retryAfterMs?: number; ambiguous?: boolean } = {},
  ) {
    super(message);
  }
}

export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}
