/**
 * What the simulated Twilio did during one call, in order: every webhook it requested and the answer,
 * each TwiML document and verb it executed, each SIP request and response on its dialled legs, the
 * media it played, the recordings it made. Tests read it to assert a call's story ("the phone rang, then
 * voicemail") rather than poking at internals.
 */

export type WebhookPurpose =
  | "voice"
  | "voice-fallback"
  | "redirect"
  | "gather-action"
  | "record-action"
  | "dial-action"
  | "recording-status"
  | "transcription"
  | "status-callback"
  | "dial-status-callback";

export type TranscriptEntry =
  | {
      type: "webhook";
      purpose: WebhookPurpose;
      url: string;
      method: string;
      params: Record<string, string>;
      status: number | undefined;
      error: string | undefined;
      body: string;
    }
  | { type: "twiml"; url: string; verbs: string[] }
  | { type: "twiml-error"; url: string; code: number; message: string }
  | { type: "answered" }
  | { type: "say"; text: string; voice: string | undefined }
  | { type: "play"; url: string; status: number | undefined; contentType: string | undefined; bytes: number }
  | { type: "play-digits"; digits: string }
  | { type: "pause"; seconds: number }
  | { type: "gather"; digits: string; finishedOnKey: string | undefined }
  | {
      type: "record";
      recordingSid: string;
      status: "completed" | "absent";
      durationSeconds: number;
      digits: string | undefined;
    }
  | {
      type: "transcription";
      recordingSid: string;
      transcriptionSid: string | undefined;
      skipped: string | undefined;
    }
  | { type: "dial"; nouns: string[]; timeout: number; answerOnBridge: boolean }
  | {
      type: "dial-result";
      dialCallStatus: string;
      dialCallSid: string | undefined;
      durationSeconds: number;
      sipResponseCode: number | undefined;
    }
  | { type: "sip"; callSid: string; direction: "out" | "in"; label: string; status?: number }
  | {
      type: "pstn";
      callSid: string;
      number: string;
      event: "ringing" | "answered" | "busy" | "no-answer" | "failed" | "hangup";
    }
  | { type: "bridged"; callSid: string }
  | { type: "redirect"; url: string }
  | { type: "reject"; reason: "rejected" | "busy" }
  | { type: "hangup"; by: "twilio" | "caller" | "api" }
  /** The <Hangup> verb itself (the "hangup" entry says who ended the call). */
  | { type: "hangup-verb" }
  | { type: "application-error"; message: string }
  | { type: "note"; message: string };

/** An ordered list of entries with the questions tests ask of it. */
export class Transcript {
  readonly entries: (TranscriptEntry & { at: number })[] = [];
  private readonly started = performance.now();

  add(entry: TranscriptEntry): void {
    this.entries.push({ ...entry, at: Math.round(performance.now() - this.started) });
  }

  /** The webhooks requested for `purpose` (all of them without one). */
  webhooks(purpose?: WebhookPurpose): Extract<TranscriptEntry, { type: "webhook" }>[] {
    return this.entries.filter(
      (e): e is Extract<TranscriptEntry, { type: "webhook" }> & { at: number } =>
        e.type === "webhook" && (purpose === undefined || e.purpose === purpose),
    );
  }

  /** Entries of one type. */
  of<T extends TranscriptEntry["type"]>(type: T): Extract<TranscriptEntry, { type: T }>[] {
    return this.entries.filter(
      (e): e is Extract<TranscriptEntry, { type: T }> & { at: number } => e.type === type,
    );
  }

  /** The verbs executed, in order (Say, Dial, Record, …), as a short story of the call. */
  story(): string[] {
    const out: string[] = [];
    for (const e of this.entries) {
      if (e.type === "say") out.push("Say");
      else if (e.type === "play" || e.type === "play-digits") out.push("Play");
      else if (e.type === "pause") out.push("Pause");
      else if (e.type === "gather") out.push("Gather");
      else if (e.type === "record") out.push("Record");
      else if (e.type === "dial") out.push("Dial");
      else if (e.type === "redirect") out.push("Redirect");
      else if (e.type === "reject") out.push("Reject");
      else if (e.type === "hangup-verb") out.push("Hangup");
    }
    return out;
  }
}
