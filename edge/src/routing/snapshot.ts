/**
 * Loads what one routing decision reads (RoutingSnapshot) from the database:
 * the DID, the blocklist, the screening / DND / installation settings, the
 * enabled rules of the DID and the global ones in evaluation order, devices with
 * their owner's DND and whether they are registered, holidays and contacts'
 * numbers, plus whether the relay is connected.
 *
 * Live state (the DID, devices, registrations) is read on every call in one batch.
 * What only admins change (10,000 blocklist entries compiled, 200 rules parsed,
 * holidays, contacts, settings) is kept per database handle and reused while the
 * `routing` revision — bumped by triggers on every write to those tables — is the
 * same: the same batch reads it, so an edit made a moment ago routes the next call.
 *
 * `routeInboundCall` is what the voice webhook needs in one call: load, decide,
 * and fail closed on any error (including the database failing).
 */
import {
  blocklist,
  contactNumbers,
  type Db,
  devices,
  dids,
  holidays,
  parseRoutingRule,
  ROUTING_REVISION,
  type RoutingRule,
  registrations,
  revisions,
  routingRules,
  users,
} from "@gosip/drizzle";
import { asc, eq, gt } from "drizzle-orm";
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
  /** The caller (`From`). Kept for callers' clarity; the cached blocklist answers for anyone. */
  caller?: string;
}

/** A rule as cached: parsed once, or the reason it cannot be (only its own DID's calls fail). */
interface CachedRule {
  id: string;
  name: string;
  didId: string | null;
  rule: RoutingRule | null;
  error: string | null;
}

/**
 * The part of a snapshot that changes only when an admin edits something: the compiled
 * blocklist (all entries), every enabled rule parsed, holidays, contacts, screening, DND
 * and installation settings. Triggers (migration 0003) bump the `routing` revision on
 * any write to those tables, so one tiny query per call tells whether this copy is
 * current, whoever wrote (this process, another isolate, a hand edit).
 */
interface StaticRouting {
  revision: number;
  blocklist: BlocklistMatcher;
  rules: CachedRule[];
  holidays: RoutingSnapshot["holidays"];
  contacts: Map<string, Set<string>>;
  screening: RoutingSnapshot["screening"];
  globalDnd: boolean;
  timeZone: string;
}

const staticCache = new WeakMap<Db, StaticRouting>();

/** The current revision of the routing data (0 when the counter row is missing). */
function revisionQuery(db: Db) {
  return db
    .select({ revision: revisions.revision })
    .from(revisions)
    .where(eq(revisions.name, ROUTING_REVISION));
}

async function loadStatic(db: Db): Promise<StaticRouting> {
  const [batch, screening, dnd, installation] = await Promise.all([
    db.batch([
      revisionQuery(db),
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
        .select({
          id: routingRules.id,
          name: routingRules.name,
          didId: routingRules.didId,
          rule: routingRules.rule,
        })
        .from(routingRules)
        .where(eq(routingRules.enabled, true))
        .orderBy(asc(routingRules.priority), asc(routingRules.createdAt), asc(routingRules.id)),
      db.select({ date: holidays.date, recurring: holidays.recurring }).from(holidays),
      db.select({ contactId: contactNumbers.contactId, e164: contactNumbers.e164 }).from(contactNumbers),
    ]),
    readSetting(db, "callScreening"),
    readSetting(db, "dnd"),
    readSetting(db, "installation"),
  ]);
  const [revisionRows, blockRows, ruleRows, holidayRows, numberRows] = batch;

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
  const rules = ruleRows.map((r): CachedRule => {
    try {
      return { id: r.id, name: r.name, didId: r.didId, rule: parsedRule(r.rule), error: null };
    } catch (err) {
      return {
        id: r.id,
        name: r.name,
        didId: r.didId,
        rule: null,
        error: err instanceof Error ? err.message : String(err),
      };
    }
  });
  return {
    revision: revisionRows[0]?.revision ?? 0,
    blocklist: compileBlocklist(blockRows),
    rules,
    holidays: { dates, recurring },
    contacts,
    screening: {
      rejectAnonymous: screening.rejectAnonymous,
      spamFilter: screening.spamFilter,
      spamThreshold: screening.spamThreshold,
    },
    globalDnd: dnd.enabled,
    timeZone: installation.timeZone,
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
  _opts: SnapshotOptions = {},
): Promise<RoutingSnapshot | null> {
  const { db } = deps;
  // Live state every call: the DID, devices with their owners' DND, registrations, the revision.
  const [batch, relayOnline] = await Promise.all([
    db.batch([
      revisionQuery(db),
      db
        .select({ id: dids.id, e164: dids.e164, dnd: dids.dnd, defaultTargets: dids.defaultTargets })
        .from(dids)
        .where(eq(dids.e164, didE164)),
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
    ]),
    relayConnected(deps),
  ]);
  const [revisionRows, didRows, deviceRows, liveRows] = batch;
  const did = didRows[0];
  if (!did) return null;

  const revision = revisionRows[0]?.revision ?? 0;
  let cached = staticCache.get(db);
  if (!cached || cached.revision !== revision) {
    cached = await loadStatic(db);
    staticCache.set(db, cached);
  }

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

  const rules: RoutingSnapshot["rules"][number][] = [];
  for (const r of cached.rules) {
    if (r.didId !== null && r.didId !== did.id) continue;
    // A broken row must not route calls: it fails the load, so the call is rejected.
    if (!r.rule)
      throw new StoredRuleError(`stored routing rule ${r.id} is not valid: ${r.error ?? "unreadable"}`);
    rules.push({ id: r.id, name: r.name, rule: r.rule });
  }

  return {
    did: { id: did.id, e164: did.e164, dnd: did.dnd, defaultDeviceIds: did.defaultTargets.deviceIds },
    blocklist: cached.blocklist,
    screening: cached.screening,
    globalDnd: cached.globalDnd,
    rules,
    devices: deviceMap,
    timeZone: cached.timeZone,
    holidays: cached.holidays,
    contacts: cached.contacts,
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
