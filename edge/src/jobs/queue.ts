/**
 * Enqueueing outbox jobs. The idempotency key makes enqueueing safe to repeat:
 * a duplicate webhook that enqueues the same key adds nothing.
 */
import { type JobPayload, jobs } from "@gosip/drizzle";
import type { EdgeDeps } from "../platform/types.ts";

export interface EnqueueOptions {
  kind: string;
  payload: JobPayload;
  /** Same key twice = one job (e.g. `sms.send:${messageId}`). */
  idempotencyKey: string;
  /** First attempt not before this instant (default now). */
  runAt?: Date;
  maxAttempts?: number;
}

/** Inserts a pending job and wakes the runner; answers whether it is new (false: the key existed). */
export async function enqueueJob(
  deps: Pick<EdgeDeps, "db" | "clock" | "jobs">,
  options: EnqueueOptions,
): Promise<{ created: boolean }> {
  const rows = await deps.db
    .insert(jobs)
    .values({
      kind: options.kind,
      payload: options.payload,
      idempotencyKey: options.idempotencyKey,
      nextAttemptAt: options.runAt ?? new Date(deps.clock.now()),
      ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    })
    .onConflictDoNothing({ target: jobs.idempotencyKey })
    .returning({ id: jobs.id });
  if (rows.length > 0) deps.jobs?.wake();
  return { created: rows.length > 0 };
}
