/**
 * POST /api/webhooks/twilio/call-status: the end of a call. Two shapes arrive here:
 * - a call's status callback (CallStatus, CallDuration), set on each DID's number;
 * - the `<Dial>` action of an outbound call (DialCallStatus, DialCallDuration), whose
 *   answer `<Hangup/>` ends the phone's leg.
 * A terminal status ends the CDR (endedAt, duration) and sets its disposition unless a
 * more specific outcome (voicemail, forwarded, rejected…) is already there. Idempotent
 * per (CallSid, status). An inbound call that ends missed notifies its owner once.
 */
import { type CallDisposition, cdrs } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { claimWebhook } from "../twilio/idempotency.ts";
import type { WebhookParams } from "../twilio/webhook.ts";
import { el, type TwimlElement } from "../twiml/builder.ts";
import { CALL_SID, type CdrRow, cdrByCallSid, seconds } from "./cdr.ts";
import type { InboundAnswer } from "./inbound.ts";
import { notifyMissedCall } from "./missed.ts";

export const CALL_STATUS_KIND = "call-status";

type StatusDeps = Pick<EdgeDeps, "db" | "clock" | "logger" | "jobs">;

const TERMINAL = new Set(["completed", "busy", "no-answer", "failed", "canceled"]);

function dispositionFor(status: string, cdr: CdrRow, answered: boolean): CallDisposition {
  switch (status) {
    case "completed":
      return answered ? "answered" : cdr.direction === "inbound" ? "missed" : "canceled";
    case "busy":
      return "busy";
    case "no-answer":
      return "missed";
    case "canceled":
      return cdr.direction === "inbound" ? "missed" : "canceled";
    default:
      return "failed";
  }
}

/** Completes the CDR of a finished call; answers what Twilio should do next (an action) or nothing. */
export async function completeCall(deps: StatusDeps, params: WebhookParams): Promise<InboundAnswer> {
  const callSid = params.CallSid ?? "";
  if (!CALL_SID.test(callSid)) return { ok: false, message: "CallSid is missing or malformed" };
  const dialAction = params.DialCallStatus !== undefined;
  const status = (dialAction ? params.DialCallStatus : params.CallStatus) ?? "";
  // A Dial action is answered with a hang-up (the call is over); a status callback's answer is ignored.
  const done: TwimlElement[] = dialAction ? [el("Hangup")] : [];
  if (!TERMINAL.has(status)) return { ok: true, verbs: done };

  const key = `${callSid}:${dialAction ? "dial:" : ""}${status}`;
  if (!(await claimWebhook(deps.db, CALL_STATUS_KIND, key))) return { ok: true, verbs: done };
  const cdr = await cdrByCallSid(deps.db, callSid);
  if (!cdr) {
    deps.logger.warn({ status }, "call-status for a call without a CDR: nothing recorded");
    return { ok: true, verbs: done };
  }
  const at = new Date(deps.clock.now());
  // Dial actions report the talk time of the dialled leg; a status callback the whole call's length.
  const reported = seconds(dialAction ? params.DialCallDuration : params.CallDuration);
  const answeredNow = dialAction && status === "completed";
  const answered = cdr.answeredAt !== null || answeredNow;
  const disposition = cdr.disposition ?? dispositionFor(status, cdr, answered);
  const durationSeconds =
    cdr.durationSeconds > 0 ? cdr.durationSeconds : answeredNow || cdr.answeredAt !== null ? reported : 0;
  await deps.db
    .update(cdrs)
    .set({
      status: "ended",
      endedAt: cdr.endedAt ?? at,
      disposition,
      durationSeconds,
      answeredAt: cdr.answeredAt ?? (answeredNow ? new Date(at.getTime() - reported * 1000) : null),
      ...(dialAction && params.DialSipResponseCode
        ? { sipStatus: seconds(params.DialSipResponseCode) || cdr.sipStatus }
        : {}),
    })
    .where(eq(cdrs.id, cdr.id));
  await notifyMissedCall(deps, { ...cdr, disposition });
  return { ok: true, verbs: done };
}
