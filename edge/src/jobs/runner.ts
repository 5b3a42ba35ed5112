/**
 * The durable outbox's runner (SPEC §8): claims due jobs from the `jobs` table,
 * runs each with its handler from registry.ts and records the outcome.
 *
 * - Claiming is one conditional UPDATE … RETURNING per job (status pending and due,
 *   or running with an expired lease), so two runners (the Node timer and a wake,
 *   two Workers isolates) never run the same attempt twice.
 * - A claim takes a lease (`lockedUntil`); a runner that crashes mid-job leaves a
 *   lease that expires, and the job is picked up again, flagged ambiguous (the
 *   crashed attempt may have reached the service).
 * - Failures back off exponentially with full jitter (base 1 s, cap 30 s), a
 *   handler's `backoffBaseMs` as the smallest delay, Retry-After when the service
 *   sent one; TwilioApiError 4xx (not 429) and PermanentJobError give up at once.
 * - An ambiguous failure is persisted as a "ambiguous:" prefix of `lastError` so the
 *   next attempt (maybe in another process) runs with `ctx.ambiguous = true`.
 * - Per service: a circuit breaker and the "degraded" admin alert (breaker.ts).
 */
import { type JobPayload, jobs, systemEvents } from "@gosip/drizzle";
import { and, asc, eq, lt, lte, notInArray, or, sql } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { TwilioApiError, TwilioNetworkError } from "../twilio/rest.ts";
import { type BreakerTransition, breakersFor, type ServiceBreakers } from "./breaker.ts";
import { jobHandlers } from "./registry.ts";
import { type JobContext, type JobHandler, PermanentJobError, RetryableJobError } from "./types.ts";

/** Default backoff: full jitter over base · 2^(n-1), capped (SPEC §8). */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 30_000;
/** A Retry-After longer than this is clamped (a confused server must not park a job for days). */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;
/** How long a claimed job is ours; longer than any handler's own timeouts. */
export const DEFAULT_LEASE_MS = 2 * 60_000;
/** Marks a lastError whose attempt may have reached the service. */
export const AMBIGUOUS_PREFIX = "ambiguous: ";
const LAST_ERROR_MAX = 1_000;

export interface RunDueJobsOptions {
  /** Handlers by kind (tests inject their own); default the registry. */
  handlers?: Readonly<Record<string, JobHandler>>;
  /** At most this many jobs in one call (default 100); the rest wait for the next tick. */
  maxJobs?: number;
  leaseMs?: number;
  /**
   * Real time an attempt may take before the runner stops waiting for it (default 90 % of
   * the lease): it counts as an ambiguous failure, so a hung handler cannot stall the outbox.
   */
  attemptTimeoutMs?: number;
  /** Uniform [0, 1) source for the jitter (tests make it deterministic). */
  random?: () => number;
  /** Breaker state (default: one per `deps`, i.e. per process or isolate). */
  breakers?: ServiceBreakers;
}

export interface RunDueJobsResult {
  /** Jobs whose handler ran (or that were parked: unknown kind). */
  ran: number;
  succeeded: number;
  /** Failed attempts scheduled again. */
  retried: number;
  /** Given up (permanent failure, attempts exhausted, unknown kind). */
  dead: number;
}

type JobRow = typeof jobs.$inferSelect;

/**
 * The delay before the next attempt after `failures` failed attempts (1 after the
 * first): a handler's `floorMs` plus full jitter over min(cap, base · 2^(failures-1)).
 */
export function backoffDelayMs(
  failures: number,
  random: () => number,
  floorMs = 0,
  baseMs = BACKOFF_BASE_MS,
  capMs = BACKOFF_CAP_MS,
): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(floorMs + random() * exp);
}

/** How an attempt ended, as the runner classifies the handler's throw. */
interface Failure {
  permanent: boolean;
  ambiguous: boolean;
  retryAfterMs: number | undefined;
  /** fault: the service misbehaved (breaker, alert); answered: it is up (a 4xx); neutral: our own problem. */
  service: "fault" | "answered" | "neutral";
  message: string;
}

