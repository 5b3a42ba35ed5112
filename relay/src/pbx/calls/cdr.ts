// How a call's outcome reads in its CDR: the final SIP status of the winning (or deciding) answer mapped to the
// disposition the UI and the edge's reports show, and the parties as E.164 numbers or extensions.
import type { RelayEvent } from "@gosip/drizzle";

export type Disposition = Extract<RelayEvent, { kind: "call.ended" }>["disposition"];
export type HangupBy = "caller" | "callee" | "relay";
export type CallEnded = Extract<RelayEvent, { kind: "call.ended" }>;

/** The disposition of a call that ended with this final status before it was answered. */
export function dispositionOf(status: number): Disposition {
  if (status >= 200 && status < 300) return "answered";
  if (status === 487) return "canceled";
  if (status === 486 || status === 600) return "busy";
  if (status === 403 || status === 603) return "rejected";
  if (status === 480 || status === 408 || status === 404) return "missed";
  return "failed";
}

/**
 * The status the caller gets when every branch of a forked call failed: a decline wins (someone pressed
 * reject), then busy when every phone said so, then the single branch's own status, else 480 (nobody
 * answered: Twilio's Dial action then goes to voicemail).
 */
export function forkOutcome(statuses: readonly number[]): number {
  if (statuses.length === 0) return 480;
  if (statuses.some((s) => s === 603 || s === 600)) return 603;
  if (statuses.every((s) => s === 486)) return 486;
  if (statuses.length === 1) {
    const only = statuses[0] ?? 480;
    // A phone's own server errors or timeouts say nothing useful to the caller: treat as not reached.
    if (only >= 500 || only === 408 || only === 487) return 480;
    return only;
  }
  return 480;
}

/** The user part of a SIP/tel URI or name-addr (the number or extension), or "anonymous". */
export function partyOf(uri: string | undefined): string {
  if (!uri) return "anonymous";
  const inAngles = /<([^>]*)>/.exec(uri)?.[1];
  const m = /^(?:sips?|tel):([^@;>]+)/i.exec((inAngles ?? uri).trim());
  const user = m?.[1];
  if (!user) return "anonymous";
  let decoded = user;
  try {
    decoded = decodeURIComponent(user);
  } catch {
    // keep it raw
  }
  if (/^(anonymous|restricted|unavailable|unknown)$/i.test(decoded)) return "anonymous";
  return decoded.slice(0, 64);
}
