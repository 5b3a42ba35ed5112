/**
 * Outbox job kinds of the voicemail feature (see jobs/types.ts), listed in
 * jobs/registry.ts. Each is safe to run again after a crash:
 *
 * - voicemail.download: copies the recording from Twilio into the blob store,
 *   then enqueues the email (voicemail.notify) and the removal from Twilio. Given
 *   up, the voicemail is marked audio "failed", the recording stays in Twilio and
 *   the owner is still told.
 * - voicemail.notify: the first email (audio attached, transcript if there is
 *   one) and the MWI update.
 * - voicemail.transcript-email: the follow-up with a transcript that came later.
 * - voicemail.twilio-delete: DELETE of the Twilio recording once GoSIP's copy is
 *   stored and the transcript settled (404 counts as done).
 * - voicemail.transcript-hold: a transcript that arrived before its recording;
 *   read by the recording intake, and when due attached or dropped.
 * - voicemail.intelligence-transcript / -poll / -delete: Conversational
 *   Intelligence transcript of a message over 120 s, polled until done, then
 *   removed from Twilio once its text is copied.
 * - voicemail.retention: the daily retention run (retention.ts).
 */
import { voicemails } from "@gosip/drizzle";
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { enqueueJob } from "../jobs/queue.ts";
import { type JobContext, type JobHandler, PermanentJobError, RetryableJobError } from "../jobs/types.ts";
import { notify } from "../notifications/notify.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { pushMailboxes } from "../relay/push.ts";
import { openTwilioRest } from "../twilio/credentials.ts";
import { TwilioApiError, type TwilioRest } from "../twilio/rest.ts";
import {
  audioExtension,
  firstEmail,
  transcriptEmail,
  type VoicemailForEmail,
  voicemailEmailColumns,
} from "./email.ts";
import {
  createTranscript,
  intelligenceService,
  transcriptForRecording,
  transcriptStatus,
  transcriptText,
} from "./intelligence.ts";
import { applyRetention, scheduleRetention } from "./retention.ts";
import {
  afterTranscriptSettled,
  attachTranscript,
  claimTranscriptEmail,
  enqueueTranscriptEmail,
  enqueueTwilioDelete,
  markFirstEmail,
  RECORDING_SID,
  releaseTranscriptEmail,
  TWILIO_DELETE_DEADLINE_MS,
  transcriptHoldSchema,
  VOICEMAIL_JOBS,
  voicemailByRecording,
} from "./store.ts";

/** Largest recording copied: 180 s of 16-bit 8 kHz WAV is 2.9 MB; stereo or 16 kHz stays well below. */
export const MAX_VOICEMAIL_BYTES = 25 * 1024 * 1024;
/** Intelligence transcripts are polled this often, this many times (one hour) before giving up. */
export const INTELLIGENCE_POLL_MS = 60_000;
export const INTELLIGENCE_MAX_POLLS = 60;

const id = z.string().min(1).max(64);
const TRANSCRIPT_SID = z.string().regex(/^GT[0-9a-fA-F]{32}$/);
const downloadPayload = z.object({ v: z.literal(1), voicemailId: id, recordingUrl: z.url() });
const voicemailPayload = z.object({ v: z.literal(1), voicemailId: id });
const deletePayload = z.object({
  v: z.literal(1),
  recordingSid: z.string().regex(RECORDING_SID),
  voicemailId: id.nullable(),
  reason: z.string(),
});
const intelligencePayload = z.object({
  v: z.literal(1),
  voicemailId: id,
  recordingSid: z.string().regex(RECORDING_SID),
});
const pollPayload = z.object({
  v: z.literal(1),
  voicemailId: id,
  transcriptSid: TRANSCRIPT_SID,
  poll: z.int().min(1),
});

/** A payload that does not parse can never succeed: give up at once. */
function payloadOf<T extends z.ZodType>(schema: T, ctx: JobContext): z.infer<T> {
  const parsed = schema.safeParse(ctx.job.payload);
  if (!parsed.success) throw new PermanentJobError(`${ctx.job.kind}: invalid payload`);
  return parsed.data;
}

