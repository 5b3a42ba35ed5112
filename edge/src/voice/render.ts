/**
 * A routing decision as TwiML (SPEC §2, TWILIO.md): ringing is `<Dial><Sip>` to the
 * relay's public SIP URI with the relay's inbound digest credentials, one `<Sip>` per
 * device (Twilio allows ten), each carrying the parent CallSid as the URI header
 * X-GoSIP-CallSid so the relay's CDR events merge into this call's CDR. Sequential
 * ringing dials one device per step and chains through the Dial action. Every path
 * that ends in voicemail uses the voicemail feature's TwiML; nothing ends in silence.
 * All markup goes through twiml/builder.ts, so caller names and labels are escaped.
 */
import type { AudioSource } from "@gosip/drizzle";
import type { EdgeDeps } from "../platform/types.ts";
import type { RingTarget, RoutingDecision } from "../routing/types.ts";
import { el, type TwimlElement } from "../twiml/builder.ts";
import { audioSourceVerb } from "../voicemail/playable.ts";
import { voicemailTwiml } from "../voicemail/twiml.ts";
import { type DialStep, dialResultUrl } from "./urls.ts";

/** Twilio's limit of `<Sip>` nouns in one `<Dial>`. */
export const MAX_SIP_NOUNS = 10;

export const NOT_IN_SERVICE = "The number you have dialled is not in service.";
export const UNKNOWN_NUMBER =
  "Sorry, this number is not set up to take calls at the moment. Please try again later. Goodbye.";
export const OUTBOUND_REFUSED = "This call cannot be placed from your phone. Goodbye.";
export const OUTBOUND_UNAVAILABLE = "Outgoing calls are not set up yet. Goodbye.";

/** URI header that tells the relay which Twilio call an INVITE belongs to. */
export const CALL_SID_URI_HEADER = "X-GoSIP-CallSid";

/** Where and how Twilio reaches the relay (settings `relay`). */
export interface RelayTarget {
  /** `sip` or `sips`. */
  scheme: string;
  /** host[:port] of the relay's public SIP URI. */
  hostPort: string;
  /** URI parameters of the public URI (e.g. `;transport=tcp`), kept as configured. */
  params: string;
  username: string;
  password: string;
}

/** The relay target from the `relay` settings, or null when any part is missing. */
export function relayTargetOf(setting: {
  publicSipUri?: string | undefined;
  inboundUsername?: string | undefined;
  inboundPassword?: string | undefined;
}): RelayTarget | null {
  const uri = setting.publicSipUri;
  if (!uri || !setting.inboundUsername || !setting.inboundPassword) return null;
  const m = /^(sips?):(?:[^@]*@)?([^;?]+)([^?]*)/.exec(uri);
  if (!m?.[1] || !m[2]) return null;
  return {
    scheme: m[1],
    hostPort: m[2],
    params: m[3] ?? "",
    username: setting.inboundUsername,
    password: setting.inboundPassword,
  };
}

/** `sip:<extension>@<relay>;params?X-GoSIP-CallSid=<sid>`. */
export function relaySipUri(relay: RelayTarget, extension: string, callSid: string): string {
  return `${relay.scheme}:${extension}@${relay.hostPort}${relay.params}?${CALL_SID_URI_HEADER}=${encodeURIComponent(callSid)}`;
}

/** Everything about the call the TwiML needs besides the decision. */
export interface InboundCallContext {
  callSid: string;
  cdrId: string;
  didId: string | null;
  didE164: string;
  /** The caller as E.164, or null when withheld/unreadable (cannot be shown as a caller ID). */
  callerE164: string | null;
  /** Mailbox owner for voicemail (the user whose devices the call was for), if one. */
  userId: string | null;
  relay: RelayTarget | null;
}

type RenderDeps = Pick<EdgeDeps, "db" | "config" | "clock" | "logger">;

/** The voicemail verbs of this call. */
export function voicemailVerbs(
  deps: RenderDeps,
  ctx: Pick<InboundCallContext, "didId" | "userId" | "cdrId" | "callSid">,
): Promise<TwimlElement[]> {
  return voicemailTwiml(deps, {
    didId: ctx.didId,
    userId: ctx.userId,
    cdrId: ctx.cdrId,
    callSid: ctx.callSid,
  });
}

