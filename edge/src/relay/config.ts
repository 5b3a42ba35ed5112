/**
 * What the edge tells the relay about the installation: devices (HA1s, extension,
 * effective DND, outbound policy, caller ID), the settings the relay needs
 * (realm, country, Twilio SIP Domain and inbound credentials, trusted networks,
 * recording space), and mailbox counts for MWI. Built from the database for the
 * snapshot after a hello and for the deltas pushed after every relevant change.
 */
import {
  type ConfigDelta,
  type ConfigSnapshot,
  type Db,
  devices,
  dids,
  type MailboxCount,
  parseSetting,
  type SettingKey,
  type SettingValue,
  type SyncDevice,
  type SyncSettings,
  settingDefault,
  settings,
  users,
  voicemails,
} from "@gosip/drizzle";
import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Clock } from "../platform/types.ts";

/** Settings keys whose change the relay must hear about. */
export const RELAY_SETTING_KEYS: ReadonlySet<string> = new Set<SettingKey>([
  "sip",
  "installation",
  "twilio",
  "relay",
  "storage",
  "dnd",
]);

let lastVersion = 0;

/** Config versions: the millisecond clock, made strictly increasing within this isolate/process. */
export function nextConfigVersion(clock: Clock): number {
  lastVersion = Math.max(clock.now(), lastVersion + 1);
  return lastVersion;
}

type Stored = Map<string, unknown>;

async function storedSettings(db: Db, keys: readonly SettingKey[]): Promise<Stored> {
  const rows = await db
    .select({ key: settings.key, value: settings.value })
    .from(settings)
    .where(inArray(settings.key, [...keys]));
  return new Map(rows.map((r) => [r.key, r.value]));
}

/** A stored setting, or its default when missing or unreadable (the relay still gets a valid config). */
function settingOf<K extends Exclude<SettingKey, "twilio">>(stored: Stored, key: K): SettingValue<K> {
  const value = stored.get(key);
  if (value !== undefined) {
    try {
      return parseSetting(key, value);
    } catch {
      // fall through to the default
    }
  }
  return settingDefault(key);
}

function twilioOf(stored: Stored): SettingValue<"twilio"> | null {
  const value = stored.get("twilio");
  if (value === undefined) return null;
  try {
    return parseSetting("twilio", value);
  } catch {
    return null;
  }
}

/** The relay's settings; credentials only when complete (a half-configured domain is none). */
export async function loadSyncSettings(db: Db): Promise<SyncSettings> {
  const stored = await storedSettings(db, ["sip", "installation", "twilio", "relay", "storage"]);
  const twilio = twilioOf(stored);
  const relay = settingOf(stored, "relay");
  return {
    realm: settingOf(stored, "sip").realm,
    defaultCountry: settingOf(stored, "installation").country,
    twilioDomain:
      twilio?.sipDomainName && twilio.sipUsername && twilio.sipPassword
        ? { name: twilio.sipDomainName, username: twilio.sipUsername, password: twilio.sipPassword }
        : null,
    inbound:
      relay.inboundUsername && relay.inboundPassword
        ? { username: relay.inboundUsername, password: relay.inboundPassword }
        : null,
    trustedNetworks: relay.trustedNetworks,
    minFreeBytes: settingOf(stored, "storage").minFreeBytes,
  };
}

