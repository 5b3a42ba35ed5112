/**
 * The SIP Domain side of the simulated Twilio, for calls a phone makes through the relay: an INVITE to
 * `sip:+1…@<name>.sip.twilio.com` (the relay sends it to the simulator's SIP port as its outbound proxy)
 * is challenged with 407 (realm sip.twilio.com, MD5, qop=auth); the answer is checked against the
 * credential lists mapped to that domain in the state (an unknown domain or wrong credentials: 403).
 * Then, like Twilio, 180 Ringing, the Domain's Voice URL gets the signed webhook (From sip:user@domain,
 * To sip:+1…@domain, SipDomain, SipDomainSid, SipCallId, SipUsername, SipHeader_X-… for each X- header)
 * — a Domain without a Voice URL answers 404 — and its TwiML runs in the same executor as inbound calls:
 * `<Dial callerId><Number>` reaches a simulated PSTN party with real RTP through Twilio's media anchor.
 */
import { randomBytes } from "node:crypto";
import { computeDigestResponse, computeHa1 } from "@gosip/drizzle";
import type Srf from "drachtio-srf";
import type { CallInstructions, CallResource, SimState } from "../state.ts";
import { MediaAnchor } from "./media.ts";
import type { PstnNetwork } from "./pstn.ts";
import { type CallerLeg, CallSession, type SessionOptions } from "./session.ts";
import { digestParams, type SimSip } from "./sip.ts";
import type { Transcript } from "./transcript.ts";

export const TWILIO_SIP_REALM = "sip.twilio.com";

/** One call that reached a SIP Domain. */
export interface DomainCall {
  /** The request URI of the INVITE. */
  requestUri: string;
  domain: string;
  /** The authenticated username (the relay's credentials). */
  username: string;
  /** Every X- header of the INVITE, by its name as sent. */
  xHeaders: Record<string, string>;
  callSid: string;
  transcript: Transcript;
  /** Resolves with the call's final status once its status callback was sent. */
  done: Promise<string>;
}

/** What the Domain refused (for assertions on 403/404). */
export interface DomainRefusal {
  requestUri: string;
  status: number;
  reason: string;
}

/** The raw header lines of a SIP message, names as sent (srf lowercases its parsed copy). */
function rawHeaders(raw: string): [string, string][] {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? "";
  const out: [string, string][] = [];
  for (const line of head.split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) out.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return out;
}

/**
 * Why Twilio would refuse an offer's media (TWILIO.md): only G.711 is generally available, and SRTP
 * without TLS signalling (or the reverse) is error 32209. Undefined when the offer is acceptable.
 */
export function mediaProblem(sdp: string): string | undefined {
  const m = /^m=audio \d+ (\S+) ([\d ]+)/m.exec(sdp);
  if (!m?.[1] || !m[2]) return "Not Acceptable Here (no audio offered)";
  if (/SAVP/.test(m[1])) return "Not Acceptable Here (SRTP without TLS: Twilio error 32209)";
  const pts = m[2].trim().split(/\s+/);
  if (!pts.includes("0") && !pts.includes("8")) return "Not Acceptable Here (only PCMU/PCMA)";
  return undefined;
}

/** The relay's INVITE into the Domain as the executor's caller. */
class SipCaller implements CallerLeg {
  readonly kind = "sip" as const;
  answered = false;
  hungUp = false;
  endedBy: "caller" | "twilio" | undefined;
  readonly hangupSignal: Promise<void>;
  private resolveHangup: (() => void) | undefined;
  private dialog: Srf.Dialog | undefined;
  private failure: number | undefined;

  constructor(
    private readonly srf: Srf,
    private readonly req: Srf.SrfRequest,
    private readonly res: Srf.SrfResponse,
    private readonly anchor: MediaAnchor,
  ) {
    this.hangupSignal = new Promise<void>((r) => {
      this.resolveHangup = r;
    });
    anchor.setCaller(req.body);
    // A CANCEL before Twilio answers: the caller gave up.
    req.on("cancel", () => this.end("caller"));
  }

