/**
 * The action URLs the voice TwiML points Twilio at, and reading them back. Sequential
 * ringing is stateless: the Dial action of each step carries what is left to do (the
 * devices still to ring, the timeout, what happens when nobody answers), so the
 * dial-result webhook needs no session. Twilio signs the whole URL including its query
 * and the signature middleware checks it before a handler runs, so a query that reaches
 * a handler is one this edge wrote; it is still parsed strictly (bad values → null).
 */

export const VOICE_PATH = "/api/webhooks/twilio/voice";
export const DIAL_RESULT_PATH = "/api/webhooks/twilio/dial-result";
export const SIP_OUTBOUND_PATH = "/api/webhooks/twilio/sip-outbound";
export const CALL_STATUS_PATH = "/api/webhooks/twilio/call-status";

/** What a Dial action of an inbound call carries to its dial-result. */
export interface DialStep {
  cdrId: string;
  /** DID called (voicemail greeting), when known. */
  didId: string | null;
  /** Mailbox owner for voicemail, when the call was for one user's devices. */
  userId: string | null;
  /** "ring": a ring-group step; "forward": a forward to a number. */
  kind: "ring" | "forward";
  /** 1 for the first Dial of the call, +1 per sequential step (idempotency key with the CallSid). */
  step: number;
  /** Devices still to ring one after the other (sequential), in order. */
  next: string[];
  timeoutSeconds: number;
  onNoAnswer: "voicemail" | "hangup";
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_STEPS = 100;

function idOrNull(value: string | null): string | null | undefined {
  if (value === null || value === "") return null;
  return ID.test(value) ? value : undefined;
}

/** The dial-result URL (absolute, under PUBLIC_URL) for one step. */
export function dialResultUrl(publicUrl: string, s: DialStep): string {
  const q = new URLSearchParams();
  q.set("cdrId", s.cdrId);
  if (s.didId) q.set("didId", s.didId);
  if (s.userId) q.set("userId", s.userId);
  q.set("kind", s.kind);
  q.set("step", String(s.step));
  if (s.next.length > 0) q.set("next", s.next.join(","));
  q.set("timeout", String(s.timeoutSeconds));
  q.set("onNoAnswer", s.onNoAnswer);
  return `${publicUrl}${DIAL_RESULT_PATH}?${q.toString()}`;
}

/** Reads a dial-result query back; null when anything is missing or malformed. */
export function parseDialStep(query: URLSearchParams): DialStep | null {
  const cdrId = idOrNull(query.get("cdrId"));
  const didId = idOrNull(query.get("didId"));
  const userId = idOrNull(query.get("userId"));
  const kind = query.get("kind");
  const step = Number(query.get("step"));
  const timeoutSeconds = Number(query.get("timeout"));
  const onNoAnswer = query.get("onNoAnswer");
  const nextRaw = query.get("next");
  const next = nextRaw ? nextRaw.split(",") : [];
  if (!cdrId || didId === undefined || userId === undefined) return null;
  if (kind !== "ring" && kind !== "forward") return null;
  if (!Number.isInteger(step) || step < 1 || step > MAX_STEPS) return null;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 600) return null;
  if (onNoAnswer !== "voicemail" && onNoAnswer !== "hangup") return null;
  if (next.length > MAX_STEPS || !next.every((id) => ID.test(id))) return null;
  return { cdrId, didId, userId, kind, step, next, timeoutSeconds, onNoAnswer };
}

/** The Dial action of an outbound call: call-status completes its CDR. */
export function outboundActionUrl(publicUrl: string, cdrId: string): string {
  return `${publicUrl}${CALL_STATUS_PATH}?${new URLSearchParams({ cdrId }).toString()}`;
}
