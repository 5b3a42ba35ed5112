// Tables of the relay's own libSQL file (DESIGN "Local state"): the device and
// credential cache phones authenticate against while the edge is unreachable, the
// authoritative registrations, and configuration received from the edge. They exist
// in every database (one schema, one migration history) but only the relay fills them.
// The durable outbox of relay events is `relayOutbox` (operations.ts).
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { OutboundPolicy } from "../json/device.ts";
import type { RelayStateDocument } from "../json/operations.ts";
import { recordingTriggers } from "./calls.ts";
import { bool, createdAt, idColumn, timestamp, updatedAt } from "./columns.ts";
import { contactColumns } from "./registrations.ts";

/** Why a source address was banned. */
export const banReasons = ["auth_failures", "rate_limit", "scanner"] as const;

/** A device as last sent by the edge (snapshot or delta); `id` is the edge's device id. */
export const relayDevices = sqliteTable("relay_devices", {
  id: text("id").primaryKey(),
  userId: text("user_id"),
  name: text("name").notNull(),
  extension: text("extension").notNull().unique(),
  sipUsername: text("sip_username").notNull().unique(),
  ha1Md5: text("ha1_md5").notNull(),
  ha1Sha256: text("ha1_sha256").notNull(),
  enabled: bool("enabled").notNull().default(true),
  /** Effective do-not-disturb for this device (global, user or device DND as computed by the edge). */
  dnd: bool("dnd").notNull().default(false),
  recordAlways: bool("record_always").notNull().default(false),
  outboundPolicy: text("outbound_policy", { mode: "json" }).$type<OutboundPolicy>().notNull(),
  updatedAt: updatedAt(),
});

/** Contacts registered at this relay (survive a relay restart). */
export const relayRegistrations = sqliteTable(
  "relay_registrations",
  {
    id: idColumn(),
    deviceId: text("device_id")
      .notNull()
      .references(() => relayDevices.id, { onDelete: "cascade" }),
    ...contactColumns(),
  },
  (t) => [
    uniqueIndex("relay_registrations_device_contact_uq").on(t.deviceId, t.contactUri),
    index("relay_registrations_expires_idx").on(t.expiresAt),
  ],
);

/**
 * Configuration from the edge other than devices (DIDs, Twilio SIP Domain
 * credentials, snapshot version ...), one versioned document per key.
 */
export const relayState = sqliteTable("relay_state", {
  key: text("key").primaryKey(),
  value: text("value", { mode: "json" }).$type<RelayStateDocument>().notNull(),
  updatedAt: updatedAt(),
});

/** Source addresses the relay's scanner defence banned (survive a relay restart); escalation remembers `level`. */
export const relayBans = sqliteTable("relay_bans", {
  address: text("address").primaryKey(),
  level: integer("level").notNull().default(1),
  reason: text("reason", { enum: banReasons }).notNull(),
  failures: integer("failures").notNull().default(0),
  bannedAt: timestamp("banned_at").notNull(),
  until: timestamp("until").notNull(),
  updatedAt: updatedAt(),
});

/**
 * Call recordings made on this relay, kept on local disk until the edge confirmed it
 * stored them (`confirmedAt`); `path` is relative to the relay's recording directory.
 */
export const relayRecordings = sqliteTable(
  "relay_recordings",
  {
    id: idColumn(),
    callId: text("call_id").notNull(),
    deviceId: text("device_id"),
    trigger: text("trigger", { enum: recordingTriggers }).notNull(),
    status: text("status", { enum: ["recording", "ready", "uploaded", "failed"] })
      .notNull()
      .default("recording"),
    path: text("path"),
    contentType: text("content_type"),
    sizeBytes: integer("size_bytes"),
    sha256: text("sha256"),
    durationSeconds: integer("duration_seconds"),
    startedAt: timestamp("started_at").notNull(),
    endedAt: timestamp("ended_at"),
    confirmedAt: timestamp("confirmed_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("relay_recordings_status_idx").on(t.status)],
);
