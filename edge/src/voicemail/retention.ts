/**
 * Voicemail retention (settings `retention.voicemailsDays`, SPEC §6): once a day,
 * voicemails older than the configured number of days are deleted the way a user
 * deletes one (hidden, audio removed here and from Twilio, MWI updated), and rows
 * deleted more than {@link PURGE_DELETED_AFTER_DAYS} days ago are removed for good
 * (their CDRs keep the call, without the link). null keeps everything forever.
 *
 * The daily run is an outbox job that schedules the next day's; each new voicemail
 * (re)seeds the chain, idempotently per day, so no separate scheduler is needed.
 */
import { voicemails } from "@gosip/drizzle";
import { and, inArray, isNotNull, isNull, lt } from "drizzle-orm";
import { enqueueJob } from "../jobs/queue.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { pushMailboxes } from "../relay/push.ts";
import { readSetting } from "../settings/store.ts";
import { enqueueTwilioDelete, VOICEMAIL_JOBS } from "./store.ts";

export const PURGE_DELETED_AFTER_DAYS = 30;
/** Rows handled per run; a larger backlog continues the next day. */
const BATCH = 500;
const DAY_MS = 86_400_000;
/** The run happens at this UTC hour (quiet for a home office in most zones). */
const RUN_HOUR_UTC = 3;

/** Enqueues the retention run of the next day (no-op when it is already queued). */
export function scheduleRetention(
  deps: Pick<EdgeDeps, "db" | "clock" | "jobs">,
): Promise<{ created: boolean }> {
  const now = deps.clock.now();
  let at = Math.floor(now / DAY_MS) * DAY_MS + RUN_HOUR_UTC * 3_600_000;
  if (at <= now) at += DAY_MS;
  const day = new Date(at).toISOString().slice(0, 10);
  return enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.retention,
    payload: { v: 1 },
    idempotencyKey: `${VOICEMAIL_JOBS.retention}:${day}`,
    runAt: new Date(at),
  });
}

export interface RetentionResult {
  /** Voicemails deleted for being older than the retention period. */
  expired: number;
  /** Deleted rows removed for good. */
  purged: number;
}

export async function applyRetention(deps: EdgeDeps): Promise<RetentionResult> {
  const now = deps.clock.now();
  const { voicemailsDays } = await readSetting(deps.db, "retention");
  let expired = 0;
  if (voicemailsDays !== null) {
    const old = await deps.db
      .select({
        id: voicemails.id,
        userId: voicemails.userId,
        blobKey: voicemails.blobKey,
        recordingSid: voicemails.twilioRecordingSid,
        twilioDeletedAt: voicemails.twilioDeletedAt,
      })
      .from(voicemails)
      .where(
        and(isNull(voicemails.deletedAt), lt(voicemails.receivedAt, new Date(now - voicemailsDays * DAY_MS))),
      )
      .limit(BATCH);
    if (old.length > 0) {
      await deps.db
        .update(voicemails)
        .set({ deletedAt: new Date(now), blobKey: null })
        .where(
          inArray(
            voicemails.id,
            old.map((v) => v.id),
          ),
        );
      for (const v of old) {
        if (v.blobKey) await deps.blobs.delete(v.blobKey);
        if (v.recordingSid && !v.twilioDeletedAt)
          await enqueueTwilioDelete(deps, v.id, v.recordingSid, "deleted");
      }
      const owners = new Set(old.flatMap((v) => (v.userId ? [v.userId] : [])));
      for (const userId of owners) await pushMailboxes(deps, userId);
      expired = old.length;
    }
  }
  const purged = await deps.db
    .delete(voicemails)
    .where(
      and(
        isNotNull(voicemails.deletedAt),
        lt(voicemails.deletedAt, new Date(now - PURGE_DELETED_AFTER_DAYS * DAY_MS)),
      ),
    )
    .returning({ id: voicemails.id });
  if (expired > 0 || purged.length > 0) {
    deps.logger.info({ expired, purged: purged.length }, "voicemail retention applied");
  }
  return { expired, purged: purged.length };
}
