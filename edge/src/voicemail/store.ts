/**
 * The voicemail lifecycle on the edge, shared by the webhooks and the outbox jobs:
 * a recording callback becomes a voicemail row linked to its CDR (or is discarded),
 * transcripts attach to it whenever they come (even before the recording), and the
 * follow-up work — copy the audio, remove it from Twilio, tell the relay and the
 * mailbox owner — is enqueued as outbox jobs with stable idempotency keys, so a
 * duplicate webhook or a retried job never does anything twice.
 *
 * Two orderings are handled without locks, each side writing first and then
 * looking for the other (SQLite applies writes one at a time, so at least one side
 * sees both):
 * - a transcript that arrives before its recording is held in a
 *   `voicemail.transcript-hold` job; the recording intake reads it, the
 *   transcription webhook re-checks for the voicemail after holding it;
 * - the first email (with or without the transcript) and the transcript's
 *   follow-up email: see {@link afterTranscriptSettled} and jobs.ts.
 */
import {
  cdrs,
  type Db,
  dids,
  jobs,
  processedWebhooks,
  type TranscriptStatus,
  users,
  voicemails,
} from "@gosip/drizzle";
import { and, eq, inArray, isNull } from "drizzle-orm";
import { z } from "zod";
import { enqueueJob } from "../jobs/queue.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { claimWebhook, releaseWebhook } from "../twilio/idempotency.ts";

/** Recordings shorter than this are discarded (SPEC §3). */
export const MIN_RECORDING_SECONDS = 3;
/** Twilio's own transcription handles at most this much (TWILIO.md). */
export const TWILIO_TRANSCRIBE_MAX_SECONDS = 120;
/** A transcript still pending this long after the copy no longer holds the recording in Twilio. */
export const TWILIO_DELETE_DEADLINE_MS = 24 * 3_600_000;
/** An early transcript whose recording never arrives is dropped after this. */
export const TRANSCRIPT_HOLD_MS = 24 * 3_600_000;

export const RECORDING_SID = /^RE[0-9a-fA-F]{32}$/;
export const CALL_SID = /^CA[0-9a-fA-F]{32}$/;

/** Job kinds of this feature (handlers in jobs.ts). */
export const VOICEMAIL_JOBS = {
  download: "voicemail.download",
  twilioDelete: "voicemail.twilio-delete",
  notify: "voicemail.notify",
  transcriptEmail: "voicemail.transcript-email",
  transcriptHold: "voicemail.transcript-hold",
  intelligence: "voicemail.intelligence-transcript",
  intelligencePoll: "voicemail.intelligence-poll",
  intelligenceDelete: "voicemail.intelligence-delete",
  retention: "voicemail.retention",
} as const;

/** processed_webhooks kinds used as once-only markers for the emails of a voicemail. */
export const MARK_FIRST_EMAIL = "voicemail.first-email";
export const MARK_TRANSCRIPT_EMAIL = "voicemail.transcript-email";

type StoreDeps = Pick<EdgeDeps, "db" | "clock" | "jobs" | "logger">;

export interface RecordingCallback {
  recordingSid: string;
  status: "completed" | "absent" | "failed";
  recordingUrl: string | undefined;
  durationSeconds: number;
  callSid: string | undefined;
  /** From the callback URL's query (voicemailTwiml put them there). */
  didId: string | undefined;
  userId: string | undefined;
  cdrId: string | undefined;
}

export type RecordingOutcome =
  | { kind: "stored"; voicemailId: string }
  | { kind: "discarded" }
  | { kind: "not_recorded" };

/** Payload of the hold job: a transcript waiting for its recording. */
export const transcriptHoldSchema = z.object({
  v: z.literal(1),
  recordingSid: z.string().regex(RECORDING_SID),
  status: z.enum(["completed", "failed"]),
  text: z.string(),
});
export type TranscriptHold = z.infer<typeof transcriptHoldSchema>;

export const holdKey = (recordingSid: string): string => `${VOICEMAIL_JOBS.transcriptHold}:${recordingSid}`;

async function existingId(db: Db, table: typeof users | typeof dids, id: string | undefined) {
  if (!id) return null;
  const [row] = await db.select({ id: table.id }).from(table).where(eq(table.id, id));
  return row?.id ?? null;
}

/** The CDR of the call: by the id voicemailTwiml passed, else by CallSid. */
async function findCdr(db: Db, cdrId: string | undefined, callSid: string | undefined) {
  const columns = { id: cdrs.id, fromNumber: cdrs.fromNumber, didId: cdrs.didId, userId: cdrs.userId };
  if (cdrId) {
    const [row] = await db.select(columns).from(cdrs).where(eq(cdrs.id, cdrId));
    if (row) return row;
  }
  if (callSid) {
    const [row] = await db.select(columns).from(cdrs).where(eq(cdrs.twilioCallSid, callSid));
    if (row) return row;
  }
  return null;
}