/** `<Reject reason="busy"/>`: the caller hears a busy tone, Twilio bills nothing. */
export const rejectBusy = (): TwimlElement[] => [el("Reject", { reason: "busy" })];

/** A spoken message, then hang up. */
export const sayThenHangup = (text: string): TwimlElement[] => [el("Say", {}, [text]), el("Hangup")];

/** One `<Dial>` ringing these devices at once through the relay. */
export function ringDial(
  deps: Pick<EdgeDeps, "config">,
  ctx: InboundCallContext & { relay: RelayTarget },
  targets: readonly RingTarget[],
  step: Omit<DialStep, "cdrId" | "didId" | "userId" | "kind">,
): TwimlElement {
  const sips = targets
    .slice(0, MAX_SIP_NOUNS)
    .map((t) =>
      el("Sip", { username: ctx.relay.username, password: ctx.relay.password }, [
        relaySipUri(ctx.relay, t.extension, ctx.callSid),
      ]),
    );
  const action = dialResultUrl(deps.config.publicUrl, {
    ...step,
    cdrId: ctx.cdrId,
    didId: ctx.didId,
    userId: ctx.userId,
    kind: "ring",
  });
  return el("Dial", { timeout: step.timeoutSeconds, answerOnBridge: true, action, method: "POST" }, sips);
}

/** A forward to a number, the caller's number shown when there is one (else the DID). */
export function forwardDial(
  deps: Pick<EdgeDeps, "config">,
  ctx: InboundCallContext,
  forward: {
    to: string;
    callerId: "original" | "did";
    timeoutSeconds: number;
    onNoAnswer: "voicemail" | "hangup";
  },
): TwimlElement {
  const callerId = forward.callerId === "original" && ctx.callerE164 ? ctx.callerE164 : ctx.didE164;
  const action = dialResultUrl(deps.config.publicUrl, {
    cdrId: ctx.cdrId,
    didId: ctx.didId,
    userId: ctx.userId,
    kind: "forward",
    step: 1,
    next: [],
    timeoutSeconds: forward.timeoutSeconds,
    onNoAnswer: forward.onNoAnswer,
  });
  return el("Dial", { callerId, timeout: forward.timeoutSeconds, action, method: "POST" }, [
    el("Number", {}, [forward.to]),
  ]);
}

/** `<Say>`/`<Play>` of a message; a message that cannot be played is replaced by silence-free hang-up. */
async function playVerb(deps: RenderDeps, message: AudioSource): Promise<TwimlElement[]> {
  const verb = await audioSourceVerb(deps, message);
  return verb ? [verb] : [];
}

/** What Twilio should do with an inbound call, given the routing decision. */
export async function decisionTwiml(
  deps: RenderDeps,
  ctx: InboundCallContext,
  decision: RoutingDecision,
): Promise<TwimlElement[]> {
  switch (decision.action) {
    case "reject":
      return decision.rejectAs === "busy" ? rejectBusy() : sayThenHangup(NOT_IN_SERVICE);
    case "voicemail":
      return voicemailVerbs(deps, ctx);
    case "playMessage":
      return [...(await playVerb(deps, decision.message)), el("Hangup")];
    case "forward":
      return [forwardDial(deps, ctx, decision)];
    case "ring": {
      const relay = ctx.relay;
      // No way to reach the relay: straight to voicemail rather than a Dial that cannot ring.
      if (!relay || decision.targets.length === 0) return voicemailVerbs(deps, ctx);
      const sequential = decision.strategy === "sequential";
      const first = sequential ? decision.targets.slice(0, 1) : decision.targets;
      const next = sequential ? decision.targets.slice(1).map((t) => t.deviceId) : [];
      return [
        ringDial(deps, { ...ctx, relay }, first, {
          step: 1,
          next,
          timeoutSeconds: decision.timeoutSeconds,
          onNoAnswer: decision.onNoAnswer,
        }),
      ];
    }
  }
}
