/**
 * The call driver: it plays Twilio for calls to the account's numbers. `placeInboundCall` is someone on
 * the phone network calling one of the numbers: the call is created in the simulator's state (CA…), the
 * number's Voice URL gets Twilio's signed webhook (falling back to the Voice Fallback URL), and the TwiML
 * it answers is executed (session.ts) — with real SIP and RTP towards the relay for <Dial><Sip>. The
 * caller's own voice is an RtpPeer, so a test can talk to the phone that answered and hear it back.
 *
 *   const call = driver.placeInboundCall({ from: "+15557654321", to: "+15551230001" });
 *   const bridge = await call.nextBridge();        // the phone answered
 *   const heard = await call.talk(1000, 2000);     // caller plays 1 kHz, hears the phone
 *   await call.hangup();                           // caller hangs up
 *   const result = await call.done;                // status, duration, transcript
 */
import { RtpPeer, sdpMediaTarget } from "../../../relay/src/testing/rtp-peer.ts";
import type { CallInstructions, CallResource, CallStatus, SimState } from "../state.ts";
import { PstnNetwork, type PstnParty } from "./pstn.ts";
import {
  type Bridge,
  type CallerLeg,
  type CallerScript,
  CallSession,
  type SessionOptions,
} from "./session.ts";
import type { SimSip } from "./sip.ts";
import { Transcript } from "./transcript.ts";
import { callWebhook, TWILIO_WEBHOOK_TIMEOUT_MS } from "./webhook.ts";

export interface InboundCallOptions extends CallerScript {
  /** The caller's number (E.164), or "anonymous" / "+266696687" as Twilio shows withheld numbers. */
  from: string;
  /** One of the account's numbers. */
  to: string;
  /** CNAM (Twilio sends CallerName when caller-ID lookup is on). */
  callerName?: string;
  /** STIR/SHAKEN attestation, e.g. "TN-Validation-Passed-A". */
  stirVerstat?: string;
  /** Marketplace add-on results (the AddOns parameter, a JSON document). */
  addOns?: string | Record<string, unknown>;
  forwardedFrom?: string;
  /** Geographic fields Twilio derives from the numbers (empty when unknown). */
  geo?: Partial<
    Record<
      "FromCity" | "FromState" | "FromZip" | "FromCountry" | "ToCity" | "ToState" | "ToZip" | "ToCountry",
      string
    >
  >;
  /** More parameters to send (Twilio may add parameters at any time). */
  extraParams?: Record<string, string>;
}

export interface InboundCallResult {
  callSid: string;
  status: CallStatus;
  durationSeconds: number;
  transcript: Transcript;
  call: CallResource;
}

export interface CallDriverOptions extends Partial<SessionOptions> {
  /** The PSTN behind the simulated Twilio (shared with the SIP Domain). */
  pstn?: PstnNetwork;
}

/** The simulated PSTN caller of an inbound call. */
class PstnCaller implements CallerLeg {
  readonly kind = "pstn" as const;
  answered = false;
  hungUp = false;
  endedBy: "caller" | "twilio" | undefined;
  readonly hangupSignal: Promise<void>;
  private resolveHangup: (() => void) | undefined;
  /** Where the caller's audio goes once bridged. */
  remoteSdp: string | undefined;

  constructor(readonly peer: RtpPeer) {
    this.hangupSignal = new Promise<void>((r) => {
      this.resolveHangup = r;
    });
  }

  async answer(mediaSdp?: string): Promise<void> {
    this.answered = true;
    if (mediaSdp) this.remoteSdp = mediaSdp;
  }

  async connectMedia(mediaSdp: string): Promise<void> {
    this.remoteSdp = mediaSdp;
  }

  offerSdp(): string {
    return this.peer.sdp({ codec: "PCMU", dtmf: true });
  }

  async reject(): Promise<void> {
    this.end("twilio");
  }

  async hangup(): Promise<void> {
    this.end("twilio");
  }

  async callerHangsUp(): Promise<void> {
    this.end("caller");
  }

  private end(by: "caller" | "twilio"): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.endedBy = by;
    this.resolveHangup?.();
  }
}

/**
 * The answering party of a call created over REST (Calls.json): from Twilio's side it is the call's
 * only leg, already answered when the TwiML runs; its media is the PSTN party's RtpPeer.
 */
