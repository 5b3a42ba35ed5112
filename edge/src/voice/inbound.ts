/**
 * POST /api/webhooks/twilio/voice: an inbound call to one of the DIDs. Loads the
 * routing snapshot, decides (failing closed), records the CDR and answers TwiML.
 *
 * Twilio waits on this answer with the caller on the line, so it stays short: the
 * snapshot and the relay settings load in parallel, and the webhook claim, the CDR
 * and any alert go to the database in one batch (one transaction). A duplicate of the
 * webhook (same CallSid) fails the claim, which rolls the batch back: no second row;
 * the duplicate gets the TwiML of the same decision against the stored CDR.
 */
import { cdrs, type Db, processedWebhooks, type SettingValue, systemEvents } from "@gosip/drizzle";
import type { BatchItem } from "drizzle-orm/batch";
import { isUniqueViolation } from "../http/resource-api.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { decideSafely, isWithheldCaller } from "../routing/evaluate.ts";
import { loadRoutingSnapshot } from "../routing/snapshot.ts";
import type { InboundCall, RoutingDecision, RoutingSnapshot } from "../routing/types.ts";
import { readSetting } from "../settings/store.ts";
import type { WebhookParams } from "../twilio/webhook.ts";
import type { TwimlElement } from "../twiml/builder.ts";
import {
  CALL_SID,
  callerE164,
  cdrByCallSid,
  cdrCaller,
  type DecisionOutcome,
  decisionOutcome,
  maskNumber,
} from "./cdr.ts";
import {
  decisionTwiml,
  type InboundCallContext,
  relayTargetOf,
  sayThenHangup,
  UNKNOWN_NUMBER,
} from "./render.ts";

export const VOICE_WEBHOOK_KIND = "voice";

type VoiceDeps = Pick<EdgeDeps, "db" | "config" | "clock" | "logger" | "relayChannel">;
type Statement = BatchItem<"sqlite">;

export type InboundAnswer = { ok: true; verbs: TwimlElement[] } | { ok: false; message: string };

/** The one owner of these devices, or null (several owners, or none): the voicemail mailbox. */
export function mailboxOwner(snapshot: RoutingSnapshot, deviceIds: readonly string[]): string | null {
  const owners = new Set<string>();
  for (const id of deviceIds) {
    const d = snapshot.devices.get(id);
    if (d) owners.add(d.userId);
  }
  if (owners.size !== 1) return null;
  const [owner] = owners;
  return owner ?? null;
}

function ownerOf(snapshot: RoutingSnapshot, decision: RoutingDecision): string | null {
  if (decision.action === "ring") {
    return mailboxOwner(
      snapshot,
      decision.targets.map((t) => t.deviceId),
    );
  }
  return mailboxOwner(snapshot, snapshot.did.defaultDeviceIds);
}

/**
 * The caller as routing sees it: a number, a withheld marker as Twilio sent it, or "anonymous"
 * for anything else (a From that is no phone number cannot be shown, matched or called back).
 */
export function routingCaller(from: string): string {
  const value = from.trim();
  if (callerE164(value) !== null || isWithheldCaller(value)) return value.slice(0, 64);
  return "anonymous";
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 300);

/**
 * Claims the webhook and writes the CDR (and alert) in one transaction. Answers the CDR
 * id this call's TwiML must carry: the new row's, or the stored one's for a duplicate.
 */
async function recordCall(
  db: Db,
  callSid: string,
  cdr: typeof cdrs.$inferInsert & { id: string },
  extra: Statement[],
): Promise<string> {
  try {
    await db.batch([
      db.insert(processedWebhooks).values({ kind: VOICE_WEBHOOK_KIND, sid: callSid }),
      db.insert(cdrs).values(cdr),
      ...extra,
    ]);
    return cdr.id;
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const stored = await cdrByCallSid(db, callSid);
    return stored?.id ?? cdr.id;
  }
}