/**
 * The caller reached voicemail but left no message (silent, too short, failed): the
 * voice webhooks marked the CDR "voicemail" when they sent the call there; without a
 * message it is a missed call. A CDR already linked to a voicemail is left alone.
 */
async function noMessage(db: Db, cdrId: string | undefined): Promise<void> {
  if (!cdrId) return;
  await db
    .update(cdrs)
    .set({ disposition: "missed" })
    .where(and(eq(cdrs.id, cdrId), eq(cdrs.disposition, "voicemail"), isNull(cdrs.voicemailId)));
}

/** The transcript held for this recording, if it came first. */
async function heldTranscript(db: Db, recordingSid: string): Promise<TranscriptHold | null> {
  const [row] = await db
    .select({ payload: jobs.payload })
    .from(jobs)
    .where(eq(jobs.idempotencyKey, holdKey(recordingSid)));
  if (!row) return null;
  const parsed = transcriptHoldSchema.safeParse(row.payload);
  return parsed.success ? parsed.data : null;
}

/**
 * Applies a recording status callback (already claimed as new by the webhook):
 * a short one is discarded (and removed from Twilio) and an absent/failed one
 * stores nothing, the CDR then being a missed call; otherwise the voicemail is
 * created, linked to the CDR, and its download enqueued. Safe to run again for the
 * same recording: the row is keyed by its SID.
 */
export async function acceptRecording(deps: StoreDeps, cb: RecordingCallback): Promise<RecordingOutcome> {
  const cdr = await findCdr(deps.db, cb.cdrId, cb.callSid);
  if (cb.status !== "completed" || !cb.recordingUrl) {
    await noMessage(deps.db, cdr?.id);
    return { kind: "not_recorded" };
  }
  if (cb.durationSeconds < MIN_RECORDING_SECONDS) {
    await enqueueJob(deps, {
      kind: VOICEMAIL_JOBS.twilioDelete,
      payload: { v: 1, recordingSid: cb.recordingSid, voicemailId: null, reason: "discarded" },
      idempotencyKey: `${VOICEMAIL_JOBS.twilioDelete}:${cb.recordingSid}:discarded`,
    });
    await noMessage(deps.db, cdr?.id);
    return { kind: "discarded" };
  }

  // Ids from the query are checked: a user or DID deleted since the call is not linked.
  const userId = (await existingId(deps.db, users, cb.userId)) ?? null;
  const didId = (await existingId(deps.db, dids, cb.didId)) ?? cdr?.didId ?? null;
  const tooLong = cb.durationSeconds > TWILIO_TRANSCRIBE_MAX_SECONDS;
  const held = await heldTranscript(deps.db, cb.recordingSid);
  let transcriptStatus: TranscriptStatus = tooLong ? "too_long" : "pending";
  let transcript: string | null = null;
  if (held?.status === "completed") {
    transcriptStatus = "completed";
    transcript = held.text;
  } else if (held?.status === "failed" && !tooLong) {
    transcriptStatus = "failed";
  }
  const now = new Date(deps.clock.now());
  await deps.db
    .insert(voicemails)
    .values({
      didId,
      userId,
      cdrId: cdr?.id ?? null,
      fromNumber: cdr?.fromNumber ?? "unknown",
      durationSeconds: cb.durationSeconds,
      transcript,
      transcriptStatus,
      twilioRecordingSid: cb.recordingSid,
      twilioCallSid: cb.callSid ?? null,
      receivedAt: now,
    })
    .onConflictDoNothing({ target: voicemails.twilioRecordingSid });
  const [row] = await deps.db
    .select({ id: voicemails.id })
    .from(voicemails)
    .where(eq(voicemails.twilioRecordingSid, cb.recordingSid));
  if (!row) throw new Error("voicemail row missing after insert");
  if (cdr) {
    await deps.db
      .update(cdrs)
      .set({ voicemailId: row.id, disposition: "voicemail" })
      .where(eq(cdrs.id, cdr.id));
  }
  await enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.download,
    payload: { v: 1, voicemailId: row.id, recordingUrl: cb.recordingUrl },
    idempotencyKey: `${VOICEMAIL_JOBS.download}:${row.id}`,
  });
  if (tooLong) {
    await enqueueJob(deps, {
      kind: VOICEMAIL_JOBS.intelligence,
      payload: { v: 1, voicemailId: row.id, recordingSid: cb.recordingSid },
      idempotencyKey: `${VOICEMAIL_JOBS.intelligence}:${row.id}`,
    });
  }
  return { kind: "stored", voicemailId: row.id };
}

export interface TranscriptUpdate {
  status: "completed" | "failed";
  text: string;
}

/**
 * Attaches a transcript to a voicemail. A completed transcript wins over anything
 * but an earlier completed one; a failure never overwrites a transcript, and a
 * message too long for Twilio stays "too_long" (Twilio's failure there is expected).
 * Answers whether the row changed.
 */
