/**
 * What the mailbox owner is told about a voicemail (SPEC §3, §9): the first email
 * with the audio attached and the transcript when there is one (else why not, or
 * that it follows), and the follow-up carrying a transcript that came later.
 * Times are shown in the installation's time zone, like the UI does.
 */
import { dids, type TranscriptStatus, voicemails } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import type { Notification } from "../notifications/notify.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";

export interface VoicemailForEmail {
  id: string;
  didId: string | null;
  userId: string | null;
  fromNumber: string;
  durationSeconds: number;
  audioStatus: "pending" | "stored" | "failed";
  blobKey: string | null;
  contentType: string | null;
  transcript: string | null;
  transcriptStatus: TranscriptStatus;
  receivedAt: Date;
}

export const voicemailEmailColumns = {
  id: voicemails.id,
  didId: voicemails.didId,
  userId: voicemails.userId,
  fromNumber: voicemails.fromNumber,
  durationSeconds: voicemails.durationSeconds,
  audioStatus: voicemails.audioStatus,
  blobKey: voicemails.blobKey,
  contentType: voicemails.contentType,
  transcript: voicemails.transcript,
  transcriptStatus: voicemails.transcriptStatus,
  receivedAt: voicemails.receivedAt,
  deletedAt: voicemails.deletedAt,
};

type EmailDeps = Pick<EdgeDeps, "db">;

/** m:ss, as phones show lengths. */
export function formatDuration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${m}:${String(s).padStart(2, "0")}`;
}

const EXTENSIONS: Record<string, string> = {
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/wave": "wav",
  "audio/mpeg": "mp3",
  "audio/mp3": "mp3",
};

/** File extension for an audio content type (wav when unknown: Twilio's default). */
export function audioExtension(contentType: string | null): string {
  return EXTENSIONS[(contentType ?? "").toLowerCase()] ?? "wav";
}

async function context(deps: EmailDeps, vm: VoicemailForEmail) {
  const installation = await readSetting(deps.db, "installation");
  let line = "";
  if (vm.didId) {
    const [did] = await deps.db
      .select({ e164: dids.e164, label: dids.label })
      .from(dids)
      .where(eq(dids.id, vm.didId));
    if (did) line = did.label ? `${did.label} (${did.e164})` : did.e164;
  }
  const received = new Intl.DateTimeFormat("en-US", {
    timeZone: installation.timeZone,
    dateStyle: "medium",
    timeStyle: "short",
  }).format(vm.receivedAt);
  return {
    name: installation.name,
    line,
    received: `${received} (${installation.timeZone})`,
    // The email job makes it absolute and appends it ("listen in the web UI").
    link: `/voicemails/${vm.id}`,
  };
}

/** The sentence about the transcript in the first email, when there is no transcript text. */
export function transcriptNote(status: TranscriptStatus): string {
  switch (status) {
    case "pending":
      return "Transcript to follow: it will be emailed when it arrives.";
    case "too_long":
      return "No transcript: the message is longer than 2 minutes.";
    case "failed":
      return "No transcript: transcription failed.";
    case "none":
      return "No transcript.";
    case "completed":
      return "";
  }
}

/** The first email: who called, how long, the transcript or why there is none, the audio attached. */
export async function firstEmail(
  deps: EmailDeps,
  vm: VoicemailForEmail,
  withTranscript: boolean,
): Promise<Notification> {
  const ctx = await context(deps, vm);
  const lines = [
    `New voicemail from ${vm.fromNumber}${ctx.line ? ` on ${ctx.line}` : ""}.`,
    "",
    `From: ${vm.fromNumber}`,
    `Received: ${ctx.received}`,
    `Length: ${formatDuration(vm.durationSeconds)}`,
    "",
  ];
  if (withTranscript && vm.transcript !== null) lines.push("Transcript:", vm.transcript, "");
  else lines.push(transcriptNote(vm.transcriptStatus === "completed" ? "pending" : vm.transcriptStatus), "");
  const stored = vm.audioStatus === "stored" && vm.blobKey !== null;
  if (!stored) lines.push("The audio could not be copied from Twilio; it is kept there for now.");
  const notification: Notification = {
    type: "voicemail",
    subject: `${ctx.name}: voicemail from ${vm.fromNumber} (${formatDuration(vm.durationSeconds)})`,
    text: lines.join("\n").trimEnd(),
    link: ctx.link,
    idempotencyKey: `voicemail:${vm.id}`,
  };
  if (vm.userId) notification.userIds = [vm.userId];
  if (stored && vm.blobKey) {
    const contentType = vm.contentType ?? "audio/wav";
    const stamp = vm.receivedAt.toISOString().slice(0, 16).replace(/[-:T]/g, "");
    notification.attachments = [
      {
        filename: `voicemail-${stamp}.${audioExtension(contentType)}`,
        contentType,
        blobKey: vm.blobKey,
      },
    ];
  }
  return notification;
}

/** The follow-up email with a transcript that arrived after the first email. */
export async function transcriptEmail(deps: EmailDeps, vm: VoicemailForEmail): Promise<Notification> {
  const ctx = await context(deps, vm);
  const notification: Notification = {
    type: "voicemail",
    subject: `${ctx.name}: transcript of the voicemail from ${vm.fromNumber}`,
    text: [
      `Transcript of the voicemail from ${vm.fromNumber}${ctx.line ? ` on ${ctx.line}` : ""}, received ${ctx.received} (${formatDuration(vm.durationSeconds)}):`,
      "",
      vm.transcript ?? "",
    ].join("\n"),
    link: ctx.link,
    idempotencyKey: `voicemail:${vm.id}:transcript`,
  };
  if (vm.userId) notification.userIds = [vm.userId];
  return notification;
}
