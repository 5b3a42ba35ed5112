/**
 * The relay's copy of the edge's configuration: devices (relay_devices) and the
 * other documents (settings, mailbox counts, config version, in relay_state).
 * Loaded once at start into memory, so phones register and call extension to
 * extension from it while the edge is unreachable, also after a relay restart.
 * A config message from the edge is persisted in one write batch before it is
 * applied in memory (and before the link answers config-ack), then the onChange
 * listeners hear about it. Lookups are plain map reads.
 *
 * Raw SQL over the libSQL client: the relay has no drizzle-orm operators of its
 * own, and the statements are few and hot (the table definitions stay in
 * @gosip/drizzle's relay-local.ts).
 */

import {
  type ConfigMessage,
  type Db,
  type MailboxCount,
  mailboxCountSchema,
  outboundPolicySchema,
  type SyncDevice,
  type SyncSettings,
  syncDeviceSchema,
  syncSettingsSchema,
} from "@gosip/drizzle";
import type { InStatement, Row } from "@libsql/client";
import type { Logger } from "pino";
import { z } from "zod";
import type { DeviceDirectory, DirectoryChange } from "../context.ts";

/** relay_state keys this module owns. */
export const STATE_CONFIG = "sync.config";
export const STATE_SETTINGS = "sync.settings";
export const STATE_MAILBOXES = "sync.mailboxes";
/** relay_devices has no caller-ID column; the per-device caller IDs live in one document. */
export const STATE_CALLER_IDS = "sync.callerIds";

const configDoc = z.object({ v: z.literal(1), version: z.int().min(0) });
const settingsDoc = z.object({ v: z.literal(1), settings: syncSettingsSchema });
const mailboxesDoc = z.object({ v: z.literal(1), mailboxes: z.array(mailboxCountSchema) });
const callerIdsDoc = z.object({ v: z.literal(1), callerIds: z.record(z.string(), z.string()) });

/** Fields in schema order, so two copies of one device serialise alike. */
function canonical(d: SyncDevice): string {
  return JSON.stringify([
    d.id,
    d.userId,
    d.name,
    d.extension,
    d.sipUsername,
    d.ha1Md5,
    d.ha1Sha256,
    d.enabled,
    d.dnd,
    d.recordAlways,
    d.outboundPolicy,
    d.callerIdE164,
  ]);
}

function stateUpsert(key: string, value: unknown, now: number): InStatement {
  return {
    sql: "INSERT INTO relay_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    args: [key, JSON.stringify(value), now],
  };
}

function deviceUpsert(d: SyncDevice, now: number): InStatement {
  return {
    sql: `INSERT INTO relay_devices (id, user_id, name, extension, sip_username, ha1_md5, ha1_sha256, enabled, dnd, record_always, outbound_policy, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, extension = excluded.extension,
            sip_username = excluded.sip_username, ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256,
            enabled = excluded.enabled, dnd = excluded.dnd, record_always = excluded.record_always,
            outbound_policy = excluded.outbound_policy, updated_at = excluded.updated_at`,
    args: [
      d.id,
      d.userId,
      d.name,
      d.extension,
      d.sipUsername,
      d.ha1Md5,
      d.ha1Sha256,
      d.enabled ? 1 : 0,
      d.dnd ? 1 : 0,
      d.recordAlways ? 1 : 0,
      JSON.stringify(d.outboundPolicy),
      now,
    ],
  };
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => "?").join(", ");
}

function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The device directory over the relay's libSQL file. Build it with `LocalDirectory.load`. */
export class LocalDirectory implements DeviceDirectory {
  #devices = new Map<string, SyncDevice>();
  #bySip = new Map<string, SyncDevice>();
  #byExtension = new Map<string, SyncDevice>();
  #list: readonly SyncDevice[] = [];
  #settings: SyncSettings | undefined;
  #mailboxes = new Map<string, MailboxCount>();
  #version: number | undefined;
  #listeners: ((change: DirectoryChange) => void)[] = [];
  /** Config writes run one after the other, so a delta never overtakes the snapshot before it. */
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** Reads the cached configuration; rows that no longer validate are skipped with a warning. */
  static async load(db: Db, log: Logger, now: () => number = Date.now): Promise<LocalDirectory> {
    const dir = new LocalDirectory(db, log, now);
    await dir.#load();
    return dir;
  }

