/**
 * The TwiML executor: one call's life as Twilio runs it. It fetches the document (falling back to the
 * Voice Fallback URL when the primary answers an error, times out or returns TwiML Twilio would refuse),
 * runs its verbs in order with Twilio's parameters on every request, follows action URLs, and ends with
 * the status callback. <Dial> forks one child call per noun: a <Sip> noun is a real SIP INVITE (answering
 * the far end's 401/407 with the noun's credentials, URI `?X-…=…` parameters sent as headers, first 2xx
 * wins, the rest CANCELled, `timeout` honoured); a <Number> is a party of the simulated PSTN.
 *
 * The caller is a `CallerLeg`: a simulated PSTN caller for a number's inbound call (driver.ts) or the
 * relay's INVITE into the SIP Domain (sip-domain.ts). Media of a bridged call flows directly between the
 * caller's and the callee's endpoints (each side's SDP is handed to the other), so each end's RtpPeer
 * hears the other's real RTP.
 *
 * Time: verbs that only pass time (Say, Play, Pause, the caller speaking into <Record>, a <Gather> that
 * waits) are counted on a simulated clock instead of waiting, so a 30 s voicemail takes milliseconds;
 * ringing and bridged calls run in real time because real SIP and RTP are involved.
 */
import type Srf from "drachtio-srf";
import { API_VERSION, type CallResource, type CallStatus, type SimState } from "../state.ts";
import { speechLikeRecording, toneRecording, wavDurationSeconds, wavFile } from "./audio.ts";
import type { PstnNetwork, PstnParty } from "./pstn.ts";
import { type SimSip, sipStatusOf } from "./sip.ts";
import { Transcript, type WebhookPurpose } from "./transcript.ts";
import {
  type DialNoun,
  type DialVerb,
  type GatherVerb,
  type HttpMethod,
  type PlayVerb,
  parseTwiml,
  type RecordVerb,
  type SayVerb,
  splitSipUri,
  TwimlError,
  type TwimlVerb,
} from "./twiml.ts";
import { callWebhook, succeeded, type WebhookOutcome } from "./webhook.ts";

/** What a REST update of a live call carries (the state's CallInstructions). */
export interface CallInstructionsLike {
  url?: string;
  method?: string;
  twiml?: string;
}

/** How the caller behaves, chosen by the test. */
export interface CallerScript {
  /** Digits the caller presses, one entry per <Gather> in order. */
  digits?: string[];
  /** What the caller says into a <Record>. */
  speak?: {
    /** Seconds of audio (0: silence → RecordingStatus absent). Default 5. */
    seconds?: number;
    /** How the recording ends: the caller hangs up (default), goes quiet, or presses `key`. */
    endWith?: "hangup" | "silence" | "key";
    key?: string;
    /** The audio: a speech-like signal (default) or a steady tone. */
    audio?: "speech" | "tone";
    /** What Twilio's transcription will say. */
    transcript?: string;
  };
  /** The caller hangs up this long after the call started (real time), wherever it is. */
  hangupAfterMs?: number;
}

/** Knobs of the simulated Twilio for one call. */
export interface SessionOptions {
  /** Deadline for each webhook (Twilio: 15 s). */
  webhookTimeoutMs: number;
  /** Delay before the transcription callback (Twilio's can come hours later). */
  transcriptionDelayMs: number;
  /** A bridged call that nobody ends is ended after this long (guards a test that forgot to hang up). */
  maxBridgeMs: number;
}

/** The caller's side of a call, as the executor drives it. */
export interface CallerLeg {
  readonly kind: "pstn" | "sip";
  readonly answered: boolean;
  /** The leg is gone (either side ended it). */
  readonly hungUp: boolean;
  /** Who ended it. */
  readonly endedBy: "caller" | "twilio" | undefined;
  /** Resolves when the leg ends (either side). */
  readonly hangupSignal: Promise<void>;
  /** Twilio picks up; `mediaSdp` is where the caller's audio should go (Twilio's own media when absent). */
  answer(mediaSdp?: string): Promise<void>;
  /** Points the caller's media at a new endpoint once answered (a re-INVITE for SIP callers). */
  connectMedia(mediaSdp: string): Promise<void>;
  /** The SDP to offer a dialled party so it sends its audio straight to the caller. */
  offerSdp(): string;
  /** Twilio refuses an unanswered call. */
  reject(reason: "rejected" | "busy"): Promise<void>;
  /** Twilio ends the call. */
  hangup(): Promise<void>;
  /** A <Dial> found nobody (an unanswered SIP caller then gets the matching SIP failure). */
  dialFailed?(status: "busy" | "no-answer" | "failed" | "canceled"): void;
  /** The caller hangs up (the script or a test). */
  callerHangsUp(): Promise<void>;
}

/** A dialled leg that answered, as a test uses it while the call is bridged. */
export interface Bridge {
  /** The child call's SID (DialCallSid). */
  readonly callSid: string;
  readonly kind: "sip" | "number";
  /** The SIP URI or the number dialled. */
  readonly target: string;
  /** For <Sip>: the SIP dialog and the far end's SDP. */
  readonly dialog: Srf.Dialog | undefined;
  /** For <Number>: the PSTN party. */
  readonly party: PstnParty | undefined;
  /** Resolves with who ended the bridge. */
  readonly ended: Promise<"caller" | "callee" | "time-limit" | "api">;
}