async function rest(deps: EdgeDeps): Promise<TwilioRest> {
  const client = await openTwilioRest(deps);
  if (!client) throw new PermanentJobError("no Twilio account configured");
  return client;
}

async function loadVoicemail(
  deps: EdgeDeps,
  voicemailId: string,
): Promise<(VoicemailForEmail & { deletedAt: Date | null }) | null> {
  const [row] = await deps.db
    .select(voicemailEmailColumns)
    .from(voicemails)
    .where(eq(voicemails.id, voicemailId));
  return row ?? null;
}

/** Twilio serves a recording's media at its URL plus an extension; WAV is the lossless one. */
export function recordingMediaUrl(recordingUrl: string): string {
  return /\.(wav|mp3)$/i.test(recordingUrl) ? recordingUrl : `${recordingUrl}.wav`;
}

/** Once the audio is ours (or will never be): the email, and when the recording may leave Twilio. */
async function afterAudio(deps: EdgeDeps, voicemailId: string): Promise<void> {
  // Keeps the daily retention run going while voicemails arrive (one job per day).
  await scheduleRetention(deps);
  await enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.notify,
    payload: { v: 1, voicemailId },
    idempotencyKey: `${VOICEMAIL_JOBS.notify}:${voicemailId}`,
  });
  const [vm] = await deps.db
    .select({
      audioStatus: voicemails.audioStatus,
      transcriptStatus: voicemails.transcriptStatus,
      recordingSid: voicemails.twilioRecordingSid,
    })
    .from(voicemails)
    .where(eq(voicemails.id, voicemailId));
  if (vm?.audioStatus !== "stored" || !vm.recordingSid) return;
  // Twilio's transcription (or Intelligence) works from the recording: it stays until the
  // transcript has settled, a day at most.
  if (
    vm.transcriptStatus === "completed" ||
    vm.transcriptStatus === "failed" ||
    vm.transcriptStatus === "none"
  ) {
    await enqueueTwilioDelete(deps, voicemailId, vm.recordingSid, "transcribed");
  } else {
    const at = new Date(deps.clock.now() + TWILIO_DELETE_DEADLINE_MS);
    await enqueueTwilioDelete(deps, voicemailId, vm.recordingSid, "deadline", at);
  }
}

const download: JobHandler = {
  service: "twilio",
  maxAttempts: 10,
  async run(ctx) {
    const { deps } = ctx;
    const p = payloadOf(downloadPayload, ctx);
    const vm = await loadVoicemail(deps, p.voicemailId);
    if (!vm || vm.deletedAt) return;
    if (vm.audioStatus !== "stored") {
      const client = await rest(deps);
      const res = await client.download(recordingMediaUrl(p.recordingUrl));
      if (!res.body) throw new RetryableJobError("Twilio answered the recording without a body");
      const contentType =
        (res.headers.get("content-type") ?? "audio/wav").split(";")[0]?.trim() || "audio/wav";
      if (!contentType.startsWith("audio/")) {
        throw new PermanentJobError(`the recording is not audio (${contentType})`);
      }
      const length = Number(res.headers.get("content-length") ?? Number.NaN);
      const key = `voicemails/${vm.id}.${audioExtension(contentType)}`;
      const meta = await deps.blobs.put(key, res.body, {
        contentType,
        maxBytes: MAX_VOICEMAIL_BYTES,
        ...(Number.isInteger(length) && length >= 0 ? { size: length } : {}),
      });
      await deps.db
        .update(voicemails)
        .set({ audioStatus: "stored", blobKey: key, contentType, sizeBytes: meta.size })
        .where(eq(voicemails.id, vm.id));
    }
    await afterAudio(deps, vm.id);
  },
  async onGiveUp(ctx) {
    const p = downloadPayload.safeParse(ctx.job.payload);
    if (!p.success) return;
    await ctx.deps.db
      .update(voicemails)
      .set({ audioStatus: "failed" })
      .where(and(eq(voicemails.id, p.data.voicemailId), eq(voicemails.audioStatus, "pending")));
    // The owner still learns there is a message (without audio); Twilio keeps the recording.
    await afterAudio(ctx.deps, p.data.voicemailId);
  },
};

