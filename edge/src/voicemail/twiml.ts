/**
 * The voicemail TwiML (SPEC §3): the DID's greeting (text-to-speech or uploaded
 * audio, else a built-in spoken default), then `<Record>` with the SPEC limits
 * (180 s, 10 s of silence ends it, beep) whose callbacks carry the DID, mailbox
 * owner and CDR in their query so the recording and transcription webhooks can
 * link what they receive. The voice webhooks end every path that leads to
 * voicemail with these verbs.
 */
import { dids, parseGreeting } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { el, type TwimlElement } from "../twiml/builder.ts";
import { audioSourceVerb } from "./playable.ts";

export const DEFAULT_GREETING =
  "The person you are calling is not available. Please leave a message after the tone.";

/** SPEC §3 limits. */
export const RECORD_MAX_SECONDS = 180;
export const RECORD_SILENCE_TIMEOUT_SECONDS = 10;

/** Webhook paths (under the public URL) that the `<Record>` verb points at. */
export const RECORDING_CALLBACK_PATH = "/api/webhooks/twilio/recording";
export const TRANSCRIPTION_CALLBACK_PATH = "/api/webhooks/twilio/transcription";
export const RECORD_DONE_PATH = "/api/webhooks/twilio/recording-done";

export interface VoicemailTarget {
  /** The DID that was called (its greeting plays), when known. */
  didId: string | null;
  /** Mailbox owner: the user whose devices the call was for; null = the shared (admin) mailbox. */
  userId: string | null;
  cdrId: string;
  callSid: string;
}

type TwimlDeps = Pick<EdgeDeps, "db" | "config" | "clock" | "logger">;

/** The query that links a callback to its mailbox: only the ids that are set. */
export function voicemailCallbackQuery(target: Omit<VoicemailTarget, "callSid">): string {
  const q = new URLSearchParams();
  if (target.didId) q.set("didId", target.didId);
  if (target.userId) q.set("userId", target.userId);
  q.set("cdrId", target.cdrId);
  return q.toString();
}

async function greetingVerb(deps: TwimlDeps, didId: string | null): Promise<TwimlElement> {
  const fallback = el("Say", {}, [DEFAULT_GREETING]);
  if (!didId) return fallback;
  const [row] = await deps.db.select({ greeting: dids.greeting }).from(dids).where(eq(dids.id, didId));
  if (!row?.greeting) return fallback;
  try {
    const greeting = parseGreeting(row.greeting);
    const verb = await audioSourceVerb(deps, greeting.source);
    if (verb) return verb;
    deps.logger.warn(
      { didId },
      "voicemail greeting audio not playable (no Twilio account): default greeting",
    );
  } catch (err) {
    // A broken stored greeting must not cost the caller their voicemail: play the default.
    deps.logger.warn(
      { didId, err: err instanceof Error ? err.message : String(err) },
      "voicemail greeting unreadable: default greeting",
    );
  }
  return fallback;
}

/**
 * Greeting, `<Record>`, `<Hangup/>`. The Record's action answers `<Hangup/>` too;
 * the trailing Hangup covers Twilio's "nothing recorded" case, where it goes on to
 * the next verb instead of the action.
 */
export async function voicemailTwiml(deps: TwimlDeps, target: VoicemailTarget): Promise<TwimlElement[]> {
  const base = deps.config.publicUrl;
  const query = voicemailCallbackQuery(target);
  return [
    await greetingVerb(deps, target.didId),
    el("Record", {
      maxLength: RECORD_MAX_SECONDS,
      timeout: RECORD_SILENCE_TIMEOUT_SECONDS,
      playBeep: true,
      action: `${base}${RECORD_DONE_PATH}?${query}`,
      method: "POST",
      recordingStatusCallback: `${base}${RECORDING_CALLBACK_PATH}?${query}`,
      recordingStatusCallbackMethod: "POST",
      recordingStatusCallbackEvent: "completed absent failed",
      transcribe: true,
      transcribeCallback: `${base}${TRANSCRIPTION_CALLBACK_PATH}?${query}`,
    }),
    el("Hangup"),
  ];
}