class PartyLeg implements CallerLeg {
  readonly kind = "pstn" as const;
  readonly answered = true;
  hungUp = false;
  endedBy: "caller" | "twilio" | undefined;
  readonly hangupSignal: Promise<void>;

  constructor(
    private readonly party: PstnParty,
    private readonly peer: RtpPeer,
  ) {
    this.hangupSignal = party.ended.then(() => {
      this.hungUp = true;
      this.endedBy ??= "caller";
    });
  }

  async answer(mediaSdp?: string): Promise<void> {
    if (mediaSdp) this.party.bridgeTo(mediaSdp);
  }

  async connectMedia(mediaSdp: string): Promise<void> {
    this.party.bridgeTo(mediaSdp);
  }

  offerSdp(): string {
    return this.peer.sdp({ codec: "PCMU", dtmf: true });
  }

  async reject(): Promise<void> {
    await this.hangup();
  }

  async hangup(): Promise<void> {
    if (this.hungUp) return;
    this.endedBy = "twilio";
    this.party.end("twilio");
    await this.hangupSignal;
  }

  async callerHangsUp(): Promise<void> {
    this.party.end("party");
    await this.hangupSignal;
  }
}

/** One inbound call in progress. */
export class InboundCall {
  /** Resolves when the call is over and its status callback was sent. */
  readonly done: Promise<InboundCallResult>;

  constructor(
    readonly callSid: string,
    private readonly session: CallSession,
    private readonly caller: PstnCaller,
    done: Promise<InboundCallResult>,
  ) {
    this.done = done;
  }

  get transcript(): Transcript {
    return this.session.transcript;
  }

  /** The next dialled leg that answers (the phone picking up). */
  nextBridge(timeoutMs?: number): Promise<Bridge> {
    const existing = this.session.bridges.find((b) => !this.seen.has(b));
    if (existing) {
      this.seen.add(existing);
      return Promise.resolve(existing);
    }
    return this.session.nextBridge(timeoutMs).then((b) => {
      this.seen.add(b);
      return b;
    });
  }

  private readonly seen = new Set<Bridge>();

  /** The caller plays `hz` for `ms` towards the bridged leg; returns what the caller heard meanwhile. */
  async talk(
    hz: number,
    ms: number,
  ): Promise<{ sent: number; heardHz: number | undefined; heardPackets: number }> {
    const remote = this.caller.remoteSdp;
    if (!remote) throw new Error("the call is not bridged to anyone");
    this.caller.peer.reset();
    const sent = await this.caller.peer.sendTone(hz, ms, sdpMediaTarget(remote));
    const r = this.caller.peer.received();
    return { sent, heardHz: r.frequency, heardPackets: r.audioPackets };
  }

  /** The caller hangs up now. */
  async hangup(): Promise<void> {
    await this.caller.callerHangsUp();
  }

  /** `done`, then every callback scheduled after the call (transcriptions) sent. */
  async settled(): Promise<InboundCallResult> {
    const r = await this.done;
    await this.session.settled();
    return r;
  }
}

export class CallDriver {
  readonly pstn: PstnNetwork;
  private readonly options: SessionOptions;
  private readonly live = new Map<string, CallSession>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly onEndedByApi = (call: CallResource): void => {
    this.live.get(call.sid)?.endByApi();
  };
  private readonly onRedirected = (call: CallResource, instructions: CallInstructions): void => {
    this.live.get(call.sid)?.redirect(instructions);
  };
  private readonly onCreated = (call: CallResource, instructions: CallInstructions): void => {
    const job = this.placeOutboundCall(call, instructions).catch(() => undefined);
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
  };
  /** Outbound calls created over REST, by CallSid (their results, for tests). */
  readonly outbound = new Map<string, Promise<InboundCallResult>>();

  constructor(
    readonly state: SimState,
    private readonly sip: SimSip | undefined,
    options: CallDriverOptions = {},
  ) {
    this.pstn = options.pstn ?? new PstnNetwork();
    this.options = {
      webhookTimeoutMs: options.webhookTimeoutMs ?? TWILIO_WEBHOOK_TIMEOUT_MS,
      transcriptionDelayMs: options.transcriptionDelayMs ?? 200,
      maxBridgeMs: options.maxBridgeMs ?? 120_000,
    };
    state.events.on("call-ended-by-api", this.onEndedByApi);
    state.events.on("call-redirected", this.onRedirected);
    state.events.on("call-created", this.onCreated);
  }

