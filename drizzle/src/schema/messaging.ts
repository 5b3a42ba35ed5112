// SMS/MMS: messages, their stored media, auto-replies and the auto-reply ledger
// that enforces "at most one auto-reply per sender per 30 minutes".
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { users } from "./auth.ts";
import { bool, createdAt, idColumn, timestamp, updatedAt } from "./columns.ts";
import { dids } from "./numbers.ts";

export const messageDirections = ["inbound", "outbound"] as const;
/** Twilio's message statuses, plus "received" for inbound ones. */
export const messageStatuses = [
  "received",
  "queued",
  "sending",
  "sent",
  "delivered",
  "undelivered",
  "failed",
] as const;
export type MessageStatus = (typeof messageStatuses)[number];

export const messages = sqliteTable(
  "messages",
  {
    id: idColumn(),
    direction: text("direction", { enum: messageDirections }).notNull(),
    didId: text("did_id").references(() => dids.id, { onDelete: "set null" }),
    fromNumber: text("from_number").notNull(),
    toNumber: text("to_number").notNull(),
    /** The other party (from for inbound, to for outbound): the conversation key. */
    peerNumber: text("peer_number").notNull(),
    body: text("body").notNull().default(""),
    status: text("status", { enum: messageStatuses }).notNull(),
    /** Twilio error code of a failed/undelivered message. */
    errorCode: integer("error_code"),
    errorMessage: text("error_message"),
    /** Unique: a duplicate webhook never creates a second row. Null until Twilio accepted an outbound one. */
    twilioMessageSid: text("twilio_message_sid").unique(),
    /** Who sent it from the UI (outbound). */
    sentByUserId: text("sent_by_user_id").references(() => users.id, { onDelete: "set null" }),
    isAutoReply: bool("is_auto_reply").notNull().default(false),
    readAt: timestamp("read_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("messages_conversation_idx").on(t.didId, t.peerNumber, t.createdAt),
    index("messages_created_idx").on(t.createdAt),
  ],
);

/** Media of an MMS, copied into GoSIP's blob store (Twilio media URLs need credentials). */
export const messageMedia = sqliteTable(
  "message_media",
  {
    id: idColumn(),
    messageId: text("message_id")
      .notNull()
      .references(() => messages.id, { onDelete: "cascade" }),
    blobKey: text("blob_key").notNull().unique(),
    contentType: text("content_type").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    /** Twilio Media SID (ME...) of an inbound item. */
    twilioMediaSid: text("twilio_media_sid"),
    createdAt: createdAt(),
  },
  (t) => [index("message_media_message_idx").on(t.messageId)],
);

export const autoReplyTriggers = ["always", "after_hours", "dnd", "keyword"] as const;

export const autoReplies = sqliteTable(
  "auto_replies",
  {
    id: idColumn(),
    didId: text("did_id")
      .notNull()
      .references(() => dids.id, { onDelete: "cascade" }),
    trigger: text("trigger", { enum: autoReplyTriggers }).notNull(),
    /** For trigger "keyword": matched case-insensitively as a whole word. */
    keyword: text("keyword"),
    text: text("text").notNull(),
    enabled: bool("enabled").notNull().default(true),
    /** Lower wins when several match. */
    priority: integer("priority").notNull().default(100),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("auto_replies_did_idx").on(t.didId, t.priority)],
);

/** Last auto-reply per (DID, sender): claim with an upsert guarded by `last_sent_at`. */
export const autoReplyLedger = sqliteTable(
  "auto_reply_ledger",
  {
    didId: text("did_id")
      .notNull()
      .references(() => dids.id, { onDelete: "cascade" }),
    sender: text("sender").notNull(),
    lastSentAt: timestamp("last_sent_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.didId, t.sender] })],
);