function classify(err: unknown): Failure {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const base = { permanent: false, ambiguous: false, retryAfterMs: undefined, message } as const;
  if (err instanceof PermanentJobError) return { ...base, permanent: true, service: "neutral" };
  if (err instanceof TwilioApiError) {
    // 4xx other than 429: the request is wrong and will stay wrong; Twilio itself is fine.
    if (!err.retryable) return { ...base, permanent: true, service: "answered" };
    return { ...base, retryAfterMs: err.retryAfterMs, service: "fault" };
  }
  if (err instanceof TwilioNetworkError) return { ...base, ambiguous: err.ambiguous, service: "fault" };
  if (err instanceof RetryableJobError)
    return {
      ...base,
      ambiguous: err.options.ambiguous === true,
      retryAfterMs: err.options.retryAfterMs,
      service: "fault",
    };
  return { ...base, service: "fault" };
}

function clip(message: string): string {
  return message.length > LAST_ERROR_MAX ? `${message.slice(0, LAST_ERROR_MAX - 1)}…` : message;
}

/** Whether the job's last attempt may have reached the service. */
export function isAmbiguous(lastError: string | null): boolean {
  return lastError?.startsWith(AMBIGUOUS_PREFIX) === true;
}

/** Condition of a claimable row at `now`: due and pending, or running with an expired lease. */
function claimable(now: Date) {
  return or(
    and(eq(jobs.status, "pending"), lte(jobs.nextAttemptAt, now)),
    and(eq(jobs.status, "running"), lt(jobs.lockedUntil, now)),
  );
}

/**
 * Runs every job due now once (up to `maxJobs`), one after the other, and answers
 * what happened. Never throws for a job's failure; a database failure propagates.
 */
export async function runDueJobs(deps: EdgeDeps, options: RunDueJobsOptions = {}): Promise<RunDueJobsResult> {
  const handlers = options.handlers ?? jobHandlers;
  const random = options.random ?? Math.random;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? Math.floor(leaseMs * 0.9);
  const maxJobs = options.maxJobs ?? 100;
  const breakers = options.breakers ?? breakersFor(deps);
  const result: RunDueJobsResult = { ran: 0, succeeded: 0, retried: 0, dead: 0 };
  // Jobs this call already ran or left alone (breaker open, trial in flight, claimed elsewhere): each job
  // is offered once per call, so a retry due at once (jitter near 0) waits for the next call.
  const seen = new Set<string>();

  while (result.ran < maxJobs) {
    const now = new Date(deps.clock.now());
    const candidates = await deps.db
      .select({ id: jobs.id, kind: jobs.kind, status: jobs.status })
      .from(jobs)
      .where(seen.size > 0 ? and(claimable(now), notInArray(jobs.id, [...seen])) : claimable(now))
      .orderBy(asc(jobs.nextAttemptAt))
      .limit(20);
    if (candidates.length === 0) break;

    for (const candidate of candidates) {
      if (result.ran >= maxJobs) break;
      seen.add(candidate.id);
      const handler = handlers[candidate.kind];
      if (handler) {
        const gate = breakers.admit(handler.service, deps.clock.now());
        if (gate !== "go") {
          // Open: the job waits for the half-open trial (no call made). Trial in flight: leave it for now.
          if (gate.until !== undefined) await deferPending(deps, candidate.id, new Date(gate.until));
          continue;
        }
      }
      const claimed = await claim(deps, candidate, leaseMs);
      if (!claimed) {
        // Another runner took it, or it is no longer due; the breaker slot we may hold goes back.
        if (handler) breakers.release(handler.service);
        continue;
      }
      result.ran += 1;
      const outcome = handler
        ? await runClaimed(deps, claimed, handler, { breakers, random, attemptTimeoutMs })
        : await parkUnknown(deps, claimed.row, claimed.lease);
      result[outcome] += 1;
    }
  }
  return result;
}

/** The earliest instant a job becomes claimable (pending due time or running lease end), or null. */
export async function nextJobDueAt(deps: Pick<EdgeDeps, "db">): Promise<Date | null> {
  const [row] = await deps.db
    .select({
      at: sql<
        number | null
      >`min(case when ${jobs.status} = 'pending' then ${jobs.nextAttemptAt} when ${jobs.status} = 'running' then ${jobs.lockedUntil} end)`,
    })
    .from(jobs)
    .where(or(eq(jobs.status, "pending"), eq(jobs.status, "running")));
  return row?.at == null ? null : new Date(Number(row.at));
}