interface DialBranch {
  callSid: string;
  noun: DialNoun;
  target: string;
  /** Resolves once answered or failed (never rejects). */
  result: Promise<{ answered: true; remoteSdp: string } | { answered: false; status: number | undefined }>;
  cancel(): void;
  hangup(): void;
  /** Resolves when the answered callee hangs up. */
  calleeEnded: Promise<void>;
  dialog: Srf.Dialog | undefined;
  party: PstnParty | undefined;
  sipCallId: string | undefined;
  finalStatus: number | undefined;
}

export interface SessionContext {
  state: SimState;
  sip: SimSip | undefined;
  pstn: PstnNetwork;
  authToken: string;
  options: SessionOptions;
}

const MAX_DOCUMENTS = 100;

export class CallSession {
  readonly transcript = new Transcript();
  private simulatedMs = 0;
  private answeredAt: number | undefined;
  private finalStatus: CallStatus | undefined;
  private apiEnded = false;
  private apiEndSignal: Promise<void>;
  /** A REST update (Url/Twiml) waiting to replace the running document. */
  private pendingRedirect: CallInstructionsLike | undefined;
  private redirectSignal: Promise<"redirected"> = new Promise<"redirected">(() => undefined);
  private redirectResolve: (() => void) | undefined;
  private apiEndResolve: (() => void) | undefined;
  private digitsLeft: string[];
  private readonly background: Promise<unknown>[] = [];
  private readonly bridgeWaiters: ((b: Bridge) => void)[] = [];
  readonly bridges: Bridge[] = [];
  private documents = 0;
  private hangupTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ctx: SessionContext,
    readonly call: CallResource,
    readonly caller: CallerLeg,
    /** Parameters Twilio adds to every request about this call (From, To, Caller, SipDomain…). */
    private readonly baseParams: Record<string, string>,
    private readonly script: CallerScript,
    private readonly statusCallback: { url: string; method: HttpMethod } | undefined,
  ) {
    this.digitsLeft = [...(script.digits ?? [])];
    this.apiEndSignal = new Promise<void>((r) => {
      this.apiEndResolve = r;
    });
    this.armRedirect();
  }

  /** The next <Dial> leg that answers. */
  nextBridge(timeoutMs = 30_000): Promise<Bridge> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no dialled leg answered")), timeoutMs);
      this.bridgeWaiters.push((b) => {
        clearTimeout(t);
        resolve(b);
      });
    });
  }

  /**
   * New instructions over REST (`Url` or `Twiml` on a live call): whatever runs now stops (a ringing or
   * bridged <Dial> leg is canceled or hung up) and the new document takes over, as Twilio does.
   */
  redirect(instructions: CallInstructionsLike): void {
    if (this.over) return;
    this.pendingRedirect = instructions;
    this.redirectResolve?.();
  }

  private armRedirect(): void {
    this.redirectSignal = new Promise<"redirected">((r) => {
      this.redirectResolve = () => r("redirected");
    });
  }

  /** Ends the call from outside (REST `Status=completed`). */
  endByApi(): void {
    if (this.apiEnded) return;
    this.apiEnded = true;
    this.transcript.add({ type: "hangup", by: "api" });
    this.apiEndResolve?.();
  }

  private get over(): boolean {
    return this.caller.hungUp || this.apiEnded;
  }

  /** Everything scheduled after the call (transcription callbacks) has been sent. */
  async settled(): Promise<void> {
    // Several callers may wait at once (the driver and a test): nobody takes jobs away from the others.
    let waited = 0;
    while (waited < this.background.length) {
      const batch = this.background.slice(waited);
      waited = this.background.length;
      await Promise.allSettled(batch);
    }
  }

  private params(extra: Record<string, string> = {}): Record<string, string> {
    const status = this.over ? "completed" : this.caller.answered ? "in-progress" : "ringing";
    return {
      AccountSid: this.call.account_sid,
      ApiVersion: API_VERSION,
      CallSid: this.call.sid,
      CallStatus: status,
      Direction: "inbound",
      ...this.baseParams,
      ...extra,
    };
  }

  private async request(
    purpose: WebhookPurpose,
    url: string,
    method: HttpMethod,
    params: Record<string, string>,
  ): Promise<WebhookOutcome> {
    const outcome = await callWebhook(
      this.ctx.authToken,
      { url, method, params, timeoutMs: this.ctx.options.webhookTimeoutMs },
      this.ctx.state.webhooks,
    );
    this.transcript.add({
      type: "webhook",
      purpose,
      url,
      method,
      params,
      status: outcome.status,
      error: outcome.error,
      body: outcome.body.slice(0, 4000),
    });
    return outcome;
  }

  /** Fetches a document and parses it; undefined (with the error in the transcript) when Twilio could not use it. */
  private async fetchTwiml(
    purpose: WebhookPurpose,
    url: string,
    method: HttpMethod,
    params: Record<string, string>,
  ): Promise<{ verbs: TwimlVerb[] } | { error: string; code: number }> {
    this.documents += 1;
    if (this.documents > MAX_DOCUMENTS) return { error: "too many documents for one call", code: 11200 };
    const outcome = await this.request(purpose, url, method, params);
    if (!succeeded(outcome)) return { error: outcome.error ?? "no answer", code: 11200 };
    try {
      const verbs = parseTwiml(outcome.body, url);
      this.transcript.add({ type: "twiml", url, verbs: verbs.map((v) => v.verb) });
      return { verbs };
    } catch (err) {
      const code = err instanceof TwimlError ? err.code : 12100;
      const message = err instanceof Error ? err.message : String(err);
      this.transcript.add({ type: "twiml-error", url, code, message });
      return { error: message, code };
    }
  }

  /**
   * Runs the call from its first document to the end; resolves with the final CallStatus once the status
   * callback was sent.
   */
  async run(voice: {
    url: string | null;
    method: HttpMethod;
    fallbackUrl: string | null;
    fallbackMethod: HttpMethod;
    /** TwiML given with the call (REST `Twiml=`) instead of a URL. */
    twiml?: string;
  }): Promise<CallStatus> {
    // An outbound call is answered by the far end before Twilio asks for its TwiML.
    if (this.caller.answered && this.answeredAt === undefined) {
      this.answeredAt = Date.now();
      this.transcript.add({ type: "answered" });
    }
    void this.caller.hangupSignal.then(() => {
      if (this.caller.endedBy === "caller") this.transcript.add({ type: "hangup", by: "caller" });
    });
    if (this.script.hangupAfterMs !== undefined) {
      this.hangupTimer = setTimeout(() => {
        void this.caller.callerHangsUp();
      }, this.script.hangupAfterMs);
    }
    try {
      let doc: { verbs: TwimlVerb[] } | { error: string; code: number } = {
        error: "the number has no Voice URL",
        code: 11200,
      };
      let docUrl = voice.url ?? "";
      if (voice.twiml !== undefined) {
        try {
          const verbs = parseTwiml(voice.twiml, this.ctx.state.baseUrl);
          this.transcript.add({
            type: "twiml",
            url: "(TwiML given over REST)",
            verbs: verbs.map((v) => v.verb),
          });
          doc = { verbs };
        } catch (err) {
          doc = { error: err instanceof Error ? err.message : String(err), code: 12100 };
        }
      } else if (voice.url) doc = await this.fetchTwiml("voice", voice.url, voice.method, this.params());
      if ("error" in doc && voice.fallbackUrl && !this.over) {
        docUrl = voice.fallbackUrl;
        doc = await this.fetchTwiml(
          "voice-fallback",
          voice.fallbackUrl,
          voice.fallbackMethod,
          this.params({ ErrorCode: String(doc.code), ErrorUrl: voice.url ?? "" }),
        );
      }
      if ("error" in doc) await this.applicationError(doc.error);
      else await this.execute(doc.verbs, docUrl);
    } catch (err) {
      this.transcript.add({ type: "note", message: `simulator fault: ${String(err)}` });
      await this.applicationError(String(err));
    } finally {
      if (this.hangupTimer) clearTimeout(this.hangupTimer);
    }
    return this.finish();
  }

  private async applicationError(message: string): Promise<void> {
    if (this.over) return;
    // Twilio answers, says "An application error has occurred", and hangs up.
    this.transcript.add({ type: "application-error", message });
    await this.answer();
    this.simulatedMs += 3000;
    await this.endCall("twilio");
  }

  private async answer(mediaSdp?: string): Promise<void> {
    if (this.caller.answered || this.over) return;
    await this.caller.answer(mediaSdp);
    this.answeredAt = Date.now();
    this.ctx.state.updateCall(this.call.sid, { status: "in-progress" });
    this.transcript.add({ type: "answered" });
  }

  private async endCall(by: "twilio"): Promise<void> {
    if (this.over) return;
    this.transcript.add({ type: "hangup", by });
    await this.caller.hangup();
  }

  /** Runs verbs until the call ends or the document runs out (Twilio then hangs up). */
  private async execute(first: TwimlVerb[], firstUrl: string): Promise<void> {
    let verbs = first;
    let docUrl = firstUrl;
    let i = 0;
    while (!this.over) {
      const redirect = this.pendingRedirect;
      if (redirect) {
        this.pendingRedirect = undefined;
        this.armRedirect();
        const doc = await this.redirected(redirect, docUrl);
        if (doc === "end") return;
        if ("error" in doc) {
          await this.applicationError(doc.error);
          return;
        }
        verbs = doc.verbs;
        docUrl = doc.url;
        i = 0;
        continue;
      }
      const verb = verbs[i++];
      if (!verb) {
        await this.endCall("twilio");
        return;
      }
      const next = await this.verb(verb, docUrl, i === 1);
      if (next === "end") return;
      if (next && typeof next === "object") {
        if ("error" in next) {
          await this.applicationError(next.error);
          return;
        }
        verbs = next.verbs;
        docUrl = next.url;
        i = 0;
      }
    }
  }

  /** The document a REST update names: its TwiML as given, or fetched from its URL. */
  private async redirected(
    to: CallInstructionsLike,
    docUrl: string,
  ): Promise<{ verbs: TwimlVerb[]; url: string } | { error: string } | "end"> {
    if (to.twiml !== undefined) {
      this.transcript.add({ type: "redirect", url: "(TwiML given over REST)" });
      try {
        const verbs = parseTwiml(to.twiml, docUrl);
        this.transcript.add({ type: "twiml", url: docUrl, verbs: verbs.map((v) => v.verb) });
        return { verbs, url: docUrl };
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) };
      }
    }
    if (!to.url) return { error: "a REST update without Url or Twiml" };
    this.transcript.add({ type: "redirect", url: to.url });
    return this.follow(
      "redirect",
      to.url,
      to.method?.toUpperCase() === "GET" ? "GET" : "POST",
      this.params(),
    );
  }

  /**
   * One verb. Returns a new document to continue with, "end" when the call is over, or undefined to go
   * on with the next verb.
   */
  private async verb(
    verb: TwimlVerb,
    docUrl: string,
    firstOfDocument: boolean,
  ): Promise<{ verbs: TwimlVerb[]; url: string } | { error: string } | "end" | undefined> {
    switch (verb.verb) {
      case "Reject": {
        this.transcript.add({ type: "reject", reason: verb.reason });
        if (!this.caller.answered && firstOfDocument) {
          await this.caller.reject(verb.reason);
          this.finalStatus = verb.reason === "busy" ? "busy" : "no-answer";
        } else {
          // Not the first verb (or answered already): Twilio just hangs up.
          await this.endCall("twilio");
        }
        return "end";
      }
      case "Hangup":
        this.transcript.add({ type: "hangup-verb" });
        await this.answer();
        await this.endCall("twilio");
        return "end";
      case "Redirect":
        this.transcript.add({ type: "redirect", url: verb.url });
        return this.follow("redirect", verb.url, verb.method, this.params());
      case "Say":
        await this.answer();
        this.say(verb);
        return undefined;
      case "Play":
        await this.answer();
        await this.play(verb);
        return undefined;
      case "Pause":
        await this.answer();
        this.transcript.add({ type: "pause", seconds: verb.length });
        this.simulatedMs += verb.length * 1000;
        return undefined;
      case "Gather":
        await this.answer();
        return this.gather(verb, docUrl);
      case "Record":
        await this.answer();
        return this.record(verb, docUrl);
      case "Dial":
        return this.dial(verb);
    }
  }

  private async follow(
    purpose: WebhookPurpose,
    url: string,
    method: HttpMethod,
    params: Record<string, string>,
  ): Promise<{ verbs: TwimlVerb[]; url: string } | { error: string } | "end"> {
    const doc = await this.fetchTwiml(purpose, url, method, params);
    if (this.over) return "end";
    if ("error" in doc) return { error: doc.error };
    return { verbs: doc.verbs, url };
  }

  private say(verb: SayVerb): void {
    const times = verb.loop === 0 ? 1 : verb.loop;
    for (let n = 0; n < times; n++) this.transcript.add({ type: "say", text: verb.text, voice: verb.voice });
    // About 15 characters a second of speech.
    this.simulatedMs += Math.max(500, (verb.text.length / 15) * 1000) * times;
  }

  /** <Play>: Twilio GETs the audio; it must answer 200 with an audio/* type, or the verb is skipped. */
  private async play(verb: PlayVerb): Promise<void> {
    if (!verb.url) {
      this.transcript.add({ type: "play-digits", digits: verb.digits ?? "" });
      return;
    }
    let status: number | undefined;
    let contentType: string | undefined;
    let bytes = 0;
    let seconds = 0;
    try {
      const res = await fetch(verb.url, {
        headers: { "User-Agent": "TwilioProxy/1.1" },
        signal: AbortSignal.timeout(this.ctx.options.webhookTimeoutMs),
      });
      status = res.status;
      contentType = res.headers.get("content-type") ?? undefined;
      const body = new Uint8Array(await res.arrayBuffer());
      bytes = body.byteLength;
      seconds = wavDurationSeconds(body) ?? bytes / 16_000;
    } catch (err) {
      this.transcript.add({ type: "note", message: `<Play> fetch failed: ${String(err)}` });
    }
    this.transcript.add({ type: "play", url: verb.url, status, contentType, bytes });
    const playable = status === 200 && /^audio\//i.test(contentType ?? "");
    if (!playable) {
      this.transcript.add({
        type: "note",
        message: `<Play> skipped: ${verb.url} is not playable audio (error 11200)`,
      });
      return;
    }
    this.simulatedMs += seconds * 1000 * (verb.loop === 0 ? 1 : verb.loop);
  }

  private async gather(
    verb: GatherVerb,
    docUrl: string,
  ): Promise<{ verbs: TwimlVerb[]; url: string } | { error: string } | "end" | undefined> {
    let pressed = this.digitsLeft.shift();
    for (const p of verb.prompts) {
      if (p.verb === "Say") this.say(p);
      else if (p.verb === "Play") await this.play(p);
      else {
        this.transcript.add({ type: "pause", seconds: p.length });
        this.simulatedMs += p.length * 1000;
      }
      // A caller who knows what to press presses during the first prompt.
      if (pressed !== undefined) break;
    }
    let finishedOnKey: string | undefined;
    let digits = "";
    if (pressed === undefined) {
      this.simulatedMs += verb.timeout * 1000;
    } else {
      for (const ch of pressed) {
        if (verb.finishOnKey.includes(ch)) {
          finishedOnKey = ch;
          break;
        }
        digits += ch;
        if (verb.numDigits !== undefined && digits.length >= verb.numDigits) break;
      }
      pressed = undefined;
    }
    this.transcript.add({ type: "gather", digits, finishedOnKey });
    if (digits === "" && !verb.actionOnEmptyResult) return undefined;
    const extra: Record<string, string> = { Digits: digits };
    if (finishedOnKey !== undefined) extra.FinishedOnKey = finishedOnKey;
    // Without an action, Twilio posts the digits to the current document's URL.
    return this.follow(
      "gather-action",
      verb.action ?? docUrl,
      verb.action ? verb.method : "POST",
      this.params(extra),
    );
  }

  private async record(
    verb: RecordVerb,
    docUrl: string,
  ): Promise<{ verbs: TwimlVerb[]; url: string } | { error: string } | "end" | undefined> {
    const speak = this.script.speak ?? {};
    const wanted = Math.max(0, speak.seconds ?? 5);
    const seconds = Math.min(wanted, verb.maxLength);
    const endWith = wanted > verb.maxLength ? "max-length" : (speak.endWith ?? "hangup");
    if (verb.playBeep) this.transcript.add({ type: "note", message: "beep" });
    const audio =
      seconds === 0
        ? { wav: wavFile(new Int16Array(0)), durationSeconds: 0 }
        : speak.audio === "tone"
          ? toneRecording(seconds)
          : speechLikeRecording(seconds);
    this.simulatedMs += seconds * 1000 + (endWith === "silence" ? verb.timeout * 1000 : 0);
    const status = seconds === 0 ? "absent" : "completed";
    const recording = this.ctx.state.addRecording({
      callSid: this.call.sid,
      audio: audio.wav,
      durationSeconds: seconds,
      status,
    });
    let digits: string | undefined;
    if (endWith === "hangup") digits = "hangup";
    else if (endWith === "key") digits = speak.key ?? verb.finishOnKey.charAt(0);
    this.transcript.add({
      type: "record",
      recordingSid: recording.sid,
      status,
      durationSeconds: seconds,
      digits,
    });
    if (endWith === "hangup") await this.caller.callerHangsUp();

    const recordingParams = {
      AccountSid: this.call.account_sid,
      CallSid: this.call.sid,
      RecordingSid: recording.sid,
      RecordingUrl: recording.mediaUrl,
      RecordingStatus: status,
      RecordingDuration: String(Math.round(seconds)),
      RecordingChannels: "1",
      RecordingSource: "RecordVerb",
      RecordingStartTime: recording.start_time,
      ErrorCode: "0",
    };
    // "absent" is reported to the same subscription as "completed" (it is how a recording completes empty).
    const events = verb.recordingStatusCallbackEvent;
    if (verb.recordingStatusCallback && (events.includes(status) || events.includes("completed")))
      await this.request(
        "recording-status",
        verb.recordingStatusCallback,
        verb.recordingStatusCallbackMethod,
        recordingParams,
      );

    if (verb.transcribe && status === "completed")
      this.scheduleTranscription(verb, recording.sid, recording.mediaUrl, seconds);

    // An empty recording: Twilio does not request the action and goes on with the next verb.
    if (status === "absent") return this.over ? "end" : undefined;
    const extra: Record<string, string> = {
      RecordingUrl: recording.mediaUrl,
      RecordingDuration: String(Math.round(seconds)),
      RecordingSid: recording.sid,
    };
    if (digits !== undefined) extra.Digits = digits;
    const target = verb.action ?? docUrl;
    const next = await this.follow(
      "record-action",
      target,
      verb.action ? verb.method : "POST",
      this.params(extra),
    );
    return next;
  }

  /** Twilio transcribes recordings of at most 120 s, some time after the call. */
  private scheduleTranscription(
    verb: RecordVerb,
    recordingSid: string,
    recordingUrl: string,
    seconds: number,
  ): void {
    if (seconds > 120) {
      this.transcript.add({
        type: "transcription",
        recordingSid,
        transcriptionSid: undefined,
        skipped: "longer than 120 s: Twilio does not transcribe it",
      });
      return;
    }
    const callback = verb.transcribeCallback;
    const text = this.script.speak?.transcript ?? "Hello, this is a message left with the Twilio simulator.";
    const job = new Promise<void>((resolve) => {
      setTimeout(() => {
        const t = this.ctx.state.addTranscription({ recordingSid, text });
        this.transcript.add({
          type: "transcription",
          recordingSid,
          transcriptionSid: t.sid,
          skipped: undefined,
        });
        if (!callback) {
          resolve();
          return;
        }
        this.request("transcription", callback, "POST", {
          ...this.params(),
          CallStatus: "completed",
          TranscriptionSid: t.sid,
          TranscriptionText: text,
          TranscriptionStatus: "completed",
          TranscriptionUrl: `${this.ctx.state.baseUrl}/${API_VERSION}/Accounts/${this.call.account_sid}/Recordings/${recordingSid}/Transcriptions/${t.sid}`,
          TranscriptionType: "fast",
          RecordingSid: recordingSid,
          RecordingUrl: recordingUrl,
          url: callback,
        }).then(
          () => resolve(),
          () => resolve(),
        );
      }, this.ctx.options.transcriptionDelayMs);
    });
    this.background.push(job);
  }

  // ————————————————————————————————————— Dial —————————————————————————————————————

  private async dial(
    verb: DialVerb,
  ): Promise<{ verbs: TwimlVerb[]; url: string } | { error: string } | "end" | undefined> {
    this.transcript.add({
      type: "dial",
      nouns: verb.nouns.map((n) =>
        n.kind === "sip" ? n.uri : n.kind === "number" ? n.number : `client:${n.identity}`,
      ),
      timeout: verb.timeout,
      answerOnBridge: verb.answerOnBridge,
    });
    if (!verb.answerOnBridge) await this.answer();
    if (this.over) return "end";

    const callerId = verb.callerId ?? this.call.from;
    const branches = verb.nouns.map((noun) => this.startBranch(noun, callerId));
    const outcome = await this.fork(branches, verb.timeout * 1000);

    let dialCallStatus: string;
    let winner: DialBranch | undefined;
    let bridgedSeconds = 0;
    if (outcome.kind === "answered") {
      winner = outcome.branch;
      const bridged = await this.bridge(outcome.branch, outcome.remoteSdp, verb);
      bridgedSeconds = bridged.seconds;
      dialCallStatus = "completed";
    } else if (outcome.kind === "caller-gone") {
      dialCallStatus = "canceled";
      if (this.pendingRedirect && !this.over) {
        // Redirected over REST while ringing: the legs are canceled and the new document takes over.
        this.transcript.add({
          type: "dial-result",
          dialCallStatus,
          dialCallSid: undefined,
          durationSeconds: 0,
          sipResponseCode: undefined,
        });
        return undefined;
      }
    } else {
      dialCallStatus = outcome.status;
      winner = outcome.branch;
      this.caller.dialFailed?.(outcome.status);
    }
    const sipCode = winner?.noun.kind === "sip" ? winner.finalStatus : undefined;
    this.transcript.add({
      type: "dial-result",
      dialCallStatus,
      dialCallSid: winner?.callSid,
      durationSeconds: bridgedSeconds,
      sipResponseCode: sipCode,
    });
    for (const b of branches) await this.childStatusCallback(b, bridgedSeconds);

    const extra: Record<string, string> = {
      DialCallStatus: dialCallStatus,
      DialCallDuration: String(bridgedSeconds),
      DialBridged: String(outcome.kind === "answered"),
    };
    if (winner) extra.DialCallSid = winner.callSid;
    if (sipCode !== undefined) extra.DialSipResponseCode = String(sipCode);
    if (winner?.sipCallId) extra.DialSipCallId = winner.sipCallId;
    if (verb.action) {
      // Twilio requests the action even when the caller hung up; it then ignores the answer.
      const next = await this.follow("dial-action", verb.action, verb.method, this.params(extra));
      return this.over ? "end" : next;
    }
    return this.over ? "end" : undefined;
  }

  private startBranch(noun: DialNoun, callerId: string): DialBranch {
    const target =
      noun.kind === "sip" ? noun.uri : noun.kind === "number" ? noun.number : `client:${noun.identity}`;
    const child = this.ctx.state.createCall({
      from: callerId,
      to: noun.kind === "sip" ? splitSipUri(noun.uri).uri : target,
      direction: "outbound-dial",
      parentCallSid: this.call.sid,
      accountSid: this.call.account_sid,
      status: "queued",
    });
    if (noun.kind === "sip") return this.sipBranch(child.sid, noun, callerId);
    if (noun.kind === "number") return this.numberBranch(child.sid, noun, callerId);
    // <Client> is not simulated: it fails like an identity with no registered client.
    this.transcript.add({ type: "note", message: `<Client>${noun.identity} is not simulated: failed` });
    this.ctx.state.updateCall(child.sid, { status: "failed" });
    return {
      callSid: child.sid,
      noun,
      target,
      result: Promise.resolve({ answered: false, status: undefined }),
      cancel() {},
      hangup() {},
      calleeEnded: new Promise<void>(() => undefined),
      dialog: undefined,
      party: undefined,
      sipCallId: undefined,
      finalStatus: undefined,
    };
  }

  private sipBranch(callSid: string, noun: Extract<DialNoun, { kind: "sip" }>, callerId: string): DialBranch {
    const sip = this.ctx.sip;
    const { uri, headers } = splitSipUri(noun.uri);
    const log = (direction: "out" | "in", label: string, status?: number): void =>
      this.transcript.add({
        type: "sip",
        callSid,
        direction,
        label,
        ...(status !== undefined ? { status } : {}),
      });
    let req: Srf.SrfRequest | undefined;
    let canceled = false;
    let calleeEndResolve: (() => void) | undefined;
    const calleeEnded = new Promise<void>((r) => {
      calleeEndResolve = r;
    });
    const branch: DialBranch = {
      callSid,
      noun,
      target: noun.uri,
      result: Promise.resolve({ answered: false, status: undefined }),
      cancel: () => {
        if (canceled) return;
        canceled = true;
        if (req && branch.finalStatus === undefined) {
          log("out", "CANCEL");
          try {
            req.cancel(() => undefined);
          } catch {
            // the INVITE transaction already ended
          }
        }
      },
      hangup: () => {
        const d = branch.dialog;
        if (!d) return;
        log("out", "BYE");
        branch.dialog = undefined;
        d.destroy({ headers: {} }, () => undefined);
      },
      calleeEnded,
      dialog: undefined,
      party: undefined,
      sipCallId: undefined,
      finalStatus: undefined,
    };
    if (!sip) {
      this.transcript.add({ type: "note", message: "no SIP stack: <Sip> fails" });
      this.ctx.state.updateCall(callSid, { status: "failed" });
      return branch;
    }
    const from = callerId.startsWith("sip:") ? callerId : `sip:${callerId}@${sip.host}:${sip.port}`;
    const opts: Srf.CreateUACOptions = {
      localSdp: this.caller.offerSdp(),
      headers: {
        From: `<${from}>`,
        "X-Twilio-CallSid": callSid,
        "X-Twilio-AccountSid": this.call.account_sid,
        "X-Twilio-ApiVersion": API_VERSION,
        ...headers,
      },
    };
    if (noun.username !== undefined && noun.password !== undefined)
      opts.auth = { username: noun.username, password: noun.password };
    const createUac = sip.srf.createUAC.bind(sip.srf) as unknown as (
      uri: string,
      opts: Srf.CreateUACOptions,
      cbs: {
        cbRequest: (err: unknown, req?: Srf.SrfRequest) => void;
        cbProvisional: (res: Srf.SrfResponse) => void;
      },
    ) => Promise<Srf.Dialog>;
    this.ctx.state.updateCall(callSid, { status: "ringing" });
    branch.result = createUac(uri, opts, {
      cbRequest: (err, r) => {
        if (err || !r) return;
        req = r;
        branch.sipCallId = r.get("Call-ID");
        log("out", "INVITE");
        if (canceled) {
          log("out", "CANCEL");
          try {
            r.cancel(() => undefined);
          } catch {
            // answered or failed meanwhile: the result handler deals with it
          }
        }
      },
      cbProvisional: (res) => {
        if (res.status > 100) log("in", `${res.status} ${res.reason}`, res.status);
      },
    }).then(
      (dialog) => {
        branch.finalStatus = 200;
        log("in", "200 OK", 200);
        if (canceled) {
          // A 2xx that crossed our CANCEL (or another leg won): Twilio hangs this one up at once.
          log("out", "BYE");
          dialog.destroy({ headers: {} }, () => undefined);
          return { answered: false as const, status: 487 };
        }
        branch.dialog = dialog;
        dialog.on("destroy", () => {
          log("in", "BYE");
          branch.dialog = undefined;
          calleeEndResolve?.();
        });
        return { answered: true as const, remoteSdp: dialog.remote.sdp };
      },
      (err: unknown) => {
        const status = sipStatusOf(err);
        branch.finalStatus = status;
        log("in", status !== undefined ? `${status}` : `error ${String(err)}`, status);
        return { answered: false as const, status };
      },
    );
    return branch;
  }

  private numberBranch(
    callSid: string,
    noun: Extract<DialNoun, { kind: "number" }>,
    callerId: string,
  ): DialBranch {
    const party = this.ctx.pstn.dial({
      number: noun.number,
      callerId,
      callSid,
      parentCallSid: this.call.sid,
    });
    const b = party.behaviour;
    const log = (event: "ringing" | "answered" | "busy" | "no-answer" | "failed" | "hangup"): void =>
      this.transcript.add({ type: "pstn", callSid, number: noun.number, event });
    let canceled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settle:
      | ((r: { answered: true; remoteSdp: string } | { answered: false; status: number | undefined }) => void)
      | undefined;
    const branch: DialBranch = {
      callSid,
      noun,
      target: noun.number,
      result: new Promise((resolve) => {
        settle = resolve;
      }),
      cancel: () => {
        if (canceled) return;
        canceled = true;
        if (timer) clearTimeout(timer);
        settle?.({ answered: false, status: 487 });
      },
      hangup: () => {
        party.end("twilio");
        log("hangup");
      },
      calleeEnded: party.ended,
      dialog: undefined,
      party,
      sipCallId: undefined,
      finalStatus: undefined,
    };
    this.ctx.state.updateCall(callSid, { status: "ringing" });
    log("ringing");
    if (b.outcome === "no-answer") return branch; // rings until Dial's timeout cancels it
    timer = setTimeout(() => {
      if (canceled) return;
      if (b.outcome === "busy") {
        log("busy");
        settle?.({ answered: false, status: 486 });
        return;
      }
      if (b.outcome === "failed") {
        log("failed");
        settle?.({ answered: false, status: 503 });
        return;
      }
      party.openMedia().then(
        (peer) => {
          if (canceled) return;
          party.answeredAt = Date.now();
          log("answered");
          settle?.({ answered: true, remoteSdp: peer.sdp({ codec: "PCMU", dtmf: true }) });
          if (b.hangupAfterMs !== undefined)
            setTimeout(() => {
              if (party.endedAt === undefined) {
                log("hangup");
                party.end("party");
              }
            }, b.hangupAfterMs);
        },
        () => settle?.({ answered: false, status: 503 }),
      );
    }, b.ringMs);
    return branch;
  }

  /** Rings every branch; the first to answer wins and the others are canceled. */
  private async fork(
    branches: DialBranch[],
    timeoutMs: number,
  ): Promise<
    | { kind: "answered"; branch: DialBranch; remoteSdp: string }
    | { kind: "caller-gone" }
    | { kind: "failed"; status: "busy" | "no-answer" | "failed"; branch: DialBranch | undefined }
  > {
    type Settled = { branch: DialBranch; r: Awaited<DialBranch["result"]> };
    const pending = new Set(branches);
    const failures: Settled[] = [];
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      return await this.ring(
        pending,
        failures,
        timeout,
        () => timedOut,
        () => {
          timedOut = true;
        },
      );
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private async ring(
    pending: Set<DialBranch>,
    failures: { branch: DialBranch; r: Awaited<DialBranch["result"]> }[],
    timeout: Promise<"timeout">,
    timedOut: () => boolean,
    markTimedOut: () => void,
  ): Promise<
    | { kind: "answered"; branch: DialBranch; remoteSdp: string }
    | { kind: "caller-gone" }
    | { kind: "failed"; status: "busy" | "no-answer" | "failed"; branch: DialBranch | undefined }
  > {
    type Settled = { branch: DialBranch; r: Awaited<DialBranch["result"]> };
    const callerGone = Promise.race([this.caller.hangupSignal, this.apiEndSignal, this.redirectSignal]).then(
      () => "caller-gone" as const,
    );
    while (pending.size > 0) {
      const next = await Promise.race([
        ...[...pending].map((branch) => branch.result.then((r): Settled => ({ branch, r }))),
        timedOut() ? new Promise<never>(() => undefined) : timeout,
        callerGone,
      ]);
      if (next === "timeout") {
        markTimedOut();
        for (const b of pending) b.cancel();
        continue;
      }
      if (next === "caller-gone") {
        for (const b of pending) b.cancel();
        await Promise.allSettled([...pending].map((b) => b.result));
        for (const b of pending) this.ctx.state.updateCall(b.callSid, { status: "canceled" });
        return { kind: "caller-gone" };
      }
      pending.delete(next.branch);
      if (next.r.answered) {
        for (const b of pending) b.cancel();
        for (const b of pending) {
          // a leg that answers after it was canceled is hung up by its own handler
          void b.result.then(() => this.ctx.state.updateCall(b.callSid, { status: "canceled" }));
        }
        this.ctx.state.updateCall(next.branch.callSid, { status: "in-progress" });
        return { kind: "answered", branch: next.branch, remoteSdp: next.r.remoteSdp };
      }
      failures.push(next);
    }
    const code = (s: Settled): number | undefined => (s.r.answered ? undefined : s.r.status);
    const busy = failures.find((f) => code(f) === 486 || code(f) === 600);
    const noAnswer = failures.find((f) => {
      const c = code(f);
      return timedOut() || c === 480 || c === 408 || c === 487;
    });
    const pick = busy ?? noAnswer ?? failures[0];
    const status = busy ? "busy" : noAnswer ? "no-answer" : "failed";
    for (const f of failures)
      this.ctx.state.updateCall(f.branch.callSid, { status: f === busy ? "busy" : status });
    return { kind: "failed", status, branch: pick?.branch };
  }

  /** The answered leg is connected to the caller until one of them hangs up or the time limit passes. */
  private async bridge(branch: DialBranch, remoteSdp: string, verb: DialVerb): Promise<{ seconds: number }> {
    if (!this.caller.answered) await this.answer(remoteSdp);
    else await this.caller.connectMedia(remoteSdp);
    if (branch.party) branch.party.bridgeTo(this.caller.offerSdp());
    const started = Date.now();
    let endResolve: ((by: "caller" | "callee" | "time-limit" | "api") => void) | undefined;
    const ended = new Promise<"caller" | "callee" | "time-limit" | "api">((r) => {
      endResolve = r;
    });
    const bridge: Bridge = {
      callSid: branch.callSid,
      kind: branch.noun.kind === "sip" ? "sip" : "number",
      target: branch.target,
      dialog: branch.dialog,
      party: branch.party,
      ended,
    };
    this.bridges.push(bridge);
    this.transcript.add({ type: "bridged", callSid: branch.callSid });
    for (const w of this.bridgeWaiters.splice(0)) w(bridge);
    const limitMs = Math.min(verb.timeLimit * 1000, this.ctx.options.maxBridgeMs);
    let limitTimer: ReturnType<typeof setTimeout> | undefined;
    const by = await Promise.race([
      this.caller.hangupSignal.then(() => "caller" as const),
      this.apiEndSignal.then(() => "api" as const),
      this.redirectSignal.then(() => "api" as const),
      branch.calleeEnded.then(() => "callee" as const),
      new Promise<"time-limit">((r) => {
        limitTimer = setTimeout(() => r("time-limit"), limitMs);
      }),
    ]);
    if (limitTimer) clearTimeout(limitTimer);
    if (by !== "callee") branch.hangup();
    const seconds = Math.round((Date.now() - started) / 1000);
    this.ctx.state.updateCall(branch.callSid, { status: "completed", durationSeconds: seconds });
    endResolve?.(by);
    return { seconds };
  }

  private async childStatusCallback(branch: DialBranch, seconds: number): Promise<void> {
    const url = branch.noun.kind === "client" ? undefined : branch.noun.statusCallback;
    if (!url) return;
    const child = this.ctx.state.getCall(branch.callSid);
    await this.request("dial-status-callback", url, "POST", {
      AccountSid: this.call.account_sid,
      ApiVersion: API_VERSION,
      CallSid: branch.callSid,
      ParentCallSid: this.call.sid,
      CallStatus: child?.status ?? "completed",
      CallDuration: String(seconds),
      Direction: "outbound-dial",
      From: child?.from ?? "",
      To: child?.to ?? "",
    });
  }

  // ——————————————————————————————————————— end ———————————————————————————————————————

  private async finish(): Promise<CallStatus> {
    if (!this.caller.hungUp && !this.finalStatus) await this.caller.hangup();
    let status: CallStatus = this.finalStatus ?? (this.answeredAt !== undefined ? "completed" : "canceled");
    if (this.answeredAt === undefined && !this.finalStatus && this.caller.hungUp) status = "canceled";
    const seconds =
      this.answeredAt !== undefined
        ? Math.round((Date.now() - this.answeredAt + this.simulatedMs) / 1000)
        : 0;
    this.ctx.state.updateCall(this.call.sid, { status, durationSeconds: seconds });
    if (this.statusCallback) {
      await this.request("status-callback", this.statusCallback.url, this.statusCallback.method, {
        ...this.params(),
        CallStatus: status,
        CallDuration: String(seconds),
        Duration: String(Math.ceil(seconds / 60)),
        Timestamp: new Date().toUTCString().replace("GMT", "+0000"),
        CallbackSource: "call-progress-events",
        SequenceNumber: "0",
      });
    }
    return status;
  }
}