/** Devices as the relay sees them; all of them, or those with `ids` (missing ids are skipped). */
export async function loadSyncDevices(db: Db, ids?: readonly string[]): Promise<SyncDevice[]> {
  if (ids !== undefined && ids.length === 0) return [];
  const [rows, didRows, stored] = await Promise.all([
    db
      .select({
        id: devices.id,
        userId: devices.userId,
        name: devices.name,
        extension: devices.extension,
        sipUsername: devices.sipUsername,
        ha1Md5: devices.ha1Md5,
        ha1Sha256: devices.ha1Sha256,
        enabled: devices.enabled,
        recordAlways: devices.recordAlways,
        outboundPolicy: devices.outboundPolicy,
        userDnd: users.dnd,
      })
      .from(devices)
      .innerJoin(users, eq(users.id, devices.userId))
      .where(ids === undefined ? undefined : inArray(devices.id, [...ids]))
      .orderBy(sql`length(${devices.extension})`, asc(devices.extension)),
    db.select({ e164: dids.e164, defaultTargets: dids.defaultTargets }).from(dids).orderBy(asc(dids.e164)),
    storedSettings(db, ["dnd"]),
  ]);
  const globalDnd = settingOf(stored, "dnd").enabled;
  const firstDid = didRows[0]?.e164 ?? null;
  return rows.map((d) => ({
    id: d.id,
    userId: d.userId,
    name: d.name,
    extension: d.extension,
    sipUsername: d.sipUsername,
    ha1Md5: d.ha1Md5,
    ha1Sha256: d.ha1Sha256,
    enabled: d.enabled,
    dnd: globalDnd || d.userDnd,
    recordAlways: d.recordAlways,
    outboundPolicy: d.outboundPolicy,
    // The DID that rings this device presents its calls; else the installation's first number.
    callerIdE164: didRows.find((n) => n.defaultTargets.deviceIds.includes(d.id))?.e164 ?? firstDid,
  }));
}

/** Unread/read voicemail counts for each device, from its owner's mailbox. */
export async function loadMailboxes(db: Db, userIds?: readonly string[]): Promise<MailboxCount[]> {
  if (userIds !== undefined && userIds.length === 0) return [];
  const ownerFilter = userIds === undefined ? undefined : inArray(devices.userId, [...userIds]);
  const [deviceRows, counts] = await Promise.all([
    db.select({ id: devices.id, userId: devices.userId }).from(devices).where(ownerFilter),
    db
      .select({
        userId: voicemails.userId,
        newMessages: sql<number>`sum(case when ${voicemails.readAt} is null then 1 else 0 end)`,
        oldMessages: sql<number>`sum(case when ${voicemails.readAt} is null then 0 else 1 end)`,
      })
      .from(voicemails)
      .where(
        and(
          isNull(voicemails.deletedAt),
          userIds === undefined ? undefined : inArray(voicemails.userId, [...userIds]),
        ),
      )
      .groupBy(voicemails.userId),
  ]);
  const byUser = new Map(counts.map((c) => [c.userId, c]));
  return deviceRows.map((d) => {
    const c = byUser.get(d.userId);
    return {
      deviceId: d.id,
      newMessages: Number(c?.newMessages ?? 0),
      oldMessages: Number(c?.oldMessages ?? 0),
    };
  });
}

/** The full configuration, sent after every hello. */
export async function configSnapshot(db: Db, clock: Clock): Promise<ConfigSnapshot> {
  const [deviceList, settingsDoc, mailboxes] = await Promise.all([
    loadSyncDevices(db),
    loadSyncSettings(db),
    loadMailboxes(db),
  ]);
  return {
    type: "config",
    full: true,
    version: nextConfigVersion(clock),
    devices: deviceList,
    settings: settingsDoc,
    mailboxes,
  };
}

/** A delta: these devices replaced (those still existing) or removed, and the settings when asked. */
export async function configDelta(
  db: Db,
  clock: Clock,
  change: { upsert?: readonly string[] | "all"; remove?: readonly string[]; settings?: boolean },
): Promise<ConfigDelta> {
  const upsertDevices =
    change.upsert === "all" ? await loadSyncDevices(db) : await loadSyncDevices(db, change.upsert ?? []);
  const delta: ConfigDelta = {
    type: "config",
    full: false,
    version: nextConfigVersion(clock),
    upsertDevices,
    removeDevices: [...(change.remove ?? [])],
  };
  if (change.settings) delta.settings = await loadSyncSettings(db);
  return delta;
}
