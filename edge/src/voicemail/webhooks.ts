/**
 * Voicemail webhooks, mounted under /api/webhooks/twilio after the signature check
 * (the form parameters come verified from `twilioParams(c)`):
 * - POST /recording: the `<Record>`'s recordingStatusCallback → voicemail (store.ts);
 * - POST /transcription: its transcribeCallback → transcript attached or held;
 * - POST /recording-done: the `<Record>`'s action → `<Hangup/>`.
 * Each claims (event, SID) first, so Twilio's duplicates change nothing; a failure
 * after the claim gives it back, so Twilio's retry is processed.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { errorBody } from "../http/errors.ts";
import { createRouter } from "../http/router.ts";
import { claimWebhook, releaseWebhook } from "../twilio/idempotency.ts";
import { twilioParams } from "../twilio/webhook.ts";
import { el, twiml, twimlResponse } from "../twiml/builder.ts";
import { acceptRecording, acceptTranscription, CALL_SID, RECORDING_SID } from "./store.ts";

const linkQuery = z.object({
  didId: z.string().min(1).max(64).optional(),
  userId: z.string().min(1).max(64).optional(),
  cdrId: z.string().min(1).max(64).optional(),
});

const recordingParams = z.object({
  RecordingSid: z.string().regex(RECORDING_SID, "must be a Recording SID (RE…)"),
  RecordingStatus: z.enum(["completed", "absent", "failed", "in-progress"]),
  RecordingUrl: z.url().optional(),
  RecordingDuration: z.coerce.number().int().min(0).max(86_400).optional(),
  CallSid: z.string().regex(CALL_SID, "must be a Call SID (CA…)").optional(),
});

const transcriptionParams = z.object({
  RecordingSid: z.string().regex(RECORDING_SID, "must be a Recording SID (RE…)"),
  TranscriptionSid: z.string().min(1).max(64),
  TranscriptionStatus: z.enum(["completed", "failed"]),
  TranscriptionText: z.string().max(100_000).optional(),
});

const twimlContent = { "text/xml": { schema: z.string() } };

const formDescription = (fields: string) =>
  `Twilio form POST (application/x-www-form-urlencoded, signed with X-Twilio-Signature): ${fields}.`;

const recordingRoute = createRoute({
  method: "post",
  path: "/recording",
  tags: ["webhooks"],
  summary: "Recording status callback of the voicemail <Record>",
  description: formDescription(
    "RecordingSid, RecordingStatus (completed, absent, failed), RecordingUrl, RecordingDuration, CallSid",
  ),
  request: { query: linkQuery },
  responses: {
    200: { description: "Accepted (empty TwiML)", content: twimlContent },
    400: { description: "Parameters missing or invalid; nothing stored" },
    403: { description: "Invalid Twilio signature" },
  },
});

const transcriptionRoute = createRoute({
  method: "post",
  path: "/transcription",
  tags: ["webhooks"],
  summary: "Transcription callback of the voicemail <Record>",
  description: formDescription(
    "TranscriptionSid, TranscriptionStatus, TranscriptionText, RecordingSid, CallSid",
  ),
  request: { query: linkQuery },
  responses: {
    200: { description: "Accepted (empty TwiML)", content: twimlContent },
    400: { description: "Parameters missing or invalid; nothing stored" },
    403: { description: "Invalid Twilio signature" },
  },
});

const recordingDoneRoute = createRoute({
  method: "post",
  path: "/recording-done",
  tags: ["webhooks"],
  summary: "Action of the voicemail <Record>: hang up",
  request: { query: linkQuery },
  responses: {
    200: { description: "<Hangup/>", content: twimlContent },
    403: { description: "Invalid Twilio signature" },
  },
});

const accepted = () => twimlResponse(twiml([]));

function invalid(c: Context<AppEnv>, error: z.ZodError): Response {
  const details = error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
  return c.json(errorBody("validation_failed", "The webhook parameters are not valid", details), 400);
}

/** Runs `apply` under the claim of (kind, sid); a throw gives the claim back. */
async function once(
  c: Context<AppEnv>,
  kind: string,
  sid: string,
  apply: () => Promise<void>,
): Promise<void> {
  const { db } = c.get("deps");
  if (!(await claimWebhook(db, kind, sid))) return;
  try {
    await apply();
  } catch (err) {
    await releaseWebhook(db, kind, sid);
    throw err;
  }
}

export const voicemailWebhooks = createRouter()
  .openapi(recordingRoute, async (c) => {
    const deps = c.get("deps");
    const parsed = recordingParams.safeParse(twilioParams(c));
    if (!parsed.success) return invalid(c, parsed.error);
    const p = parsed.data;
    // Only the final events were asked for; an in-progress one carries nothing to keep.
    if (p.RecordingStatus === "in-progress") return accepted();
    const status = p.RecordingStatus;
    const q = c.req.valid("query");
    await once(c, `recording.${status}`, p.RecordingSid, async () => {
      const outcome = await acceptRecording(deps, {
        recordingSid: p.RecordingSid,
        status,
        recordingUrl: p.RecordingUrl,
        durationSeconds: p.RecordingDuration ?? 0,
        callSid: p.CallSid,
        didId: q.didId,
        userId: q.userId,
        cdrId: q.cdrId,
      });
      deps.logger.info(
        { recordingSid: p.RecordingSid, status, outcome: outcome.kind, seconds: p.RecordingDuration ?? 0 },
        "voicemail recording callback",
      );
    });
    return accepted();
  })
  .openapi(transcriptionRoute, async (c) => {
    const deps = c.get("deps");
    const parsed = transcriptionParams.safeParse(twilioParams(c));
    if (!parsed.success) return invalid(c, parsed.error);
    const p = parsed.data;
    await once(c, `transcription.${p.TranscriptionStatus}`, p.TranscriptionSid, async () => {
      const outcome = await acceptTranscription(deps, {
        recordingSid: p.RecordingSid,
        status: p.TranscriptionStatus,
        text: p.TranscriptionText ?? "",
      });
      deps.logger.info(
        { recordingSid: p.RecordingSid, status: p.TranscriptionStatus, outcome },
        "voicemail transcription callback",
      );
    });
    return accepted();
  })
  .openapi(recordingDoneRoute, () => twimlResponse(twiml([el("Hangup")])));
