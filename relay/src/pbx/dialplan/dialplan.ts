// The dial plan: what a phone's user dialled, decided before any call leg exists. An extension of a device is an
// internal call; *-codes are features; 911/112/999 always go out as dialled; everything else is a PSTN number,
// made E.164 with the installation's country and checked against the calling device's outbound policy (the
// toll-fraud guard). Pure: the B2BUA turns a decision into SIP.
import { EMERGENCY_NUMBERS, policyRefusal, type SyncDevice, toE164 } from "@gosip/drizzle";

export type FeatureCode = "dnd-on" | "dnd-off" | "voicemail";

/** Feature codes as dialled (recording codes belong to the recording feature). */
export const FEATURE_CODES: Readonly<Record<string, FeatureCode>> = {
  "*78": "dnd-on",
  "*79": "dnd-off",
  "*97": "voicemail",
};

export type DialDecision =
  | { kind: "internal"; device: SyncDevice }
  | { kind: "feature"; feature: FeatureCode }
  /** Sent to the SIP Domain exactly as dialled (Twilio routes emergency calls by the bare digits). */
  | { kind: "emergency"; number: string }
  | { kind: "external"; e164: string }
  /** 403: the policy forbids it; 484: not a number we can place; 404: no such extension or code. */
  | { kind: "refused"; status: 403 | 404 | 484; reason: string };

export interface DialContext {
  /** The calling device (its outbound policy applies). */
  caller: SyncDevice;
  /** ISO 3166 alpha-2 of the installation. */
  defaultCountry: string;
  byExtension(extension: string): SyncDevice | undefined;
}

/**
 * The dialled string from a Request-URI user part: percent-decoded, phone-context and other parameters dropped,
 * visual separators (RFC 3966: - . ( ) and spaces) removed.
 */
export function dialledDigits(user: string): string {
  let s = user;
  try {
    s = decodeURIComponent(user);
  } catch {
    // a lone % is kept as is and refused below
  }
  const semi = s.indexOf(";");
  if (semi >= 0) s = s.slice(0, semi);
  return s.replace(/[-.() ]/g, "");
}

/** Decides what a dialled Request-URI user part means for this caller. */
export function classifyDialled(user: string, ctx: DialContext): DialDecision {
  const dialled = dialledDigits(user);
  const feature = FEATURE_CODES[dialled];
  if (feature) return { kind: "feature", feature };
  if (dialled.startsWith("*") || dialled.startsWith("#"))
    return { kind: "refused", status: 404, reason: "unknown feature code" };
  if (EMERGENCY_NUMBERS.has(dialled)) return { kind: "emergency", number: dialled };
  if (!/^\+?\d+$/.test(dialled)) return { kind: "refused", status: 484, reason: "not a phone number" };

  const device = ctx.byExtension(dialled);
  if (device) return { kind: "internal", device };

  const n = toE164(dialled, ctx.defaultCountry);
  if (!n.ok) {
    // Short strings are most likely a mistyped or deleted extension, not a PSTN number.
    if (dialled.length <= 6 && !dialled.startsWith("+"))
      return { kind: "refused", status: 404, reason: "no such extension" };
    return { kind: "refused", status: 484, reason: n.reason };
  }
  const refusal = policyRefusal(n.e164, ctx.caller.outboundPolicy);
  if (refusal) return { kind: "refused", status: 403, reason: refusal };
  return { kind: "external", e164: n.e164 };
}
