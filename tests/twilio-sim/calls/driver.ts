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
import { PstnNetwork } from "./pstn.ts";
import {
  type Bridge,
  type CallerLeg,
  type CallerScript,
  CallSession,
  type SessionOptions,
} from "./session.ts";
import type { SimSip } from "./sip.ts";
import type { Transcript } from "./transcript.ts";
import { TWILIO_WEBHOOK_TIMEOUT_MS } from "./webhook.ts";

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

  async close(): Promise<void> {
    this.state.events.off("call-ended-by-api", this.onEndedByApi);
    this.state.events.off("call-redirected", this.onRedirected);
    // Calls still running end as if hung up over REST; wait for them and their late callbacks.
    for (const s of this.live.values()) s.endByApi();
    await Promise.allSettled([...this.running]);
    this.pstn.close();
  }
}