const notifyFirst: JobHandler = {
  service: "internal",
  async run(ctx) {
    const { deps } = ctx;
    const p = payloadOf(voicemailPayload, ctx);
    const vm = await loadVoicemail(deps, p.voicemailId);
    if (!vm || vm.deletedAt) return;
    const withTranscript = vm.transcriptStatus === "completed";
    await notify(deps, await firstEmail(deps, vm, withTranscript));
    await markFirstEmail(deps.db, vm.id);
    // The transcript went with it: no follow-up.
    if (withTranscript) await claimTranscriptEmail(deps.db, vm.id);
    else {
      // It may have arrived while the email was being built: then the follow-up carries it.
      const again = await loadVoicemail(deps, vm.id);
      if (again?.transcriptStatus === "completed") await enqueueTranscriptEmail(deps, vm.id);
    }
    if (vm.userId) await pushMailboxes(deps, vm.userId);
  },
};

const notifyTranscript: JobHandler = {
  service: "internal",
  async run(ctx) {
    const { deps } = ctx;
    const p = payloadOf(voicemailPayload, ctx);
    const vm = await loadVoicemail(deps, p.voicemailId);
    if (!vm || vm.deletedAt || vm.transcriptStatus !== "completed") return;
    if (!(await claimTranscriptEmail(deps.db, vm.id))) return;
    try {
      await notify(deps, await transcriptEmail(deps, vm));
    } catch (err) {
      // Not sent: give the claim back so the retry sends it.
      await releaseTranscriptEmail(deps.db, vm.id);
      throw err;
    }
  },
};

const twilioDelete: JobHandler = {
  service: "twilio",
  async run(ctx) {
    const { deps } = ctx;
    const p = payloadOf(deletePayload, ctx);
    if (p.voicemailId) {
      const [vm] = await deps.db
        .select({
          audioStatus: voicemails.audioStatus,
          deletedAt: voicemails.deletedAt,
          twilioDeletedAt: voicemails.twilioDeletedAt,
        })
        .from(voicemails)
        .where(eq(voicemails.id, p.voicemailId));
      if (vm?.twilioDeletedAt) return;
      // Only a recording GoSIP holds a copy of (or one its owner deleted) leaves Twilio.
      if (vm && vm.audioStatus !== "stored" && !vm.deletedAt) return;
    }
    const client = await rest(deps);
    try {
      await client.request("DELETE", "api", client.accountPath(`/Recordings/${p.recordingSid}.json`));
    } catch (err) {
      if (!(err instanceof TwilioApiError && err.status === 404)) throw err;
    }
    if (p.voicemailId) {
      await deps.db
        .update(voicemails)
        .set({ twilioDeletedAt: new Date(deps.clock.now()) })
        .where(eq(voicemails.id, p.voicemailId));
    }
  },
};

const transcriptHold: JobHandler = {
  service: "internal",
  async run(ctx) {
    const { deps } = ctx;
    const hold = payloadOf(transcriptHoldSchema, ctx);
    const vm = await voicemailByRecording(deps.db, hold.recordingSid);
    if (vm) await attachTranscript(deps, vm.id, hold);
    else
      deps.logger.info(
        { recordingSid: hold.recordingSid },
        "transcript for a recording that never came: dropped",
      );
  },
};

const intelligence: JobHandler = {
  service: "twilio",
  async run(ctx) {
    const { deps } = ctx;
    const p = payloadOf(intelligencePayload, ctx);
    const vm = await loadVoicemail(deps, p.voicemailId);
    if (!vm || vm.deletedAt || vm.transcriptStatus === "completed") return;
    const client = await rest(deps);
    const service = await intelligenceService(client);
    if (!service) {
      // No Intelligence Service in the account: the message stays "no transcript" (too_long).
      deps.logger.info(
        { voicemailId: vm.id },
        "no Intelligence service: long voicemail stays without transcript",
      );
      await afterTranscriptSettled(deps, vm.id);
      return;
    }
    // Looked up first, so a retry after an attempt that created it does not create a second one.
    const transcriptSid =
      (await transcriptForRecording(client, p.recordingSid)) ??
      (await createTranscript(client, service, p.recordingSid, vm.id));
    await enqueueJob(deps, {
      kind: VOICEMAIL_JOBS.intelligencePoll,
      payload: { v: 1, voicemailId: vm.id, transcriptSid, poll: 1 },
      idempotencyKey: `${VOICEMAIL_JOBS.intelligencePoll}:${vm.id}:1`,
      runAt: new Date(deps.clock.now() + INTELLIGENCE_POLL_MS),
    });
  },
};