  async #load(): Promise<void> {
    const client = this.db.$client;
    const state = await client.execute({
      sql: `SELECT key, value FROM relay_state WHERE key IN (${placeholders(4)})`,
      args: [STATE_CONFIG, STATE_SETTINGS, STATE_MAILBOXES, STATE_CALLER_IDS],
    });
    const docs = new Map<string, unknown>();
    for (const row of state.rows) docs.set(String(row.key), parseJson(row.value));
    const doc = <T>(key: string, schema: z.ZodType<T>): T | undefined => {
      if (!docs.has(key)) return undefined;
      const r = schema.safeParse(docs.get(key));
      if (r.success) return r.data;
      this.log.warn({ key }, "relay_state document does not validate; ignored until the edge sends it again");
      return undefined;
    };
    this.#version = doc(STATE_CONFIG, configDoc)?.version;
    this.#settings = doc(STATE_SETTINGS, settingsDoc)?.settings;
    for (const m of doc(STATE_MAILBOXES, mailboxesDoc)?.mailboxes ?? []) this.#mailboxes.set(m.deviceId, m);
    const callerIds = doc(STATE_CALLER_IDS, callerIdsDoc)?.callerIds ?? {};

    const rows = await client.execute(
      "SELECT id, user_id, name, extension, sip_username, ha1_md5, ha1_sha256, enabled, dnd, record_always, outbound_policy FROM relay_devices",
    );
    for (const row of rows.rows) {
      const device = this.#decode(row, callerIds);
      if (device) this.#devices.set(device.id, device);
    }
    this.#reindex();
  }

  #decode(row: Row, callerIds: Record<string, string>): SyncDevice | undefined {
    const id = String(row.id);
    const r = syncDeviceSchema.safeParse({
      id,
      userId: row.user_id === null ? null : String(row.user_id),
      name: String(row.name),
      extension: String(row.extension),
      sipUsername: String(row.sip_username),
      ha1Md5: String(row.ha1_md5),
      ha1Sha256: String(row.ha1_sha256),
      enabled: Number(row.enabled) === 1,
      dnd: Number(row.dnd) === 1,
      recordAlways: Number(row.record_always) === 1,
      outboundPolicy: outboundPolicySchema.safeParse(parseJson(row.outbound_policy)).data,
      callerIdE164: callerIds[id] ?? null,
    });
    if (r.success) return r.data;
    this.log.warn({ deviceId: id }, "cached device does not validate; skipped until the edge sends it again");
    return undefined;
  }

  #reindex(): void {
    this.#bySip = new Map();
    this.#byExtension = new Map();
    for (const d of this.#devices.values()) {
      this.#bySip.set(d.sipUsername, d);
      this.#byExtension.set(d.extension, d);
    }
    this.#list = Object.freeze([...this.#devices.values()]);
  }

  byId(id: string): SyncDevice | undefined {
    return this.#devices.get(id);
  }
  bySipUsername(username: string): SyncDevice | undefined {
    return this.#bySip.get(username);
  }
  byExtension(extension: string): SyncDevice | undefined {
    return this.#byExtension.get(extension);
  }
  all(): readonly SyncDevice[] {
    return this.#list;
  }
  settings(): SyncSettings | undefined {
    return this.#settings;
  }
  mailbox(deviceId: string): MailboxCount | undefined {
    return this.#mailboxes.get(deviceId);
  }
  onChange(listener: (change: DirectoryChange) => void): void {
    this.#listeners.push(listener);
  }

  /** The version of the last config message applied (sent in hello), undefined before the first snapshot. */
  configVersion(): number | undefined {
    return this.#version;
  }

  /**
   * Applies a snapshot (replaces everything: devices not in it are removed) or a delta,
   * persisted in one batch; resolves once stored and applied in memory. Rejects (and
   * changes nothing) when the batch fails, e.g. a delta whose extension collides with
   * a device it does not mention: the link then asks for a fresh snapshot.
   */
  applyConfig(message: ConfigMessage): Promise<DirectoryChange> {
    const run = this.#writes.then(() => this.#applyConfig(message));
    this.#writes = run.catch(() => undefined);
    return run;
  }

  async #applyConfig(message: ConfigMessage): Promise<DirectoryChange> {
    const now = this.now();
    const next = new Map(this.#devices);
    const removed: string[] = [];
    const upsertList = message.full ? message.devices : message.upsertDevices;
    if (message.full) {
      const keep = new Set(message.devices.map((d) => d.id));
      for (const id of this.#devices.keys()) if (!keep.has(id)) removed.push(id);
    } else {
      const upserting = new Set(message.upsertDevices.map((d) => d.id));
      for (const id of message.removeDevices)
        if (this.#devices.has(id) && !upserting.has(id)) removed.push(id);
    }
    for (const id of removed) next.delete(id);
    const upserted: SyncDevice[] = [];
    for (const d of upsertList) {
      const old = next.get(d.id);
      // The last copy of an id in one message wins, as it would row by row.
      if (!old || canonical(old) !== canonical(d)) upserted.push(d);
      next.set(d.id, d);
    }
    const changedIds = [...new Set(upserted.map((d) => d.id))];
    const finalUpserts = changedIds.map((id) => next.get(id)).filter((d): d is SyncDevice => d !== undefined);

    const nextSettings = message.full ? message.settings : (message.settings ?? this.#settings);
    const settingsChanged =
      nextSettings !== undefined &&
      (this.#settings === undefined || JSON.stringify(nextSettings) !== JSON.stringify(this.#settings));

    const statements: InStatement[] = [];
    if (removed.length > 0) {
      // Deleting a device cascades to its registrations (relay_registrations.device_id).
      statements.push({
        sql: `DELETE FROM relay_devices WHERE id IN (${placeholders(removed.length)})`,
        args: removed,
      });
    }
    if (finalUpserts.length > 0) {
      // Frees the unique extension/username of changed rows first, so two devices can swap
      // extensions in one message. An update (never a delete) keeps their registrations.
      statements.push({
        sql: `UPDATE relay_devices SET extension = '~' || id, sip_username = '~' || id WHERE id IN (${placeholders(changedIds.length)})`,
        args: changedIds,
      });
      for (const d of finalUpserts) statements.push(deviceUpsert(d, now));
    }
    const callerIds: Record<string, string> = {};
    for (const d of next.values()) if (d.callerIdE164 !== null) callerIds[d.id] = d.callerIdE164;
    if (finalUpserts.length > 0 || removed.length > 0) {
      statements.push(stateUpsert(STATE_CALLER_IDS, { v: 1, callerIds }, now));
    }
    if (settingsChanged) statements.push(stateUpsert(STATE_SETTINGS, { v: 1, settings: nextSettings }, now));
    let nextMailboxes: Map<string, MailboxCount> | undefined;
    if (message.full) {
      nextMailboxes = new Map(message.mailboxes.map((m) => [m.deviceId, m]));
      statements.push(stateUpsert(STATE_MAILBOXES, { v: 1, mailboxes: [...nextMailboxes.values()] }, now));
    }
    statements.push(stateUpsert(STATE_CONFIG, { v: 1, version: message.version }, now));

    await this.db.$client.batch(statements, "write");

    this.#devices = next;
    this.#reindex();
    if (settingsChanged) this.#settings = nextSettings;
    if (nextMailboxes) this.#mailboxes = nextMailboxes;
    this.#version = message.version;
    const change: DirectoryChange = { upserted: finalUpserts, removed, settingsChanged };
    if (finalUpserts.length > 0 || removed.length > 0 || settingsChanged) this.#notify(change);
    return change;
  }

  /** Stores new voicemail counts (the edge's `mwi` command) before the MWI feature sends NOTIFYs. */
  applyMailboxes(counts: readonly MailboxCount[]): Promise<void> {
    const run = this.#writes.then(async () => {
      const next = new Map(this.#mailboxes);
      for (const m of counts) next.set(m.deviceId, m);
      await this.db.$client.batch(
        [stateUpsert(STATE_MAILBOXES, { v: 1, mailboxes: [...next.values()] }, this.now())],
        "write",
      );
      this.#mailboxes = next;
    });
    this.#writes = run.catch(() => undefined);
    return run;
  }

  #notify(change: DirectoryChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        // One feature's bug must not stop the others from hearing about the change.
        this.log.error({ err }, "directory change listener failed");
      }
    }
  }
}
