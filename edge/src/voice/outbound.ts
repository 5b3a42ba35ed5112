/**
 * POST /api/webhooks/twilio/sip-outbound: the SIP Domain's Voice URL. A phone called
 * out through the relay; Twilio authenticated the relay (credential list) and asks
 * what to do. The device is identified from the SIP From (its extension or SIP user
 * name, cross-checked with the relay's X-GoSIP-Device header when present), the
 * number is normalised and the device's outbound policy is applied again with the
 * code the relay uses (@gosip/drizzle dialplan: defence in depth against toll fraud;
 * emergency numbers always go out). The caller ID is the device's DID.
 *
 * The CDR: the relay reports the same call from its side (call.started, usually
 * first); the edge merges into that row (same device, same number, no CallSid yet,
 * moments ago) instead of writing a second one, and relay/events.ts does the same
 * the other way round.
 */
import {
  cdrs,
  type Db,
  devices,
  dids,
  EMERGENCY_NUMBERS,
  parseOutboundPolicy,
  policyRefusal,
  toE164,
} from "@gosip/drizzle";
import { and, asc, desc, eq, gte, isNull, ne, or } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { claimWebhook } from "../twilio/idempotency.ts";
import type { WebhookParams } from "../twilio/webhook.ts";
import { el, type TwimlElement } from "../twiml/builder.ts";
import { CALL_SID, maskNumber } from "./cdr.ts";
import type { InboundAnswer } from "./inbound.ts";
import { OUTBOUND_REFUSED, OUTBOUND_UNAVAILABLE, sayThenHangup } from "./render.ts";
import { outboundActionUrl } from "./urls.ts";

export const SIP_OUTBOUND_KIND = "sip-outbound";

/** Header the relay adds to outbound INVITEs; Twilio passes it as SipHeader_X-GoSIP-Device. */
export const DEVICE_HEADER_PARAM = "SipHeader_X-GoSIP-Device";

/** How long the PSTN party may ring. */
export const OUTBOUND_RING_SECONDS = 60;

/** A relay CDR this recent (same device and number, no CallSid) is the same call. */
export const MERGE_WINDOW_MS = 120_000;

type OutboundDeps = Pick<EdgeDeps, "db" | "config" | "clock" | "logger">;