const intelligencePoll: JobHandler = {
  service: "twilio",
  async run(ctx) {
    const { deps } = ctx;
    const p = payloadOf(pollPayload, ctx);
    const vm = await loadVoicemail(deps, p.voicemailId);
    if (!vm || vm.deletedAt || vm.transcriptStatus === "completed") return;
    const client = await rest(deps);
    const status = await transcriptStatus(client, p.transcriptSid);
    if (status === "completed") {
      const text = await transcriptText(client, p.transcriptSid);
      if (!(await attachTranscript(deps, vm.id, { status: "completed", text })))
        await afterTranscriptSettled(deps, vm.id);
      await enqueueIntelligenceDelete(deps, p.transcriptSid);
      return;
    }
    if (
      status === "failed" ||
      status === "canceled" ||
      status === "error" ||
      p.poll >= INTELLIGENCE_MAX_POLLS
    ) {
      deps.logger.warn({ voicemailId: vm.id, status, polls: p.poll }, "Intelligence transcript not produced");
      await afterTranscriptSettled(deps, vm.id);
      await enqueueIntelligenceDelete(deps, p.transcriptSid);
      return;
    }
    // Not done yet: a new job for the next look (waiting is not a failure, so no retry/backoff).
    await enqueueJob(deps, {
      kind: VOICEMAIL_JOBS.intelligencePoll,
      payload: { v: 1, voicemailId: vm.id, transcriptSid: p.transcriptSid, poll: p.poll + 1 },
      idempotencyKey: `${VOICEMAIL_JOBS.intelligencePoll}:${vm.id}:${p.poll + 1}`,
      runAt: new Date(deps.clock.now() + INTELLIGENCE_POLL_MS),
    });
  },
};

/** The text is ours now (or none will come): the transcript leaves Twilio like the recording. */
function enqueueIntelligenceDelete(deps: EdgeDeps, transcriptSid: string): Promise<{ created: boolean }> {
  return enqueueJob(deps, {
    kind: VOICEMAIL_JOBS.intelligenceDelete,
    payload: { v: 1, transcriptSid },
    idempotencyKey: `${VOICEMAIL_JOBS.intelligenceDelete}:${transcriptSid}`,
  });
}

const intelligenceDelete: JobHandler = {
  service: "twilio",
  async run(ctx) {
    const p = payloadOf(z.object({ v: z.literal(1), transcriptSid: TRANSCRIPT_SID }), ctx);
    const client = await rest(ctx.deps);
    try {
      await client.request("DELETE", "intelligence", `/v2/Transcripts/${p.transcriptSid}`);
    } catch (err) {
      if (!(err instanceof TwilioApiError && err.status === 404)) throw err;
    }
  },
};

const retention: JobHandler = {
  service: "internal",
  async run(ctx) {
    await applyRetention(ctx.deps);
    await scheduleRetention(ctx.deps);
  },
};

export const voicemailJobs: Record<string, JobHandler> = {
  [VOICEMAIL_JOBS.download]: download,
  [VOICEMAIL_JOBS.notify]: notifyFirst,
  [VOICEMAIL_JOBS.transcriptEmail]: notifyTranscript,
  [VOICEMAIL_JOBS.twilioDelete]: twilioDelete,
  [VOICEMAIL_JOBS.transcriptHold]: transcriptHold,
  [VOICEMAIL_JOBS.intelligence]: intelligence,
  [VOICEMAIL_JOBS.intelligencePoll]: intelligencePoll,
  [VOICEMAIL_JOBS.intelligenceDelete]: intelligenceDelete,
  [VOICEMAIL_JOBS.retention]: retention,
};