export async function attachTranscript(
  deps: StoreDeps,
  voicemailId: string,
  update: TranscriptUpdate,
): Promise<boolean> {
  const allowedFrom: TranscriptStatus[] =
    update.status === "completed" ? ["pending", "too_long", "failed", "none"] : ["pending"];
  const changed = await deps.db
    .update(voicemails)
    .set(
      update.status === "completed"
        ? { transcript: update.text, transcriptStatus: "completed" }
        : { transcriptStatus: "failed" },
    )
    .where(and(eq(voicemails.id, voicemailId), inArray(voicemails.transcriptStatus, allowedFrom)))
    .returning({ id: voicemails.id });
  if (changed.length === 0) return false;
  await afterTranscriptSettled(deps, voicemailId);
  return true;
}

async function marked(db: Db, kind: string, voicemailId: string): Promise<boolean> {
  const [row] = await db
    .select({ sid: processedWebhooks.sid })
    .from(processedWebhooks)
    .where(and(eq(processedWebhooks.kind, kind), eq(processedWebhooks.sid, voicemailId)));
  return row !== undefined;
}

/** Claims the "first email sent" marker (jobs.ts, after notify). */
export function markFirstEmail(db: Db, voicemailId: string): Promise<boolean> {
  return claimWebhook(db, MARK_FIRST_EMAIL, voicemailId);
}

/** Claims the right to send the transcript by email: true once per voicemail. */
export function claimTranscriptEmail(db: Db, voicemailId: string): Promise<boolean> {
  return claimWebhook(db, MARK_TRANSCRIPT_EMAIL, voicemailId);
}

/** Gives the transcript-email claim back (the email could not be enqueued). */
export function releaseTranscriptEmail(db: Db, voicemailId: string): Promise<void> {
  return releaseWebhook(db, MARK_TRANSCRIPT_EMAIL, voicemailId);
}

/**
 * After a transcript settled (completed or failed): the follow-up email when the
 * first email already went out, and the Twilio copy may go once the audio is ours.
 */
export async function afterTranscriptSettled(deps: StoreDeps, voicemailId: string): Promise<void> {
  const [vm] = await deps.db
    .select({
      transcriptStatus: voicemails.transcriptStatus,
      audioStatus: voicemails.audioStatus,
      recordingSid: voicemails.twilioRecordingSid,
    })
    .from(voicemails)
    .where(eq(voicemails.id, voicemailId));
  if (!vm) return;
  if (vm.transcriptStatus === "completed" && (await marked(deps.db, MARK_FIRST_EMAIL, voicemailId))) {
    await enqueueTranscriptEmail(deps, voicemailId);
  }
  if (vm.audioStatus === "stored" && vm.recordingSid) {
    await enqueueTwilioDelete(deps, voicemailId, vm.recordingSid, "transcribed");
  }
}

export function enqueueTranscriptEmail(deps: StoreDeps, voicemailId: string): Promise<{ created: boolean }> {
  return enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.transcriptEmail,
    payload: { v: 1, voicemailId },
    idempotencyKey: `${VOICEMAIL_JOBS.transcriptEmail}:${voicemailId}`,
  });
}

/**
 * Removes the recording from Twilio. `reason` keeps the moments apart (a deadline
 * job and an earlier "transcribed" one both exist; the second finds it done).
 */
export function enqueueTwilioDelete(
  deps: StoreDeps,
  voicemailId: string,
  recordingSid: string,
  reason: "transcribed" | "deadline" | "deleted",
  runAt?: Date,
): Promise<{ created: boolean }> {
  return enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.twilioDelete,
    payload: { v: 1, recordingSid, voicemailId, reason },
    idempotencyKey: `${VOICEMAIL_JOBS.twilioDelete}:${recordingSid}:${reason}`,
    ...(runAt ? { runAt } : {}),
  });
}

/** The voicemail of a Twilio recording (a deleted one too: a late transcript then changes nothing visible). */
export async function voicemailByRecording(db: Db, recordingSid: string): Promise<{ id: string } | null> {
  const [row] = await db
    .select({ id: voicemails.id })
    .from(voicemails)
    .where(eq(voicemails.twilioRecordingSid, recordingSid));
  return row ?? null;
}

/**
 * A transcription callback: attached when its voicemail exists, else held until
 * the recording callback creates it (and checked again after holding, in case the
 * recording was processed in between).
 */
export async function acceptTranscription(
  deps: StoreDeps,
  input: { recordingSid: string } & TranscriptUpdate,
): Promise<"attached" | "held" | "unchanged"> {
  const vm = await voicemailByRecording(deps.db, input.recordingSid);
  if (vm) return (await attachTranscript(deps, vm.id, input)) ? "attached" : "unchanged";
  await enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.transcriptHold,
    payload: { v: 1, recordingSid: input.recordingSid, status: input.status, text: input.text },
    idempotencyKey: holdKey(input.recordingSid),
    runAt: new Date(deps.clock.now() + TRANSCRIPT_HOLD_MS),
  });
  const now = await voicemailByRecording(deps.db, input.recordingSid);
  if (now) return (await attachTranscript(deps, now.id, input)) ? "attached" : "unchanged";
  return "held";
}
