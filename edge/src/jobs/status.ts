/**
 * The outbox as the dashboard and health check see it: how much work waits, how
 * late the oldest due job is, what was given up lately, and each service's
 * breaker in this process/isolate (Twilio, email, Gotify health at a glance).
 */
import { jobs } from "@gosip/drizzle";
import { and, eq, gte, lte, sql } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { type BreakerSnapshot, breakersFor } from "./breaker.ts";

export interface OutboxStatus {
  /** Jobs waiting (due or not). */
  pending: number;
  running: number;
  /** Of the pending jobs, those already due: work the runner has not reached. */
  due: number;
  /** How long the oldest due job has been waiting, in ms (0 when none is due). */
  oldestDueMs: number;
  /** Jobs given up in the last 24 hours. */
  deadLastDay: number;
  services: BreakerSnapshot[];
}

export async function outboxStatus(deps: Pick<EdgeDeps, "db" | "clock">): Promise<OutboxStatus> {
  const now = deps.clock.now();
  const [counts] = await deps.db
    .select({
      pending: sql<number>`coalesce(sum(case when ${jobs.status} = 'pending' then 1 else 0 end), 0)`,
      running: sql<number>`coalesce(sum(case when ${jobs.status} = 'running' then 1 else 0 end), 0)`,
    })
    .from(jobs)
    .where(sql`${jobs.status} in ('pending', 'running')`);
  const [due] = await deps.db
    .select({ n: sql<number>`count(*)`, oldest: sql<number | null>`min(${jobs.nextAttemptAt})` })
    .from(jobs)
    .where(and(eq(jobs.status, "pending"), lte(jobs.nextAttemptAt, new Date(now))));
  const [dead] = await deps.db
    .select({ n: sql<number>`count(*)` })
    .from(jobs)
    .where(and(eq(jobs.status, "dead"), gte(jobs.completedAt, new Date(now - 24 * 3_600_000))));
  return {
    pending: Number(counts?.pending ?? 0),
    running: Number(counts?.running ?? 0),
    due: Number(due?.n ?? 0),
    oldestDueMs: due?.oldest == null ? 0 : Math.max(0, now - Number(due.oldest)),
    deadLastDay: Number(dead?.n ?? 0),
    services: breakersFor(deps).snapshot(now),
  };
}
