/**
 * Loads what one routing decision reads (RoutingSnapshot) from the database:
 * the DID, the blocklist, the screening / DND / installation settings, the
 * enabled rules of the DID and the global ones in evaluation order, devices with
 * their owner's DND and whether they are registered, holidays and contacts'
 * numbers, plus whether the relay is connected. Everything but the settings is
 * read in one batch (one round trip, one consistent read); nothing is cached
 * across calls, so an edit made a moment ago routes the next call.
 *
 * Given the caller, only the blocklist entries that could match them are read
 * (their exact number, the prefixes of it, every regex) instead of all 10,000:
 * materialising every row costs far more than the decision. That blocklist then
 * answers for that caller only, and throws (fail closed) if asked about another.
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
  type RoutingRule,
  registrations,
  routingRules,
  users,
} from "@gosip/drizzle";
import { and, asc, count, eq, gt, inArray, isNull, or } from "drizzle-orm";
import { normalizePhoneNumber } from "../blocklist/pattern.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { compileBlocklist } from "./blocklist.ts";
import { decideSafely } from "./evaluate.ts";
import { assessSpam } from "./spam.ts";
import type {
  BlocklistMatcher,
  InboundCall,
  RoutingDecision,
  RoutingDevice,
  RoutingSnapshot,
} from "./types.ts";

export type SnapshotDeps = Pick<EdgeDeps, "db" | "relayChannel" | "logger">;

/**
 * Parsed rule documents by their JSON text. Validating a rule costs ~0.25 ms (the
 * time-zone check builds an Intl formatter), which 200 rules would pay on every
 * call; the key is the stored content itself, so an edited rule is a new key and
 * there is nothing to invalidate. Entries are frozen: snapshots share them.
 */
const parsedRules = new Map<string, RoutingRule>();
const MAX_PARSED_RULES = 5_000;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function parsedRule(doc: unknown): RoutingRule {
  const key = JSON.stringify(doc);
  const cached = parsedRules.get(key);
  if (cached) return cached;
  // Upgrades older document versions and fills defaults; throws for a broken row.
  const rule = deepFreeze(parseRoutingRule(doc));
  if (parsedRules.size >= MAX_PARSED_RULES) parsedRules.clear();
  parsedRules.set(key, rule);
  return rule;
}

/** A stored rule that cannot be evaluated; loading fails (and the call fails closed). */
export class StoredRuleError extends Error {
  override name = "StoredRuleError";
}

export interface SnapshotOptions {
  /** The caller (`From`): load only the blocklist entries that could match them. */
  caller?: string;
}

/** Every prefix an E.164 prefix entry could be of `number` ("+1", "+15", … the whole number). */
function prefixesOf(number: string): string[] {
  if (!number.startsWith("+")) return [];
  const out: string[] = [];
  for (let length = 2; length <= Math.min(number.length, 16); length++) out.push(number.slice(0, length));
  return out;
}

/** A blocklist loaded for one caller; asking it about anyone else is a bug, so it throws. */
function scopedBlocklist(inner: BlocklistMatcher, caller: string, size: number): BlocklistMatcher {
  const scope = normalizePhoneNumber(caller);
  return {
    size,
    match(number: string) {
      if (normalizePhoneNumber(number) !== scope) {
        throw new Error("this snapshot's blocklist was loaded for another caller");
      }
      return inner.match(number);
    },
  };
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
  opts: SnapshotOptions = {},
): Promise<RoutingSnapshot | null> {
  const { db } = deps;
  const didOf = db.select({ id: dids.id }).from(dids).where(eq(dids.e164, didE164));
  const caller = opts.caller === undefined ? undefined : normalizePhoneNumber(opts.caller);
  const candidates =
    caller === undefined
      ? undefined
      : or(
          and(eq(blocklist.matchType, "exact"), eq(blocklist.pattern, caller)),
          and(eq(blocklist.matchType, "prefix"), inArray(blocklist.pattern, [caller, ...prefixesOf(caller)])),
          eq(blocklist.matchType, "regex"),
        );
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
        .where(candidates)
        .orderBy(asc(blocklist.createdAt), asc(blocklist.id)),
      db.select({ n: count() }).from(blocklist),
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
  const [didRows, blockRows, blockCount, ruleRows, deviceRows, liveRows, holidayRows, numberRows] = batch;
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
      // A broken row must not route calls: it fails the load, so the call is rejected.
      return { id: r.id, name: r.name, rule: parsedRule(r.rule) };
    } catch (err) {
      throw new StoredRuleError(
        `stored routing rule ${r.id} is not valid: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  });

  return {
    did: { id: did.id, e164: did.e164, dnd: did.dnd, defaultDeviceIds: did.defaultTargets.deviceIds },
    blocklist:
      opts.caller === undefined
        ? compileBlocklist(blockRows)
        : scopedBlocklist(compileBlocklist(blockRows), opts.caller, blockCount[0]?.n ?? blockRows.length),
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
    snapshot = await loadRoutingSnapshot(deps, call.to, call.at, { caller: call.from });
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
