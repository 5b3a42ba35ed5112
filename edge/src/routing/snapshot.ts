/**
 * Loads what one routing decision reads (RoutingSnapshot) from the database:
 * the DID, the blocklist, the screening / DND / installation settings, the
 * enabled rules of the DID and the global ones in evaluation order, devices with
 * their owner's DND and whether they are registered, holidays and contacts'
 * numbers, plus whether the relay is connected. Everything but the settings is
 * read in one batch (one round trip, one consistent read); nothing is cached
 * across calls, so an edit made a moment ago routes the next call.
 *
 * `routeInboundCall` is what the voice webhook needs in one call: load, decide,
 * and fail closed on any error (including the database failing).
 */
import {
  blocklist,
  contactNumbers,
  devices,
  dids,
  holidays,
  parseRoutingRule,
  registrations,
  routingRules,
  users,
} from "@gosip/drizzle";
import { and, asc, eq, gt, inArray, isNull, or } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { compileBlocklist } from "./blocklist.ts";
import { decideSafely } from "./evaluate.ts";
import { assessSpam } from "./spam.ts";
import type { InboundCall, RoutingDecision, RoutingDevice, RoutingSnapshot } from "./types.ts";

export type SnapshotDeps = Pick<EdgeDeps, "db" | "relayChannel" | "logger">;

/** A stored rule that cannot be evaluated; loading fails (and the call fails closed). */
export class StoredRuleError extends Error {
  override name = "StoredRuleError";
}

/**
 * The snapshot for a call to `didE164`, or null when no DID has that number.
 * `at` is the instant registrations must be live at (the call's arrival; a dry
 * run passes the current time, since registrations are only known for now).
 */
export async function loadRoutingSnapshot(
  deps: SnapshotDeps,
  didE164: string,
  at: Date,
): Promise<RoutingSnapshot | null> {
  const { db } = deps;
  const didOf = db.select({ id: dids.id }).from(dids).where(eq(dids.e164, didE164));
  const [batch, screening, dnd, installation, relayOnline] = await Promise.all([
    db.batch([
      db
        .select({ id: dids.id, e164: dids.e164, dnd: dids.dnd, defaultTargets: dids.defaultTargets })
        .from(dids)
        .where(eq(dids.e164, didE164)),
      db
        .select({
          id: blocklist.id,
          pattern: blocklist.pattern,
          matchType: blocklist.matchType,
          action: blocklist.action,
        })
        .from(blocklist)
        .orderBy(asc(blocklist.createdAt), asc(blocklist.id)),
      db
        .select({ id: routingRules.id, name: routingRules.name, rule: routingRules.rule })
        .from(routingRules)
        .where(
          and(
            eq(routingRules.enabled, true),
            or(isNull(routingRules.didId), inArray(routingRules.didId, didOf)),
          ),
        )
        .orderBy(asc(routingRules.priority), asc(routingRules.createdAt), asc(routingRules.id)),
      db
        .select({
          id: devices.id,
          userId: devices.userId,
          name: devices.name,
          extension: devices.extension,
          enabled: devices.enabled,
          ownerName: users.name,
          ownerDnd: users.dnd,
        })
        .from(devices)
        .innerJoin(users, eq(users.id, devices.userId)),
      db
        .selectDistinct({ deviceId: registrations.deviceId })
        .from(registrations)
        .where(gt(registrations.expiresAt, at)),
      db.select({ date: holidays.date, recurring: holidays.recurring }).from(holidays),
      db.select({ contactId: contactNumbers.contactId, e164: contactNumbers.e164 }).from(contactNumbers),
    ]),
    readSetting(db, "callScreening"),
    readSetting(db, "dnd"),
    readSetting(db, "installation"),
    relayConnected(deps),
  ]);
  const [didRows, blockRows, ruleRows, deviceRows, liveRows, holidayRows, numberRows] = batch;
  const did = didRows[0];
  if (!did) return null;

  const registered = new Set(liveRows.map((r) => r.deviceId));
  const deviceMap = new Map<string, RoutingDevice>();
  for (const d of deviceRows) {
    deviceMap.set(d.id, {
      id: d.id,
      userId: d.userId,
      extension: d.extension,
      enabled: d.enabled,
      dnd: d.ownerDnd,
      registered: registered.has(d.id),
      name: d.name,
      ownerName: d.ownerName,
    });
  }

  const dates = new Set<string>();
  const recurring = new Set<string>();
  for (const h of holidayRows) {
    if (h.recurring) recurring.add(h.date.slice(5));
    else dates.add(h.date);
  }

  const contacts = new Map<string, Set<string>>();
  for (const n of numberRows) {
    const set = contacts.get(n.contactId);
    if (set) set.add(n.e164);
    else contacts.set(n.contactId, new Set([n.e164]));
  }

  const rules = ruleRows.map((r) => {
    try {
      // Upgrades older document versions and fills defaults; a broken row must not route calls.
      return { id: r.id, name: r.name, rule: parseRoutingRule(r.rule) };
    } catch (err) {
      throw new StoredRuleError(
        `stored routing rule ${r.id} is not valid: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  });

  return {
    did: { id: did.id, e164: did.e164, dnd: did.dnd, defaultDeviceIds: did.defaultTargets.deviceIds },
    blocklist: compileBlocklist(blockRows),
    screening: {
      rejectAnonymous: screening.rejectAnonymous,
      spamFilter: screening.spamFilter,
      spamThreshold: screening.spamThreshold,
    },
    globalDnd: dnd.enabled,
    rules,
    devices: deviceMap,
    timeZone: installation.timeZone,
    holidays: { dates, recurring },
    contacts,
    relayOnline,
  };
}

/** Whether a relay is connected; a link that cannot tell counts as offline (calls go to voicemail). */
async function relayConnected(deps: SnapshotDeps): Promise<boolean> {
  try {
    return (await deps.relayChannel.status()).connected;
  } catch (err) {
    deps.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      "relay link status unavailable; routing as if the relay were offline",
    );
    return false;
  }
}

/**
 * Loads the snapshot and decides, failing closed: null only when the DID is
 * unknown (the webhook answers that itself); any error while loading or deciding
 * becomes a busy reject, logged with the CallSid (never the caller's number).
 */
export async function routeInboundCall(
  deps: SnapshotDeps,
  call: InboundCall,
): Promise<RoutingDecision | null> {
  const onError = (err: unknown) =>
    deps.logger.error(
      { callSid: call.callSid, err: err instanceof Error ? err.message : String(err) },
      "routing failed; call rejected (fail closed)",
    );
  let snapshot: RoutingSnapshot | null;
  try {
    snapshot = await loadRoutingSnapshot(deps, call.to, call.at);
  } catch (err) {
    onError(err);
    let score: number | null = null;
    try {
      score = assessSpam(call.stirVerstat, call.addOns).score;
    } catch {
      // The reject stands without a score.
    }
    return {
      action: "reject",
      reason: "error",
      rejectAs: "busy",
      spamScore: score,
      ruleId: null,
      trace: [
        {
          step: "error",
          outcome: "match",
          detail: `Routing data could not be loaded, so the call is rejected (fail closed): ${
            err instanceof Error ? err.message.slice(0, 300) : String(err)
          }`,
        },
      ],
    };
  }
  if (!snapshot) return null;
  return decideSafely(call, snapshot, onError);
}