  /** Session options the SIP Domain shares. */
  get sessionOptions(): SessionOptions {
    return this.options;
  }

  /**
   * Someone calls one of the account's numbers; resolves once the call is under way (its first webhook
   * sent or about to be). Throws when `to` is not a number of the account.
   */
  async placeInboundCall(opts: InboundCallOptions): Promise<InboundCall> {
    const number = this.state.incomingNumberByPhone(opts.to);
    if (!number) throw new Error(`${opts.to} is not one of the simulated account's numbers`);
    const call = this.state.createCall({
      from: opts.from,
      to: opts.to,
      direction: "inbound",
      accountSid: number.account_sid,
      phoneNumberSid: number.sid,
      callerName: opts.callerName ?? null,
      forwardedFrom: opts.forwardedFrom ?? null,
    });
    const geo = opts.geo ?? {};
    const params: Record<string, string> = {
      From: opts.from,
      To: opts.to,
      Caller: opts.from,
      Called: opts.to,
      FromCity: geo.FromCity ?? "",
      FromState: geo.FromState ?? "",
      FromZip: geo.FromZip ?? "",
      FromCountry: geo.FromCountry ?? (opts.from.startsWith("+1") ? "US" : ""),
      CallerCity: geo.FromCity ?? "",
      CallerState: geo.FromState ?? "",
      CallerZip: geo.FromZip ?? "",
      CallerCountry: geo.FromCountry ?? (opts.from.startsWith("+1") ? "US" : ""),
      ToCity: geo.ToCity ?? "",
      ToState: geo.ToState ?? "",
      ToZip: geo.ToZip ?? "",
      ToCountry: geo.ToCountry ?? (opts.to.startsWith("+1") ? "US" : ""),
      CalledCity: geo.ToCity ?? "",
      CalledState: geo.ToState ?? "",
      CalledZip: geo.ToZip ?? "",
      CalledCountry: geo.ToCountry ?? (opts.to.startsWith("+1") ? "US" : ""),
    };
    if (opts.callerName !== undefined) params.CallerName = opts.callerName;
    if (opts.stirVerstat !== undefined) params.StirVerstat = opts.stirVerstat;
    if (opts.addOns !== undefined)
      params.AddOns = typeof opts.addOns === "string" ? opts.addOns : JSON.stringify(opts.addOns);
    if (opts.forwardedFrom !== undefined) params.ForwardedFrom = opts.forwardedFrom;
    Object.assign(params, opts.extraParams ?? {});

    const token = this.state.tokenOf(call.account_sid) ?? this.state.authToken;
    // The caller's media is open before the first webhook, so a <Dial> can offer it at once.
    const peer = await RtpPeer.open();
    const caller = new PstnCaller(peer);
    const session = new CallSession(
      { state: this.state, sip: this.sip, pstn: this.pstn, authToken: token, options: this.options },
      call,
      caller,
      params,
      opts,
      number.status_callback
        ? { url: number.status_callback, method: number.status_callback_method === "GET" ? "GET" : "POST" }
        : undefined,
    );
    this.live.set(call.sid, session);
    const done = session
      .run({
        url: number.voice_url,
        method: number.voice_method === "GET" ? "GET" : "POST",
        fallbackUrl: number.voice_fallback_url,
        fallbackMethod: number.voice_fallback_method === "GET" ? "GET" : "POST",
      })
      .then((status): InboundCallResult => {
        const final = this.state.getCall(call.sid) ?? call;
        return {
          callSid: call.sid,
          status,
          durationSeconds: Number(final.duration ?? 0),
          transcript: session.transcript,
          call: final,
        };
      })
      .finally(() => {
        this.live.delete(call.sid);
        peer.close();
      });
    const tracked = done.then(
      () => session.settled(),
      () => session.settled(),
    );
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
    return new InboundCall(call.sid, session, caller, done);
  }