async function deferPending(deps: EdgeDeps, id: string, until: Date): Promise<void> {
  await deps.db
    .update(jobs)
    .set({ nextAttemptAt: until })
    .where(and(eq(jobs.id, id), eq(jobs.status, "pending"), lt(jobs.nextAttemptAt, until)));
}

async function claim(
  deps: EdgeDeps,
  candidate: { id: string; status: JobRow["status"] },
  leaseMs: number,
): Promise<{ row: JobRow; lease: Date; recovered: boolean } | null> {
  const now = new Date(deps.clock.now());
  const lease = new Date(now.getTime() + leaseMs);
  // The status the candidate was read with is part of the condition, so a claim of a "running" row
  // (a crashed runner's expired lease) is known to be a recovery; the UPDATE is the real claim.
  const [row] = await deps.db
    .update(jobs)
    .set({ status: "running", lockedUntil: lease, attempts: sql`${jobs.attempts} + 1`, updatedAt: now })
    .where(and(eq(jobs.id, candidate.id), eq(jobs.status, candidate.status), claimable(now)))
    .returning();
  if (!row) return null;
  return { row, lease, recovered: candidate.status === "running" };
}

/** Writes the outcome of our attempt, unless another runner took the job over (lease expired). */
async function finish(deps: EdgeDeps, id: string, lease: Date, values: Partial<JobRow>): Promise<boolean> {
  const rows = await deps.db
    .update(jobs)
    .set({ ...values, updatedAt: new Date(deps.clock.now()) })
    .where(and(eq(jobs.id, id), eq(jobs.status, "running"), eq(jobs.lockedUntil, lease)))
    .returning({ id: jobs.id });
  if (rows.length === 0)
    deps.logger.warn({ jobId: id }, "job outcome not recorded: its lease expired and it was claimed again");
  return rows.length > 0;
}

async function parkUnknown(deps: EdgeDeps, row: JobRow, lease: Date): Promise<"dead"> {
  const error = `unknown job kind "${row.kind}": no handler is registered for it (parked, not run)`;
  deps.logger.error({ jobId: row.id, kind: row.kind }, "job of an unknown kind parked as dead");
  const parked = await finish(deps, row.id, lease, {
    status: "dead",
    lockedUntil: null,
    lastError: error,
    completedAt: new Date(deps.clock.now()),
  });
  // Work that will never run is a deployment problem the admin must see on the event log.
  if (parked)
    await deps.db.insert(systemEvents).values({
      type: "job.dead",
      severity: "error",
      data: { v: 1, message: error, jobId: row.id, kind: row.kind },
      at: new Date(deps.clock.now()),
    });
  return "dead";
}

