// Live SIP registrations (contacts) of devices, written by the relay and mirrored
// to the edge for the dashboard. Several contacts per device are allowed.
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, idColumn, timestamp } from "./columns.ts";
import { devices } from "./devices.ts";

export const sipTransports = ["udp", "tcp", "tls", "ws", "wss"] as const;
export type SipTransport = (typeof sipTransports)[number];

/**
 * Columns of one registered contact, shared by the edge's mirror (`registrations`)
 * and the relay's authoritative copy (`relayRegistrations`). A function, because
 * drizzle column builders belong to one table each.
 */
export function contactColumns() {
  return {
    /** The Contact URI the device registered (where to send INVITEs). */
    contactUri: text("contact_uri").notNull(),
    /** Where the REGISTER actually came from (NAT: differs from the Contact). */
    sourceAddress: text("source_address").notNull(),
    sourcePort: integer("source_port").notNull(),
    transport: text("transport", { enum: sipTransports }).notNull(),
    userAgent: text("user_agent"),
    /** RFC 5626 +sip.instance, when the device sends one. */
    instanceId: text("instance_id"),
    callId: text("call_id"),
    cseq: integer("cseq"),
    /** Granted expiry, clamped to [60, 3600] s (shorter for UDP phones behind NAT). */
    expiresAt: timestamp("expires_at").notNull(),
    /** Last successful REGISTER refresh or keepalive answer. */
    lastSeenAt: timestamp("last_seen_at")
      .notNull()
      .$defaultFn(() => new Date()),
    createdAt: createdAt(),
  };
}

export const registrations = sqliteTable(
  "registrations",
  {
    id: idColumn(),
    deviceId: text("device_id")
      .notNull()
      .references(() => devices.id, { onDelete: "cascade" }),
    ...contactColumns(),
  },
  (t) => [
    uniqueIndex("registrations_device_contact_uq").on(t.deviceId, t.contactUri),
    index("registrations_expires_idx").on(t.expiresAt),
  ],
);