  async answer(mediaSdp?: string): Promise<void> {
    if (this.answered || this.hungUp) return;
    if (mediaSdp) this.anchor.setCallee(mediaSdp);
    this.answered = true;
    const dialog = await this.srf.createUAS(this.req, this.res, { localSdp: this.anchor.callerSdp() });
    this.dialog = dialog;
    dialog.on("destroy", () => {
      this.dialog = undefined;
      this.end("caller");
    });
  }

  async connectMedia(mediaSdp: string): Promise<void> {
    this.anchor.setCallee(mediaSdp);
  }

  offerSdp(): string {
    return this.anchor.calleeSdp();
  }

  dialFailed(status: "busy" | "no-answer" | "failed" | "canceled"): void {
    this.failure = status === "busy" ? 486 : status === "no-answer" ? 480 : 503;
  }

  async reject(reason: "rejected" | "busy"): Promise<void> {
    this.sendFinal(reason === "busy" ? 486 : 603);
    this.end("twilio");
  }

  async hangup(): Promise<void> {
    if (this.hungUp) return;
    const dialog = this.dialog;
    if (dialog) {
      this.dialog = undefined;
      dialog.destroy({ headers: {} }, () => undefined);
    } else if (!this.answered) {
      // Never answered (a <Dial answerOnBridge> that found nobody): the SIP failure that matches.
      this.sendFinal(this.failure ?? 480);
    }
    this.end("twilio");
  }

  async callerHangsUp(): Promise<void> {
    const dialog = this.dialog;
    if (dialog) {
      this.dialog = undefined;
      dialog.destroy({ headers: {} }, () => undefined);
    }
    this.end("caller");
  }

  private sendFinal(status: number): void {
    try {
      if (!this.res.finalResponseSent) this.res.send(status);
    } catch {
      // the transaction is gone (the caller canceled)
    }
  }

  private end(by: "caller" | "twilio"): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.endedBy = by;
    this.anchor.clearCallee();
    this.resolveHangup?.();
  }
}

export class SipDomainSide {
  readonly calls: DomainCall[] = [];
  readonly refusals: DomainRefusal[] = [];
  private readonly nonces = new Set<string>();
  private waiters: ((c: DomainCall) => void)[] = [];
  private readonly anchors: MediaAnchor[] = [];
  private readonly sessions = new Map<string, CallSession>();
  private readonly onEndedByApi = (call: CallResource): void => {
    this.sessions.get(call.sid)?.endByApi();
  };
  private readonly onRedirected = (call: CallResource, instructions: CallInstructions): void => {
    this.sessions.get(call.sid)?.redirect(instructions);
  };

  constructor(
    private readonly state: SimState,
    private readonly sip: SimSip,
    private readonly pstn: PstnNetwork,
    private readonly options: SessionOptions,
  ) {
    state.events.on("call-ended-by-api", this.onEndedByApi);
    state.events.on("call-redirected", this.onRedirected);
    sip.onInvite((req, res) => {
      this.onInvite(req, res).catch(() => {
        try {
          if (!res.finalResponseSent) res.send(500);
        } catch {
          // nothing more to say
        }
      });
    });
  }

  /** The next call that passes the Domain's authentication. */
  nextCall(timeoutMs = 15_000): Promise<DomainCall> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no call reached the SIP Domain")), timeoutMs);
      this.waiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  private refuse(req: Srf.SrfRequest, res: Srf.SrfResponse, status: number, reason: string): void {
    this.refusals.push({ requestUri: req.uri, status, reason });
    res.send(status, reason, {});
  }