  /**
   * A call created over REST (Calls.json) to a phone number: the simulated PSTN party rings, then the
   * call's Url (or Twiml) runs with Direction outbound-api once it answers; busy, no answer (the
   * call's Timeout, default 60 s) and failures end it with that status and its status callback.
   */
  private placeOutboundCall(call: CallResource, instructions: CallInstructions): Promise<InboundCallResult> {
    const result = this.runOutbound(call, instructions);
    this.outbound.set(call.sid, result);
    return result;
  }

  private async runOutbound(call: CallResource, instructions: CallInstructions): Promise<InboundCallResult> {
    const token = this.state.tokenOf(call.account_sid) ?? this.state.authToken;
    const params: Record<string, string> = {
      From: call.from,
      To: call.to,
      Caller: call.from,
      Called: call.to,
      Direction: "outbound-api",
    };
    const status = instructions.statusCallback
      ? {
          url: instructions.statusCallback,
          method: (instructions.statusCallbackMethod?.toUpperCase() === "GET" ? "GET" : "POST") as
            | "GET"
            | "POST",
        }
      : undefined;
    const party = this.pstn.dial({
      number: call.to,
      callerId: call.from,
      callSid: call.sid,
      parentCallSid: "",
    });
    const b = party.behaviour;
    this.state.updateCall(call.sid, { status: "ringing" });
    const ringLimitMs = (instructions.timeoutSeconds ?? 60) * 1000;
    const outcome: CallStatus | "answer" =
      b.outcome === "answer"
        ? b.ringMs < ringLimitMs
          ? "answer"
          : "no-answer"
        : b.outcome === "busy"
          ? "busy"
          : b.outcome === "failed"
            ? "failed"
            : "no-answer";
    await new Promise((r) => setTimeout(r, outcome === "no-answer" ? ringLimitMs : b.ringMs));
    if (outcome !== "answer") {
      this.state.updateCall(call.sid, { status: outcome });
      const transcript = new Transcript();
      transcript.add({
        type: "pstn",
        callSid: call.sid,
        number: call.to,
        event: outcome === "busy" ? "busy" : outcome === "failed" ? "failed" : "no-answer",
      });
      if (status)
        await callWebhook(
          token,
          {
            url: status.url,
            method: status.method,
            params: {
              AccountSid: call.account_sid,
              ApiVersion: "2010-04-01",
              CallSid: call.sid,
              CallStatus: outcome,
              CallDuration: "0",
              ...params,
            },
            timeoutMs: this.options.webhookTimeoutMs,
          },
          this.state.webhooks,
        );
      return { callSid: call.sid, status: outcome, durationSeconds: 0, transcript, call };
    }
    const peer = await party.openMedia();
    party.answeredAt = Date.now();
    if (b.hangupAfterMs !== undefined) setTimeout(() => party.end("party"), b.hangupAfterMs);
    this.state.updateCall(call.sid, { status: "in-progress" });
    const leg = new PartyLeg(party, peer);
    const session = new CallSession(
      { state: this.state, sip: this.sip, pstn: this.pstn, authToken: token, options: this.options },
      call,
      leg,
      params,
      {},
      status,
    );
    this.live.set(call.sid, session);
    try {
      const final = await session.run({
        url: instructions.url ?? null,
        method: instructions.method?.toUpperCase() === "GET" ? "GET" : "POST",
        fallbackUrl: instructions.fallbackUrl ?? null,
        fallbackMethod: "POST",
        ...(instructions.twiml !== undefined ? { twiml: instructions.twiml } : {}),
      });
      const stored = this.state.getCall(call.sid) ?? call;
      return {
        callSid: call.sid,
        status: final,
        durationSeconds: Number(stored.duration ?? 0),
        transcript: session.transcript,
        call: stored,
      };
    } finally {
      this.live.delete(call.sid);
    }
  }

  async close(): Promise<void> {
    this.state.events.off("call-ended-by-api", this.onEndedByApi);
    this.state.events.off("call-redirected", this.onRedirected);
    this.state.events.off("call-created", this.onCreated);
    // Calls still running end as if hung up over REST; wait for them and their late callbacks.
    for (const s of this.live.values()) s.endByApi();
    await Promise.allSettled([...this.running]);
    this.pstn.close();
  }
}
