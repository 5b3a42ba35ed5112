/**
 * POST /api/webhooks/twilio/dial-result: the action of an inbound call's `<Dial>`.
 * DialCallStatus completed → the call was answered and is over: the CDR gets its talk
 * time, Twilio gets `<Hangup/>`. no-answer / busy / failed → the next device of a
 * sequential ring group (read from the action URL, stateless), else what the rule says
 * happens without an answer: voicemail, or hang up. canceled → the caller hung up.
 * DialSipResponseCode goes on the CDR as its SIP status.
 *
 * Idempotent on (CallSid, step): a repeated action changes nothing and gets the same
 * kind of answer (the next step is worked out again from the registrations of now).
 */
import { type CallDisposition, cdrs, devices, processedWebhooks, registrations, users } from "@gosip/drizzle";
import { and, eq, gt, inArray, sql } from "drizzle-orm";
import { isUniqueViolation } from "../http/resource-api.ts";
import type { EdgeDeps } from "../platform/types.ts";
import type { RingTarget } from "../routing/types.ts";
import { readSetting } from "../settings/store.ts";
import { claimWebhook } from "../twilio/idempotency.ts";
import type { WebhookParams } from "../twilio/webhook.ts";
import { el } from "../twiml/builder.ts";
import { CALL_SID, cdrById, seconds } from "./cdr.ts";
import type { InboundAnswer } from "./inbound.ts";
import { notifyMissedCall } from "./missed.ts";
import { relayTargetOf, ringDial, voicemailVerbs } from "./render.ts";
import { type DialStep, parseDialStep } from "./urls.ts";

export const DIAL_RESULT_KIND = "dial-result";

type DialDeps = Pick<EdgeDeps, "db" | "config" | "clock" | "logger" | "jobs">;

const NOT_ANSWERED: Readonly<Record<string, CallDisposition>> = {
  "no-answer": "missed",
  busy: "busy",
  failed: "failed",
};

/** The first of `ids` (in order) that can ring now: enabled, owner not on DND, registered. */
async function nextRingable(
  deps: DialDeps,
  ids: readonly string[],
  at: Date,
): Promise<{ target: RingTarget; rest: string[] } | null> {
  if (ids.length === 0) return null;
  const rows = await deps.db
    .selectDistinct({ id: devices.id, extension: devices.extension })
    .from(devices)
    .innerJoin(users, eq(users.id, devices.userId))
    .innerJoin(registrations, and(eq(registrations.deviceId, devices.id), gt(registrations.expiresAt, at)))
    .where(and(inArray(devices.id, [...ids]), eq(devices.enabled, true), eq(users.dnd, false)));
  const ringable = new Map(rows.map((r) => [r.id, r.extension]));
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const extension = id === undefined ? undefined : ringable.get(id);
    if (id !== undefined && extension !== undefined)
      return { target: { deviceId: id, extension }, rest: ids.slice(i + 1) };
  }
  return null;
}

/** The TwiML (and CDR update) for one Dial action. */
export async function answerDialResult(
  deps: DialDeps,
  params: WebhookParams,
  query: URLSearchParams,
): Promise<InboundAnswer> {
  const callSid = params.CallSid ?? "";
  if (!CALL_SID.test(callSid)) return { ok: false, message: "CallSid is missing or malformed" };
  const step: DialStep | null = parseDialStep(query);
  if (!step) return { ok: false, message: "The dial-result URL is not one this edge wrote" };
  const status = params.DialCallStatus ?? "";
  const at = new Date(deps.clock.now());
  const key = `${callSid}:${step.step}`;
  const sipStatus = seconds(params.DialSipResponseCode) || null;

  if (status === "completed") {
    // The common case, answered while the caller waits for the hang-up: claim and CDR in one transaction,
    // no read first (a duplicate fails the claim and rolls the update back; a URL naming another call's
    // CDR matches no row).
    const talk = seconds(params.DialCallDuration);
    const answeredAt = at.getTime() - talk * 1000;
    try {
      await deps.db.batch([
        deps.db.insert(processedWebhooks).values({ kind: DIAL_RESULT_KIND, sid: key }),
        deps.db
          .update(cdrs)
          .set({
            status: "ended",
            disposition: step.kind === "forward" ? "forwarded" : "answered",
            durationSeconds: talk,
            answeredAt: sql`coalesce(${cdrs.answeredAt}, ${answeredAt})`,
            endedAt: at,
            ...(sipStatus !== null ? { sipStatus } : {}),
          })
          .where(and(eq(cdrs.id, step.cdrId), eq(cdrs.twilioCallSid, callSid))),
      ]);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    return { ok: true, verbs: [el("Hangup")] };
  }

  const first = await claimWebhook(deps.db, DIAL_RESULT_KIND, key);
  const cdr = await cdrById(deps.db, step.cdrId);
  // The URL names a CDR; it must be this call's (a URL is only ever used for its own call).
  const own = cdr !== undefined && cdr.twilioCallSid === callSid;
  if (!own) deps.logger.warn({ cdrId: step.cdrId }, "dial-result for an unknown CDR: nothing recorded");
  const write = first && own;
  const update = (set: Partial<typeof cdrs.$inferInsert>) =>
    deps.db
      .update(cdrs)
      .set({ ...set, ...(sipStatus !== null ? { sipStatus } : {}) })
      .where(eq(cdrs.id, step.cdrId));

  if (status === "canceled") {
    // The caller hung up while it rang: nobody to ring next, nobody to take a message from.
    if (write && cdr) {
      await update({ disposition: cdr.disposition ?? "missed", status: "ended", endedAt: at });
      await notifyMissedCall(deps, { ...cdr, disposition: cdr.disposition ?? "missed" });
    }
    return { ok: true, verbs: [el("Hangup")] };
  }

  const disposition = NOT_ANSWERED[status] ?? "failed";
  if (step.kind === "ring" && step.next.length > 0) {
    const [next, relaySetting] = await Promise.all([
      nextRingable(deps, step.next, at),
      readSetting(deps.db, "relay"),
    ]);
    const relay = relayTargetOf(relaySetting);
    if (next && relay) {
      if (write && sipStatus !== null) await update({});
      const ctx = {
        callSid,
        cdrId: step.cdrId,
        didId: step.didId,
        didE164: cdr?.toNumber ?? "",
        callerE164: null,
        userId: step.userId,
        relay,
      };
      return {
        ok: true,
        verbs: [
          ringDial(deps, ctx, [next.target], {
            step: step.step + 1,
            next: next.rest,
            timeoutSeconds: step.timeoutSeconds,
            onNoAnswer: step.onNoAnswer,
          }),
        ],
      };
    }
  }

  if (step.onNoAnswer === "voicemail") {
    if (write) await update({ disposition: "voicemail" });
    return {
      ok: true,
      verbs: await voicemailVerbs(deps, {
        didId: step.didId,
        userId: step.userId,
        cdrId: step.cdrId,
        callSid,
      }),
    };
  }
  if (write && cdr) {
    await update({ disposition, status: "ended", endedAt: at });
    await notifyMissedCall(deps, { ...cdr, disposition });
  }
  return { ok: true, verbs: [el("Hangup")] };
}