/** The TwiML for an inbound call (ok: false only for a body no Twilio call has: no CallSid). */
export async function answerInboundCall(deps: VoiceDeps, params: WebhookParams): Promise<InboundAnswer> {
  const callSid = params.CallSid ?? "";
  if (!CALL_SID.test(callSid)) return { ok: false, message: "CallSid is missing or malformed" };
  const at = new Date(deps.clock.now());
  const call: InboundCall = {
    callSid,
    from: routingCaller(params.From ?? ""),
    to: (params.To ?? "").trim(),
    callerName: params.CallerName,
    stirVerstat: params.StirVerstat,
    addOns: params.AddOns,
    at,
  };
  const cdrId = crypto.randomUUID();
  const base = {
    id: cdrId,
    direction: "inbound" as const,
    fromNumber: cdrCaller(call.from),
    toNumber: call.to.slice(0, 32),
    startedAt: at,
    twilioCallSid: callSid,
  };

  let snapshot: RoutingSnapshot | null;
  let relaySetting: SettingValue<"relay">;
  let failure: unknown;
  try {
    [snapshot, relaySetting] = await Promise.all([
      // Only the blocklist entries that could match this caller are read (10,000 entries stay fast).
      loadRoutingSnapshot(deps, call.to, at, { caller: call.from }),
      readSetting(deps.db, "relay"),
    ]);
  } catch (err) {
    // Fail closed: without the rules and the blocklist no call is let through.
    snapshot = null;
    relaySetting = { v: 1, trustedNetworks: [] };
    failure = err;
  }

  if (failure === undefined && snapshot === null) {
    deps.logger.warn({ did: maskNumber(call.to) }, "inbound call to a number that is not a DID here");
    await recordCall(
      deps.db,
      callSid,
      { ...base, status: "ended", disposition: "rejected", reason: "unknown_did", endedAt: at },
      [],
    );
    return { ok: true, verbs: sayThenHangup(UNKNOWN_NUMBER) };
  }

  let decision: RoutingDecision;
  if (snapshot) {
    decision = decideSafely(call, snapshot, (err) => {
      failure = err;
    });
  } else {
    decision = {
      action: "reject",
      reason: "error",
      rejectAs: "busy",
      spamScore: null,
      ruleId: null,
      trace: [],
    };
  }

  const relay = relayTargetOf(relaySetting);
  let outcome: DecisionOutcome = decisionOutcome(decision);
  // Ringing needs the relay's address and credentials; without them the call goes to voicemail.
  if (decision.action === "ring" && !relay)
    outcome = { status: "ringing", disposition: "voicemail", reason: "relay_unconfigured" };

  const extra: Statement[] = [];
  if (failure !== undefined) {
    deps.logger.error({ err: errorText(failure), cdrId }, "routing failed: call rejected (fail closed)");
    extra.push(
      deps.db.insert(systemEvents).values({
        type: "routing.error",
        severity: "error",
        at,
        data: {
          v: 1,
          message: "Routing an inbound call failed, so the call was rejected",
          error: errorText(failure),
          cdrId,
        },
      }),
    );
  }

  const userId = snapshot ? ownerOf(snapshot, decision) : null;
  const storedId = await recordCall(
    deps.db,
    callSid,
    {
      ...base,
      didId: snapshot?.did.id ?? null,
      userId,
      status: outcome.status,
      disposition: outcome.disposition,
      reason: outcome.reason,
      ruleId: decision.ruleId,
      spamScore: decision.spamScore,
      endedAt: outcome.status === "ended" ? at : null,
    },
    extra,
  );

  const ctx: InboundCallContext = {
    callSid,
    cdrId: storedId,
    didId: snapshot?.did.id ?? null,
    didE164: snapshot?.did.e164 ?? call.to,
    callerE164: callerE164(call.from),
    userId,
    relay,
  };
  return { ok: true, verbs: await decisionTwiml(deps, ctx, decision) };
}
