/**
 * Transcripts of messages longer than Twilio's 120 s transcription limit, through
 * the Conversational Intelligence v2 API (shapes from twilio-oai's
 * twilio_intelligence_v2.json): a Transcript is created from the RecordingSid
 * (`Channel.media_properties.source_sid`) on an Intelligence Service, runs
 * asynchronously (queued → in-progress → completed), and its text is read from
 * its Sentences. An account without a Service cannot transcribe: the message
 * then stays "no transcript".
 */
import type { TwilioRest } from "../twilio/rest.ts";

interface ServiceList {
  services?: { sid?: string | null }[];
}

interface TranscriptResource {
  sid?: string | null;
  status?: string | null;
}

interface TranscriptList {
  transcripts?: TranscriptResource[];
}

interface SentenceList {
  sentences?: { sentence_index?: number; transcript?: string | null }[];
  meta?: { next_page_url?: string | null };
}

export type IntelligenceStatus =
  | "queued"
  | "in-progress"
  | "completed"
  | "failed"
  | "canceled"
  | "new"
  | "error";

/** The account's first Intelligence Service, or null when it has none. */
export async function intelligenceService(rest: TwilioRest): Promise<string | null> {
  const list = await rest.request<ServiceList>("GET", "intelligence", "/v2/Services", {
    query: { PageSize: 20 },
  });
  return list.services?.find((s) => typeof s.sid === "string")?.sid ?? null;
}

/** A transcript already made from this recording (an earlier attempt may have created it). */
export async function transcriptForRecording(rest: TwilioRest, recordingSid: string): Promise<string | null> {
  const list = await rest.request<TranscriptList>("GET", "intelligence", "/v2/Transcripts", {
    query: { SourceSid: recordingSid, PageSize: 20 },
  });
  return list.transcripts?.find((t) => typeof t.sid === "string")?.sid ?? null;
}

/** Creates the transcript of a recording; answers its SID. */
export async function createTranscript(
  rest: TwilioRest,
  serviceSid: string,
  recordingSid: string,
  customerKey: string,
): Promise<string> {
  const created = await rest.request<TranscriptResource>("POST", "intelligence", "/v2/Transcripts", {
    form: {
      ServiceSid: serviceSid,
      Channel: JSON.stringify({ media_properties: { source_sid: recordingSid } }),
      CustomerKey: customerKey,
    },
  });
  if (typeof created.sid !== "string") throw new Error("Intelligence answered a transcript without a sid");
  return created.sid;
}

export async function transcriptStatus(rest: TwilioRest, transcriptSid: string): Promise<string> {
  const t = await rest.request<TranscriptResource>("GET", "intelligence", `/v2/Transcripts/${transcriptSid}`);
  return t.status ?? "queued";
}

/** Most pages of sentences read (5,000 sentences each: far beyond a 3-minute message). */
const MAX_PAGES = 10;

/** The transcript's text: its sentences in order, one per line. */
export async function transcriptText(rest: TwilioRest, transcriptSid: string): Promise<string> {
  const sentences: { index: number; text: string }[] = [];
  let next: string | null = `/v2/Transcripts/${transcriptSid}/Sentences?PageSize=5000`;
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const path: string = next;
    if (/^https?:/.test(path) && !rest.isTwilioUrl(path)) break;
    const list: SentenceList = await rest.request<SentenceList>("GET", "intelligence", path);
    for (const s of list.sentences ?? []) {
      if (typeof s.transcript === "string" && s.transcript.trim() !== "")
        sentences.push({ index: s.sentence_index ?? sentences.length, text: s.transcript.trim() });
    }
    next = list.meta?.next_page_url ?? null;
  }
  return sentences
    .sort((a, b) => a.index - b.index)
    .map((s) => s.text)
    .join("\n");
}