/** The user part of a SIP URI (`sip:101@x` → "101"), percent-decoded; null when there is none. */
export function sipUser(uri: string): string | null {
  const m = /^<?sips?:([^@;>]+)@/i.exec(uri.trim());
  if (!m?.[1]) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

/** The dialled string of the To user part: parameters and visual separators removed. */
function dialled(user: string): string {
  const semi = user.indexOf(";");
  return (semi >= 0 ? user.slice(0, semi) : user).replace(/[-.() ]/g, "");
}

type DeviceRow = {
  id: string;
  userId: string;
  extension: string;
  enabled: boolean;
  outboundPolicy: unknown;
};

async function deviceOf(db: Db, user: string): Promise<DeviceRow | undefined> {
  const rows = await db
    .select({
      id: devices.id,
      userId: devices.userId,
      extension: devices.extension,
      enabled: devices.enabled,
      outboundPolicy: devices.outboundPolicy,
    })
    .from(devices)
    .where(or(eq(devices.extension, user), eq(devices.sipUsername, user)));
  // An extension is the From the brief names; a SIP user name is what the relay sends: prefer an exact extension.
  return rows.find((r) => r.extension === user) ?? rows[0];
}

/** The DID shown to the called party: the device's DID, else the default sender, else the first DID. */
async function callerIdFor(
  deps: OutboundDeps,
  deviceId: string,
): Promise<{ id: string; e164: string } | null> {
  const all = await deps.db
    .select({ id: dids.id, e164: dids.e164, defaultTargets: dids.defaultTargets })
    .from(dids)
    .orderBy(asc(dids.createdAt), asc(dids.e164));
  const own = all.find((d) => d.defaultTargets.deviceIds.includes(deviceId));
  if (own) return { id: own.id, e164: own.e164 };
  if (all.length === 0) return null;
  const { defaultSenderE164 } = await readSetting(deps.db, "messaging");
  const sender = all.find((d) => d.e164 === defaultSenderE164);
  const pick = sender ?? all[0];
  return pick ? { id: pick.id, e164: pick.e164 } : null;
}

type Verdict =
  | { ok: true; number: string; device: DeviceRow; callerId: { id: string; e164: string } }
  | { ok: false; reason: string; detail: string; device: DeviceRow | null; number: string; say: string };

async function judge(deps: OutboundDeps, params: WebhookParams): Promise<Verdict> {
  const toUser = sipUser(params.To ?? "");
  const number = toUser ? dialled(toUser) : "";
  const refuse = (
    reason: string,
    detail: string,
    device: DeviceRow | null,
    say = OUTBOUND_REFUSED,
  ): Verdict => ({
    ok: false,
    reason,
    detail,
    device,
    number: number.slice(0, 32) || "unknown",
    say,
  });
  const fromUser = sipUser(params.From ?? "");
  if (!fromUser) return refuse("unknown_device", "From is not a SIP URI with a user", null);
  const device = await deviceOf(deps.db, fromUser);
  if (!device) return refuse("unknown_device", "no device has this extension", null);
  const header = params[DEVICE_HEADER_PARAM];
  if (header !== undefined && header !== device.id)
    return refuse("unknown_device", "X-GoSIP-Device names another device", null);
  if (!device.enabled) return refuse("policy", "device is disabled", device);
  if (!toUser) return refuse("policy", "To is not a SIP URI with a number", device);

  let e164: string;
  if (EMERGENCY_NUMBERS.has(number)) e164 = number;
  else {
    if (!/^\+?\d+$/.test(number)) return refuse("policy", "not a phone number", device);
    const country = number.startsWith("+") ? "US" : (await readSetting(deps.db, "installation")).country;
    const normal = toE164(number, country);
    if (!normal.ok) return refuse("policy", normal.reason, device);
    e164 = normal.e164;
    const refusal = policyRefusal(e164, parseOutboundPolicy(device.outboundPolicy));
    if (refusal) return refuse("policy", refusal, device);
  }
  const callerId = await callerIdFor(deps, device.id);
  if (!callerId) return refuse("no_caller_id", "no DID to call from", device, OUTBOUND_UNAVAILABLE);
  return { ok: true, number: e164, device, callerId };
}

/** The relay's CDR of this call, if it already reported it (see module comment). */
async function relayCdr(db: Db, deviceId: string, number: string, at: Date) {
  const [row] = await db
    .select({ id: cdrs.id })
    .from(cdrs)
    .where(
      and(
        eq(cdrs.direction, "outbound"),
        eq(cdrs.deviceId, deviceId),
        eq(cdrs.toNumber, number),
        isNull(cdrs.twilioCallSid),
        ne(cdrs.status, "ended"),
        gte(cdrs.startedAt, new Date(at.getTime() - MERGE_WINDOW_MS)),
      ),
    )
    .orderBy(desc(cdrs.startedAt))
    .limit(1);
  return row;
}

/** The TwiML for a phone's outbound call, and its CDR. */
export async function answerSipOutbound(deps: OutboundDeps, params: WebhookParams): Promise<InboundAnswer> {
  const callSid = params.CallSid ?? "";
  if (!CALL_SID.test(callSid)) return { ok: false, message: "CallSid is missing or malformed" };
  const at = new Date(deps.clock.now());
  const verdict = await judge(deps, params);
  const first = await claimWebhook(deps.db, SIP_OUTBOUND_KIND, callSid);

  if (!verdict.ok) {
    deps.logger.warn(
      { reason: verdict.reason, detail: verdict.detail, to: maskNumber(verdict.number) },
      "outbound call refused",
    );
    if (first) {
      await deps.db
        .insert(cdrs)
        .values({
          direction: "outbound",
          fromNumber: verdict.device?.extension ?? "unknown",
          toNumber: verdict.number,
          deviceId: verdict.device?.id ?? null,
          userId: verdict.device?.userId ?? null,
          status: "ended",
          disposition: "rejected",
          reason: verdict.reason,
          startedAt: at,
          endedAt: at,
          twilioCallSid: callSid,
        })
        .onConflictDoNothing();
    }
    return { ok: true, verbs: sayThenHangup(verdict.say) };
  }

  const { device, number, callerId } = verdict;
  let cdrId: string | undefined;
  if (first) {
    const merged = await relayCdr(deps.db, device.id, number, at);
    if (merged) {
      await deps.db
        .update(cdrs)
        .set({ twilioCallSid: callSid, didId: callerId.id, userId: device.userId })
        .where(eq(cdrs.id, merged.id));
      cdrId = merged.id;
    } else {
      const [row] = await deps.db
        .insert(cdrs)
        .values({
          direction: "outbound",
          fromNumber: device.extension,
          toNumber: number,
          didId: callerId.id,
          deviceId: device.id,
          userId: device.userId,
          status: "ringing",
          startedAt: at,
          twilioCallSid: callSid,
        })
        .onConflictDoNothing()
        .returning({ id: cdrs.id });
      cdrId = row?.id;
    }
  }
  if (!cdrId) {
    const [row] = await deps.db.select({ id: cdrs.id }).from(cdrs).where(eq(cdrs.twilioCallSid, callSid));
    cdrId = row?.id ?? "unknown";
  }
  const dial: TwimlElement = el(
    "Dial",
    {
      callerId: callerId.e164,
      timeout: OUTBOUND_RING_SECONDS,
      answerOnBridge: true,
      action: outboundActionUrl(deps.config.publicUrl, cdrId),
      method: "POST",
    },
    [el("Number", {}, [number])],
  );
  return { ok: true, verbs: [dial] };
}
