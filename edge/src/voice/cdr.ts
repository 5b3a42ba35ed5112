/**
 * The CDR side of the voice webhooks: which disposition and reason a routing decision
 * leaves on the call's row, how a caller is written down, and the small reads the
 * webhooks share. One row per Twilio call: the unique twilio_call_sid holds it, and
 * the relay's events merge into it through the same CallSid (relay/events.ts).
 */
import { type CallDisposition, cdrs, type Db } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { isWithheldCaller } from "../routing/evaluate.ts";
import type { RoutingDecision } from "../routing/types.ts";

export type CdrRow = typeof cdrs.$inferSelect;

const E164 = /^\+[1-9]\d{1,14}$/;

/** The caller as E.164, or null when withheld or not a number at all (a bad From is treated as withheld). */
export function callerE164(from: string): string | null {
  const value = from.trim();
  return E164.test(value) && !isWithheldCaller(value) ? value : null;
}

/** What the CDR's from_number says: the E.164 caller, else "anonymous". */
export function cdrCaller(from: string): string {
  return callerE164(from) ?? "anonymous";
}

/** A phone number for a log line: country code and last two digits only. */
export function maskNumber(value: string): string {
  if (!E164.test(value)) return value.length > 0 ? "(not a number)" : "(empty)";
  return `${value.slice(0, 2)}…${value.slice(-2)}`;
}

/** The fields a decision sets on a new inbound CDR. */
export interface DecisionOutcome {
  status: "ringing" | "ended";
  disposition: CallDisposition | null;
  reason: string | null;
}

/**
 * Rejected calls end at once (Twilio never connects them); voicemail is known now;
 * ringing and forwarding are settled by dial-result and call-status.
 */
export function decisionOutcome(decision: RoutingDecision): DecisionOutcome {
  switch (decision.action) {
    case "reject":
      return {
        status: "ended",
        disposition: decision.reason === "blocklist" || decision.reason === "spam" ? "blocked" : "rejected",
        reason: decision.reason,
      };
    case "voicemail":
      return { status: "ringing", disposition: "voicemail", reason: decision.reason };
    case "playMessage":
      return { status: "ringing", disposition: "rejected", reason: "message" };
    case "forward":
    case "ring":
      return { status: "ringing", disposition: null, reason: null };
  }
}

export async function cdrByCallSid(db: Db, callSid: string): Promise<CdrRow | undefined> {
  const [row] = await db.select().from(cdrs).where(eq(cdrs.twilioCallSid, callSid));
  return row;
}

export async function cdrById(db: Db, id: string): Promise<CdrRow | undefined> {
  const [row] = await db.select().from(cdrs).where(eq(cdrs.id, id));
  return row;
}

/** A non-negative whole number of seconds from a Twilio duration parameter (0 when absent or bad). */
export function seconds(value: string | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n < 10 * 24 * 3600 ? n : 0;
}

/** Twilio CallSids (parent calls): CA and 32 hex digits. */
export const CALL_SID = /^CA[0-9a-fA-F]{32}$/;
