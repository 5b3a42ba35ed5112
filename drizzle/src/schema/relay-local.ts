// Tables of the relay's own libSQL file (DESIGN "Local state"): the device and
// credential cache phones authenticate against while the edge is unreachable, the
// authoritative registrations, and configuration received from the edge. They exist
// in every database (one schema, one migration history) but only the relay fills them.
// The durable outbox of relay events is `relayOutbox` (operations.ts).
import { index, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { OutboundPolicy } from "../json/device.ts";
import type { RelayStateDocument } from "../json/operations.ts";
import { bool, idColumn, updatedAt } from "./columns.ts";
import { contactColumns } from "./registrations.ts";

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
