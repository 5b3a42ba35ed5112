// Background work and bookkeeping: the durable outbox (jobs), webhook idempotency,
// device/system event logs, notification preferences, and the relay's own outbox.
import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { EventData, JobPayload, RelayOutboxEvent } from "../json/operations.ts";
import { users } from "./auth.ts";
import { bool, createdAt, idColumn, timestamp, updatedAt } from "./columns.ts";
import { devices } from "./devices.ts";

export const jobStatuses = ["pending", "running", "succeeded", "failed", "dead"] as const;
export type JobStatus = (typeof jobStatuses)[number];

/**
 * Durable outbox: every call to Twilio, email, Gotify or the relay that must not be
 * lost or sent twice. Workers claim due rows (status pending, nextAttemptAt <= now)
 * by setting status running and `lockedUntil`; failures back off via `nextAttemptAt`.
 */
export const jobs = sqliteTable(
  "jobs",
  {
    id: idColumn(),
    /** What to do, e.g. "twilio.sms.send", "email.send", "gotify.push", "twilio.recording.delete". */
    kind: text("kind").notNull(),
    payload: text("payload", { mode: "json" }).$type<JobPayload>().notNull(),
    status: text("status", { enum: jobStatuses }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(10),
    nextAttemptAt: timestamp("next_attempt_at")
      .notNull()
      .$defaultFn(() => new Date()),
    /** Lease of a running job; an expired lease makes it claimable again (crashed worker). */
    lockedUntil: timestamp("locked_until"),
    lastError: text("last_error"),
    /** Enqueueing twice with the same key is a no-op (insert ... on conflict do nothing). */
    idempotencyKey: text("idempotency_key").notNull().unique(),
    completedAt: timestamp("completed_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("jobs_due_idx").on(t.status, t.nextAttemptAt), index("jobs_kind_idx").on(t.kind, t.status)],
);

/**
 * Webhooks and relay events already applied. Insert first (on conflict do nothing):
 * no row inserted means a duplicate. Twilio: sid = CallSid/MessageSid/RecordingSid;
 * relay events: kind "relay.<type>", sid = the event's idempotency key.
 */
export const processedWebhooks = sqliteTable(
  "processed_webhooks",
  {
    kind: text("kind").notNull(),
    sid: text("sid").notNull(),
    processedAt: timestamp("processed_at")
      .notNull()
      .$defaultFn(() => new Date()),
  },
  (t) => [primaryKey({ columns: [t.kind, t.sid] }), index("processed_webhooks_at_idx").on(t.processedAt)],
);

export const eventSeverities = ["debug", "info", "warning", "error", "critical"] as const;
export type EventSeverity = (typeof eventSeverities)[number];

export const deviceEvents = sqliteTable(
  "device_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    deviceId: text("device_id")
      .notNull()
      .references(() => devices.id, { onDelete: "cascade" }),
    /** e.g. "registered", "unregistered", "offline", "auth_failed", "banned". */
    type: text("type").notNull(),
    severity: text("severity", { enum: eventSeverities }).notNull().default("info"),
    data: text("data", { mode: "json" })
      .$type<EventData>()
      .notNull()
      .$defaultFn(() => ({ v: 1 })),
    at: timestamp("at")
      .notNull()
      .$defaultFn(() => new Date()),
  },
  (t) => [index("device_events_device_at_idx").on(t.deviceId, t.at)],
);

export const systemEvents = sqliteTable(
  "system_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** e.g. "relay.connected", "twilio.degraded", "storage.low", "email.failed", "routing.error". */
    type: text("type").notNull(),
    severity: text("severity", { enum: eventSeverities }).notNull().default("info"),
    data: text("data", { mode: "json" })
      .$type<EventData>()
      .notNull()
      .$defaultFn(() => ({ v: 1 })),
    at: timestamp("at")
      .notNull()
      .$defaultFn(() => new Date()),
  },
  (t) => [index("system_events_at_idx").on(t.at), index("system_events_type_at_idx").on(t.type, t.at)],
);

export const notificationEventTypes = [
  "voicemail",
  "missed_call",
  "sms",
  "device_offline",
  "service_degraded",
  "storage_high",
] as const;
export type NotificationEventType = (typeof notificationEventTypes)[number];

/** Per user and event type: which channels, and quiet hours (installation time zone) when nothing is pushed. */
export const notificationPreferences = sqliteTable(
  "notification_preferences",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    eventType: text("event_type", { enum: notificationEventTypes }).notNull(),
    email: bool("email").notNull().default(true),
    gotify: bool("gotify").notNull().default(false),
    /** HH:MM; both set or both null. An end before the start runs past midnight. */
    quietHoursStart: text("quiet_hours_start"),
    quietHoursEnd: text("quiet_hours_end"),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.eventType] }),
    check(
      "notification_preferences_quiet_hours_pair",
      sql`(${t.quietHoursStart} is null) = (${t.quietHoursEnd} is null)`,
    ),
  ],
);

/**
 * The relay's durable outbox (lives in the relay's local libSQL file): events sent to
 * the edge, kept until acknowledged and resent after a reconnect, in `seq` order.
 */
export const relayOutbox = sqliteTable(
  "relay_outbox",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    idempotencyKey: text("idempotency_key").notNull().unique(),
    event: text("event", { mode: "json" }).$type<RelayOutboxEvent>().notNull(),
    attempts: integer("attempts").notNull().default(0),
    createdAt: createdAt(),
    ackedAt: timestamp("acked_at"),
  },
  (t) => [index("relay_outbox_pending_idx").on(t.ackedAt, t.seq)],
);

/** The revision counter of everything a routing decision reads that only admins change. */
export const ROUTING_REVISION = "routing";

/**
 * Change counters kept by triggers (migration 0003): every insert, update or delete on
 * blocklist, routing_rules, holidays, contacts, contact_numbers and settings bumps the
 * `routing` row, so the edge can keep a compiled blocklist and parsed rules and check
 * with one tiny query that they are current, whoever wrote (API, import, another isolate).
 */
export const revisions = sqliteTable("revisions", {
  name: text("name").primaryKey(),
  revision: integer("revision").notNull().default(0),
});
