// Call history (CDRs), call recordings and voicemails.
import { type AnySQLiteColumn, index, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { CallLadder } from "../json/call-ladder.ts";
import { users } from "./auth.ts";
import { createdAt, idColumn, timestamp, updatedAt } from "./columns.ts";
import { devices } from "./devices.ts";
import { dids, routingRules } from "./numbers.ts";

export const callDirections = ["inbound", "outbound", "internal"] as const;
/** Where the call is now: live calls have status ringing or answered. */
export const callStatuses = ["ringing", "answered", "ended"] as const;
/** How the call ended (set with status "ended"). */
export const callDispositions = [
  "answered",
  "missed",
  "voicemail",
  "forwarded",
  "rejected",
  "blocked",
  "busy",
  "canceled",
  "failed",
] as const;
export type CallDisposition = (typeof callDispositions)[number];

export const cdrs = sqliteTable(
  "cdrs",
  {
    id: idColumn(),
    direction: text("direction", { enum: callDirections }).notNull(),
    /** E.164, an extension for internal calls, or "anonymous". */
    fromNumber: text("from_number").notNull(),
    toNumber: text("to_number").notNull(),
    didId: text("did_id").references(() => dids.id, { onDelete: "set null" }),
    /** The device that answered (inbound) or placed the call (outbound, internal). */
    deviceId: text("device_id").references(() => devices.id, { onDelete: "set null" }),
    /** Owner for the user portal ("my calls"): the device's user at the time of the call. */
    userId: text("user_id").references(() => users.id, { onDelete: "set null" }),
    status: text("status", { enum: callStatuses }).notNull().default("ringing"),
    disposition: text("disposition", { enum: callDispositions }),
    /** Why it was blocked or rejected, e.g. "blocklist", "anonymous", "spam", "dnd", "rule", "policy". */
    reason: text("reason"),
    /** The rule that routed it, when one matched. */
    ruleId: text("rule_id").references(() => routingRules.id, { onDelete: "set null" }),
    startedAt: timestamp("started_at").notNull(),
    answeredAt: timestamp("answered_at"),
    endedAt: timestamp("ended_at"),
    /** Talk time in seconds (answer to hang-up), 0 when not answered. */
    durationSeconds: integer("duration_seconds").notNull().default(0),
    /** Spam score in [0, 1] from STIR/SHAKEN and add-on data (SPEC §2 step 3). */
    spamScore: real("spam_score"),
    twilioCallSid: text("twilio_call_sid").unique(),
    /** The relay's call id (its Call-ID/dialog id), to merge relay events into this row. */
    relayCallId: text("relay_call_id").unique(),
    /** SIP status of the final response, when one was relevant (486, 603, ...). */
    sipStatus: integer("sip_status"),
    recordingId: text("recording_id").references((): AnySQLiteColumn => recordings.id, {
      onDelete: "set null",
    }),
    voicemailId: text("voicemail_id").references((): AnySQLiteColumn => voicemails.id, {
      onDelete: "set null",
    }),
    /** Who hung up an answered call: "caller", "callee" or "relay". */
    hangupBy: text("hangup_by", { enum: ["caller", "callee", "relay"] }),
    /** The call's SIP ladder from the relay (methods and statuses per leg, no bodies), for the UI. */
    sipLadder: text("sip_ladder", { mode: "json" }).$type<CallLadder>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("cdrs_started_idx").on(t.startedAt),
    index("cdrs_user_started_idx").on(t.userId, t.startedAt),
    index("cdrs_did_started_idx").on(t.didId, t.startedAt),
    index("cdrs_from_idx").on(t.fromNumber),
    index("cdrs_status_idx").on(t.status),
  ],
);

export const recordingTriggers = ["on_demand", "device", "rule"] as const;
export const recordingStatuses = ["recording", "uploading", "stored", "failed", "skipped"] as const;

export const recordings = sqliteTable(
  "recordings",
  {
    id: idColumn(),
    cdrId: text("cdr_id").references((): AnySQLiteColumn => cdrs.id, { onDelete: "set null" }),
    deviceId: text("device_id").references(() => devices.id, { onDelete: "set null" }),
    userId: text("user_id").references(() => users.id, { onDelete: "set null" }),
    trigger: text("trigger", { enum: recordingTriggers }).notNull(),
    status: text("status", { enum: recordingStatuses }).notNull().default("recording"),
    /** Key in GoSIP's blob store once uploaded. */
    blobKey: text("blob_key").unique(),
    contentType: text("content_type"),
    sizeBytes: integer("size_bytes"),
    durationSeconds: integer("duration_seconds"),
    /** Why it failed or was skipped (e.g. "storage_low"). */
    error: text("error"),
    /** Id the relay uses for the recording, to match its "recording ready" event. */
    relayRecordingId: text("relay_recording_id").unique(),
    startedAt: timestamp("started_at").notNull(),
    endedAt: timestamp("ended_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("recordings_user_created_idx").on(t.userId, t.createdAt),
    index("recordings_cdr_idx").on(t.cdrId),
  ],
);

/** "pending": Twilio may still send it; "too_long": over Twilio's 120 s limit; "none": no transcription. */
export const transcriptStatuses = ["pending", "completed", "failed", "too_long", "none"] as const;
export type TranscriptStatus = (typeof transcriptStatuses)[number];
/** Audio copy from Twilio into GoSIP's storage. */
export const voicemailAudioStatuses = ["pending", "stored", "failed"] as const;

export const voicemails = sqliteTable(
  "voicemails",
  {
    id: idColumn(),
    didId: text("did_id").references(() => dids.id, { onDelete: "set null" }),
    /** Mailbox owner for the user portal and MWI, when the call targeted a user's devices. */
    userId: text("user_id").references(() => users.id, { onDelete: "set null" }),
    cdrId: text("cdr_id").references((): AnySQLiteColumn => cdrs.id, { onDelete: "set null" }),
    fromNumber: text("from_number").notNull(),
    durationSeconds: integer("duration_seconds").notNull(),
    audioStatus: text("audio_status", { enum: voicemailAudioStatuses }).notNull().default("pending"),
    blobKey: text("blob_key").unique(),
    contentType: text("content_type"),
    sizeBytes: integer("size_bytes"),
    transcript: text("transcript"),
    transcriptStatus: text("transcript_status", { enum: transcriptStatuses }).notNull().default("pending"),
    twilioRecordingSid: text("twilio_recording_sid").unique(),
    twilioCallSid: text("twilio_call_sid"),
    /** When the audio was removed from Twilio after the copy was stored. */
    twilioDeletedAt: timestamp("twilio_deleted_at"),
    readAt: timestamp("read_at"),
    /** Soft delete: hidden from lists and MWI counts; purged later with the blob. */
    deletedAt: timestamp("deleted_at"),
    receivedAt: timestamp("received_at").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("voicemails_user_received_idx").on(t.userId, t.receivedAt),
    index("voicemails_did_received_idx").on(t.didId, t.receivedAt),
  ],
);

/**
 * Source addresses banned by the relay's scanner defence, mirrored from its events so
 * an admin can list them and lift one (GET/DELETE /api/relay/bans).
 */
export const sipBans = sqliteTable("sip_bans", {
  address: text("address").primaryKey(),
  level: integer("level").notNull(),
  reason: text("reason").notNull(),
  failures: integer("failures").notNull().default(0),
  bannedAt: timestamp("banned_at").notNull(),
  until: timestamp("until").notNull(),
  /** Set when lifted (by an admin or by expiry); lifted bans are kept for the log. */
  liftedAt: timestamp("lifted_at"),
  liftedBy: text("lifted_by", { enum: ["admin", "expired"] }),
  updatedAt: updatedAt(),
});