/** Runs the handler, giving up waiting after `timeoutMs` (the attempt may still be under way: ambiguous). */
async function runWithTimeout(handler: JobHandler, ctx: JobContext, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RetryableJobError(`the attempt did not finish within ${timeoutMs} ms`, { ambiguous: true }),
        ),
      timeoutMs,
    );
  });
  const attempt = handler.run(ctx);
  // A late failure of an abandoned attempt must not surface as an unhandled rejection.
  attempt.catch(() => undefined);
  try {
    await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runClaimed(
  deps: EdgeDeps,
  claimed: { row: JobRow; lease: Date; recovered: boolean },
  handler: JobHandler,
  opts: { breakers: ServiceBreakers; random: () => number; attemptTimeoutMs: number },
): Promise<"succeeded" | "retried" | "dead"> {
  const { row, lease, recovered } = claimed;
  const { breakers, random } = opts;
  const ambiguous = recovered || isAmbiguous(row.lastError);
  const ctx: JobContext<JobPayload> = {
    deps,
    job: {
      id: row.id,
      kind: row.kind,
      payload: row.payload,
      attempts: row.attempts - 1,
      idempotencyKey: row.idempotencyKey,
    },
    ambiguous,
  };
  const maxAttempts = handler.maxAttempts ?? row.maxAttempts;
  try {
    await runWithTimeout(handler, ctx, opts.attemptTimeoutMs);
  } catch (err) {
    const failure = classify(err);
    // Once an attempt may have reached the service, every later attempt checks first (sticky).
    const stillAmbiguous = ambiguous || failure.ambiguous;
    const lastError = clip(`${stillAmbiguous ? AMBIGUOUS_PREFIX : ""}${failure.message}`);
    const now = deps.clock.now();
    const transition =
      failure.service === "fault"
        ? breakers.failure(handler.service, now, handler.silent === true)
        : failure.service === "answered"
          ? breakers.success(handler.service, now)
          : breakers.neutral(handler.service);
    await serviceOutcome(deps, handler, transition);
    const exhausted = row.attempts >= maxAttempts;
    if (failure.permanent || exhausted) {
      const reason = failure.permanent ? lastError : `${lastError} (gave up after ${row.attempts} attempts)`;
      await finish(deps, row.id, lease, {
        status: "dead",
        lockedUntil: null,
        lastError: clip(reason),
        completedAt: new Date(deps.clock.now()),
      });
      await giveUp(deps, handler, ctx, reason);
      return "dead";
    }
    const backoff = backoffDelayMs(row.attempts, random, handler.backoffBaseMs ?? 0);
    const delay =
      failure.retryAfterMs !== undefined
        ? Math.max(Math.min(failure.retryAfterMs, MAX_RETRY_AFTER_MS), handler.backoffBaseMs ?? 0)
        : backoff;
    deps.logger.warn(
      { jobId: row.id, kind: row.kind, attempt: row.attempts, retryInMs: delay, ambiguous: stillAmbiguous },
      "job attempt failed; retrying later",
    );
    await finish(deps, row.id, lease, {
      status: "pending",
      lockedUntil: null,
      lastError,
      nextAttemptAt: new Date(deps.clock.now() + delay),
    });
    return "retried";
  }
  await finish(deps, row.id, lease, {
    status: "succeeded",
    lockedUntil: null,
    lastError: null,
    completedAt: new Date(deps.clock.now()),
  });
  await serviceOutcome(deps, handler, breakers.success(handler.service, deps.clock.now()));
  return "succeeded";
}

/** Records a given-up job: the handler's own record, or a system event unless the handler is silent. */
async function giveUp(deps: EdgeDeps, handler: JobHandler, ctx: JobContext, reason: string): Promise<void> {
  try {
    if (handler.onGiveUp) await handler.onGiveUp(ctx, reason);
    else if (!handler.silent)
      await deps.db.insert(systemEvents).values({
        type: "job.dead",
        severity: "error",
        data: {
          v: 1,
          message: `${ctx.job.kind} given up`,
          jobId: ctx.job.id,
          kind: ctx.job.kind,
          error: reason,
        },
        at: new Date(deps.clock.now()),
      });
    else deps.logger.info({ jobId: ctx.job.id, kind: ctx.job.kind }, "silent job given up");
  } catch (err) {
    deps.logger.error(
      { jobId: ctx.job.id, kind: ctx.job.kind, err: err instanceof Error ? err.message : String(err) },
      "recording a given-up job failed",
    );
  }
}

/** Acts on a breaker transition: the degraded alert (once per episode) and the recovered event. */
async function serviceOutcome(
  deps: EdgeDeps,
  handler: JobHandler,
  transition: BreakerTransition,
): Promise<void> {
  if (transition === "none") return;
  const service = handler.service;
  const at = new Date(deps.clock.now());
  try {
    if (transition === "degraded") {
      deps.logger.error({ service }, "service degraded: 3 consecutive failures");
      await deps.db.insert(systemEvents).values({
        type: `${service}.degraded`,
        severity: "error",
        data: { v: 1, message: `${service}: 3 consecutive failures`, service },
        at,
      });
      // Imported lazily: notify enqueues jobs, and this module must not depend on it at load time.
      const { notify } = await import("../notifications/notify.ts");
      await notify(deps, {
        type: "service_degraded",
        subject: `GoSIP: ${service} is failing`,
        text: `The ${service} service failed 3 times in a row. GoSIP keeps retrying queued work; nothing is lost. You will see a "recovered" event when it works again.`,
        idempotencyKey: `service_degraded:${service}:${at.getTime()}`,
      });
    } else {
      deps.logger.info({ service }, "service recovered");
      await deps.db.insert(systemEvents).values({
        type: `${service}.recovered`,
        severity: "info",
        data: { v: 1, message: `${service} works again`, service },
        at,
      });
    }
  } catch (err) {
    deps.logger.error(
      { service, err: err instanceof Error ? err.message : String(err) },
      "service alert failed",
    );
  }
}