  private async onInvite(req: Srf.SrfRequest, res: Srf.SrfResponse): Promise<void> {
    const m = /^sips?:([^@;?]+)@([^;:?>]+)/i.exec(req.uri);
    const user = m?.[1] ? decodeURIComponent(m[1]) : "";
    const host = m?.[2] ?? "";
    const auth = req.get("Proxy-Authorization");
    if (!auth) {
      const nonce = randomBytes(16).toString("hex");
      this.nonces.add(nonce);
      res.send(407, "Proxy Authentication Required", {
        headers: {
          "Proxy-Authenticate": `Digest realm="${TWILIO_SIP_REALM}", nonce="${nonce}", algorithm=MD5, qop="auth"`,
        },
      });
      return;
    }
    const domain = this.state.sipDomainByName(host);
    if (!domain) {
      this.refuse(req, res, 403, "Forbidden");
      return;
    }
    const p = digestParams(auth);
    const cred = this.state.credentialsForDomain(domain.sid).find((c) => c.username === p.username);
    const nonce = p.nonce ?? "";
    const expected = cred
      ? computeDigestResponse({
          ha1: computeHa1(cred.username, TWILIO_SIP_REALM, cred.password, "MD5"),
          algorithm: "MD5",
          method: "INVITE",
          uri: p.uri ?? "",
          nonce,
          ...(p.qop === "auth" ? { qop: "auth" as const, nc: p.nc ?? "", cnonce: p.cnonce ?? "" } : {}),
        })
      : undefined;
    if (!cred || !this.nonces.has(nonce) || p.realm !== TWILIO_SIP_REALM || p.response !== expected) {
      this.refuse(req, res, 403, "Forbidden");
      return;
    }
    this.nonces.delete(nonce);
    if (!domain.voice_url) {
      this.refuse(req, res, 404, "Not Found");
      return;
    }
    const media = mediaProblem(req.body ?? "");
    if (media) {
      this.refuse(req, res, 488, media);
      return;
    }
    res.send(180, "Ringing", {});

    const fromUser = /sips?:([^@;>]+)@/i.exec(req.get("From"))?.[1] ?? p.username ?? "";
    const from = `sip:${fromUser}@${domain.domain_name}`;
    const to = `sip:${user}@${domain.domain_name}`;
    const call = this.state.createCall({
      from,
      to,
      direction: "inbound",
      accountSid: domain.account_sid,
    });
    const xHeaders: Record<string, string> = {};
    for (const [name, value] of rawHeaders(req.msg?.raw ?? req.raw ?? ""))
      if (/^x-/i.test(name)) xHeaders[name] = value;
    const params: Record<string, string> = {
      From: from,
      To: to,
      Caller: from,
      Called: to,
      SipDomain: domain.domain_name,
      SipDomainSid: domain.sid,
      SipCallId: req.get("Call-ID"),
      SipSourceIp: req.source_address,
      SipUsername: cred.username,
    };
    for (const [name, value] of Object.entries(xHeaders)) params[`SipHeader_${name}`] = value;

    const anchor = await MediaAnchor.open();
    this.anchors.push(anchor);
    const caller = new SipCaller(this.sip.srf, req, res, anchor);
    const session = new CallSession(
      {
        state: this.state,
        sip: this.sip,
        pstn: this.pstn,
        authToken: this.state.tokenOf(domain.account_sid) ?? this.state.authToken,
        options: this.options,
      },
      call,
      caller,
      params,
      {},
      domain.voice_status_callback_url
        ? {
            url: domain.voice_status_callback_url,
            method: domain.voice_status_callback_method === "GET" ? "GET" : "POST",
          }
        : undefined,
    );
    this.sessions.set(call.sid, session);
    const done = session
      .run({
        url: domain.voice_url,
        method: domain.voice_method === "GET" ? "GET" : "POST",
        fallbackUrl: domain.voice_fallback_url,
        fallbackMethod: domain.voice_fallback_method === "GET" ? "GET" : "POST",
      })
      .finally(() => {
        this.sessions.delete(call.sid);
        anchor.close();
      });
    const entry: DomainCall = {
      requestUri: req.uri,
      domain: domain.domain_name,
      username: cred.username,
      xHeaders,
      callSid: call.sid,
      transcript: session.transcript,
      done,
    };
    this.calls.push(entry);
    for (const w of this.waiters.splice(0)) w(entry);
  }

  async close(): Promise<void> {
    this.state.events.off("call-ended-by-api", this.onEndedByApi);
    this.state.events.off("call-redirected", this.onRedirected);
    for (const s of this.sessions.values()) s.endByApi();
    await Promise.allSettled([...this.calls.map((c) => c.done)]);
    for (const a of this.anchors) a.close();
  }
}
