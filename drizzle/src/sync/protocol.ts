/**
 * The relay ↔ edge sync protocol: every message on the relay's one WebSocket,
 * defined once here and imported by both ends (relay client, Node link, Workers
 * Durable Object). JSON text frames, each validated with `parseRelayMessage` /
 * `parseEdgeMessage`; a frame that fails gets a clear close (1007/1008), never a crash.
 *
 * Flow
 * 1. relay → `hello` (protocol version, software version, its SIP address);
 *    edge → `hello-ack`, then a full `config` snapshot (`full: true`).
 * 2. edge → `config` deltas (`full: false`) whenever something the relay needs
 *    changes (a device created in the API can register within a second), and
 *    `command`s (MWI, recording start/stop, hang up, lift a ban); the relay answers
 *    each command with `command-result` and each config with `config-ack`.
 * 3. relay → `event`s from its durable outbox, in `seq` order, each with an
 *    idempotency `key`; the edge stores the event idempotently (a repeat changes
 *    nothing) and answers `ack` with the key; the relay deletes it from the outbox
 *    only then, and resends every unacknowledged event after a reconnect.
 *    Delivered at least once, recorded exactly once.
 *
 * Versioning: `v` in hello is SYNC_PROTOCOL_VERSION; an edge that does not speak
 * the relay's version closes with CLOSE_PROTOCOL_VERSION and a reason naming both.
 */
import { z } from "zod";
import { e164Schema } from "../json/common.ts";
import { outboundPolicySchema } from "../json/device.ts";
import { sipTransports } from "../schema/registrations.ts";

export const SYNC_PROTOCOL_VERSION = 1;

/** Largest frame either side accepts (a full config of 200 devices fits with room to spare). */
export const MAX_SYNC_MESSAGE_BYTES = 256 * 1024;

/** Close codes (RFC 6455 §7.4.1 and the application range). */
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TOO_BIG = 1009;
/** An older socket closed because the installation's relay connected again (one live link). */
export const CLOSE_REPLACED = 4000;
/** The socket's relay token was revoked. */
export const CLOSE_TOKEN_REVOKED = 4001;
/** The two ends speak different protocol versions. */
export const CLOSE_PROTOCOL_VERSION = 4002;

const isoTime = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(128);
/** A relay call id: the B2BUA's id for the whole call (its inbound leg's Call-ID). */
const callId = z.string().min(1).max(256);
const idempotencyKey = z.string().min(8).max(200);

// ————————————————————————————— configuration (edge → relay) —————————————————————————————

/** A device as the relay needs it: credentials (HA1 only), extension, effective DND, policy. */
export const syncDeviceSchema = z.object({
  id,
  userId: id.nullable(),
  name: z.string().max(200),
  extension: z.string().regex(/^\d{1,15}$/),
  sipUsername: z.string().min(1).max(128),
  ha1Md5: z.string().regex(/^[0-9a-f]{32}$/),
  ha1Sha256: z.string().regex(/^[0-9a-f]{64}$/),
  enabled: z.boolean(),
  /** Effective do-not-disturb: global, the user's, or (for DID calls) decided by the edge. */
  dnd: z.boolean(),
  recordAlways: z.boolean(),
  outboundPolicy: outboundPolicySchema,
  /** Caller ID for outbound calls: the DID this device's calls present, when one is assigned. */
  callerIdE164: e164Schema.nullable(),
});
export type SyncDevice = z.infer<typeof syncDeviceSchema>;

/** Everything else the relay needs. Secrets travel only over the authenticated link. */
export const syncSettingsSchema = z.object({
  /** Digest realm every HA1 was computed with. */
  realm: z.string().min(1).max(63),
  /** ISO 3166 alpha-2 country for normalising dialled national numbers to E.164. */
  defaultCountry: z.string().regex(/^[A-Z]{2}$/),
  /** Twilio SIP Domain for outbound calls; null until the setup wizard created it. */
  twilioDomain: z
    .object({
      name: z.string().min(1).max(253),
      username: z.string().min(1).max(128),
      password: z.string().min(1).max(256),
    })
    .nullable(),
  /** Credentials Twilio answers the relay's challenge with on inbound calls; null refuses all inbound. */
  inbound: z
    .object({ username: z.string().min(1).max(128), password: z.string().min(1).max(256) })
    .nullable(),
  /** Networks (CIDR) never banned and not rate limited: the installation's LAN. */
  trustedNetworks: z.array(z.string().min(3).max(64)).max(50),
  /** Below this many free bytes in the recording directory calls go on unrecorded. */
  minFreeBytes: z.int().min(0),
});
export type SyncSettings = z.infer<typeof syncSettingsSchema>;

/** Unread/read voicemail counts of a device's mailbox, for its MWI lamp. */
export const mailboxCountSchema = z.object({
  deviceId: id,
  newMessages: z.int().min(0),
  oldMessages: z.int().min(0),
});
export type MailboxCount = z.infer<typeof mailboxCountSchema>;

const configSnapshot = z.object({
  type: z.literal("config"),
  full: z.literal(true),
  /** Increases with every config message the edge sends (milliseconds clock, made monotonic). */
  version: z.int().min(0),
  devices: z.array(syncDeviceSchema).max(1000),
  settings: syncSettingsSchema,
  mailboxes: z.array(mailboxCountSchema).max(1000),
});
const configDelta = z.object({
  type: z.literal("config"),
  full: z.literal(false),
  version: z.int().min(0),
  /** Devices created or changed: replace the relay's copy whole. */
  upsertDevices: z.array(syncDeviceSchema).max(1000).default([]),
  /** Device ids deleted in the edge: the relay drops them and their registrations. */
  removeDevices: z.array(id).max(1000).default([]),
  /** Present when any setting changed: replaces all settings. */
  settings: syncSettingsSchema.optional(),
});

// ——————————————————————————————— commands (edge → relay) ———————————————————————————————

export const relayCommandSchema = z.discriminatedUnion("kind", [
  /** Voicemail counts changed: update these devices' MWI lamps (NOTIFY their subscriptions). */
  z.object({ kind: z.literal("mwi"), mailboxes: z.array(mailboxCountSchema).min(1).max(1000) }),
  z.object({ kind: z.literal("recording.start"), callId }),
  z.object({ kind: z.literal("recording.stop"), callId }),
  z.object({ kind: z.literal("call.hangup"), callId }),
  z.object({ kind: z.literal("ban.lift"), address: z.string().min(2).max(64) }),
]);
export type RelayCommand = z.infer<typeof relayCommandSchema>;

// ————————————————————————————————— events (relay → edge) —————————————————————————————————

export const syncContactSchema = z.object({
  contactUri: z.string().min(1).max(1024),
  sourceAddress: z.string().min(2).max(64),
  sourcePort: z.int().min(1).max(65535),
  transport: z.enum(sipTransports),
  userAgent: z.string().max(512).nullable(),
  instanceId: z.string().max(256).nullable(),
  callId: z.string().max(256).nullable(),
  cseq: z.int().min(0).nullable(),
  expiresAt: isoTime,
  lastSeenAt: isoTime,
});
export type SyncContact = z.infer<typeof syncContactSchema>;

export const callDirectionSchema = z.enum(["inbound", "outbound", "internal"]);
export const callEndDispositionSchema = z.enum([
  "answered",
  "missed",
  "busy",
  "rejected",
  "canceled",
  "failed",
]);

/** One step of a call's SIP ladder: no bodies, no credentials. */
export const ladderStepSchema = z.object({
  /** Milliseconds since the call started. */
  t: z.int().min(0),
  /** Which leg: "a" is the caller's side of the B2BUA, "b" (or "b1", "b2"… when forking) the callee's. */
  leg: z.string().min(1).max(8),
  /** "in": received by the relay, "out": sent by it. */
  dir: z.enum(["in", "out"]),
  /** A method ("INVITE") or a status with its reason ("180 Ringing"). */
  label: z.string().min(1).max(64),
});
export type LadderStep = z.infer<typeof ladderStepSchema>;
/** A ladder keeps at most this many steps (the first ones and the final ones). */
export const MAX_LADDER_STEPS = 200;

const callParties = {
  callId,
  direction: callDirectionSchema,
  /** E.164, an extension, or "anonymous". */
  from: z.string().min(1).max(64),
  to: z.string().min(1).max(64),
  /** The device that placed (outbound, internal) or answered (inbound) the call. */
  deviceId: id.nullable(),
  /** Twilio's CallSid when Twilio is one side (X-Twilio-CallSid). */
  twilioCallSid: z.string().max(64).nullable(),
};

export const relayEventSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("registration.up"), deviceId: id, contact: syncContactSchema }),
  z.object({
    kind: z.literal("registration.down"),
    deviceId: id,
    contactUri: z.string().min(1).max(1024),
    reason: z.enum(["unregistered", "expired", "offline", "removed"]),
  }),
  z.object({ kind: z.literal("call.started"), ...callParties, startedAt: isoTime }),
  z.object({ kind: z.literal("call.answered"), callId, deviceId: id.nullable(), answeredAt: isoTime }),
  z.object({
    kind: z.literal("call.ended"),
    ...callParties,
    startedAt: isoTime,
    answeredAt: isoTime.nullable(),
    endedAt: isoTime,
    disposition: callEndDispositionSchema,
    /** Final SIP status that decided the call (200, 486, 603, 487 ...). */
    sipStatus: z.int().min(100).max(699).nullable(),
    /** Talk time: answer to hang-up, whole seconds. */
    durationSeconds: z.int().min(0),
    /** Who hung up an answered call. */
    hangupBy: z.enum(["caller", "callee", "relay"]).nullable(),
    /** RTP packets the relay forwarded towards each side (one-way audio shows as a zero). */
    rtp: z.object({ toCaller: z.int().min(0), toCallee: z.int().min(0) }).nullable(),
    ladder: z.array(ladderStepSchema).max(MAX_LADDER_STEPS),
  }),
  z.object({
    kind: z.literal("recording.ready"),
    recordingId: id,
    callId,
    deviceId: id.nullable(),
    trigger: z.enum(["on_demand", "device", "rule"]),
    /** The audio was uploaded to PUT /api/relay/recordings/{recordingId} before this event. */
    contentType: z.string().min(1).max(64),
    sizeBytes: z.int().min(0),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    durationSeconds: z.int().min(0),
    startedAt: isoTime,
    endedAt: isoTime,
  }),
  z.object({
    kind: z.literal("recording.skipped"),
    recordingId: id,
    callId,
    deviceId: id.nullable(),
    reason: z.enum(["storage_low", "media_error", "failed"]),
  }),
  z.object({
    kind: z.literal("ban.added"),
    address: z.string().min(2).max(64),
    until: isoTime,
    /** 1 for a first ban, growing with each repeat (escalation). */
    level: z.int().min(1).max(100),
    reason: z.enum(["auth_failures", "rate_limit", "scanner"]),
    failures: z.int().min(0),
  }),
  z.object({
    kind: z.literal("ban.lifted"),
    address: z.string().min(2).max(64),
    by: z.enum(["admin", "expired"]),
  }),
  z.object({
    kind: z.literal("security.alert"),
    alert: z.literal("extension_under_attack"),
    /** The device whose credentials are being guessed. */
    deviceId: id,
    failures: z.int().min(0),
    sources: z.array(z.string().max(64)).max(20),
  }),
  /** The phone dialled a DND feature code. */
  z.object({ kind: z.literal("device.dnd"), deviceId: id, enabled: z.boolean() }),
  z.object({
    kind: z.literal("storage.status"),
    freeBytes: z.int().min(0),
    totalBytes: z.int().min(0),
    low: z.boolean(),
  }),
]);
export type RelayEvent = z.infer<typeof relayEventSchema>;
export type RelayEventKind = RelayEvent["kind"];

// ——————————————————————————————————— frames ———————————————————————————————————

/** Frames the relay sends. */
export const relayMessageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("hello"),
    v: z.int().min(1),
    /** Software version of the relay, for the dashboard. */
    software: z.string().max(64).optional(),
    /** The config version it holds (from its local cache), or absent. */
    configVersion: z.int().min(0).optional(),
    /** Where the relay's SIP engine listens, e.g. ["udp/192.0.2.10:5060", "tcp/192.0.2.10:5060"]. */
    sip: z.array(z.string().max(128)).max(16).optional(),
  }),
  z.object({
    type: z.literal("event"),
    /** The relay's outbox sequence number (increasing; gaps allowed). */
    seq: z.int().min(1),
    key: idempotencyKey,
    /** When the relay recorded it. */
    at: isoTime,
    event: relayEventSchema,
  }),
  z.object({ type: z.literal("config-ack"), version: z.int().min(0) }),
  z.object({
    type: z.literal("command-result"),
    id,
    ok: z.boolean(),
    /** Why it failed, for the admin ("no such call"). */
    error: z.string().max(500).optional(),
  }),
  z.object({ type: z.literal("ping"), t: z.int().min(0) }),
]);
export type RelayMessage = z.infer<typeof relayMessageSchema>;

/** Frames the edge sends. */
export const edgeMessageSchema = z.union([
  z.object({ type: z.literal("hello-ack"), v: z.int().min(1), relayId: id, serverTime: z.int().min(0) }),
  configSnapshot,
  configDelta,
  z.object({
    type: z.literal("ack"),
    /** Idempotency keys of events now stored (a duplicate is acknowledged too). */
    keys: z.array(idempotencyKey).min(1).max(1000),
  }),
  z.object({
    type: z.literal("nack"),
    key: idempotencyKey,
    /** The event can never be stored (invalid); the relay drops it from its outbox and logs. */
    error: z.string().max(500),
  }),
  z.object({ type: z.literal("command"), id, command: relayCommandSchema }),
  z.object({ type: z.literal("pong"), t: z.int().min(0) }),
]);
export type EdgeMessage = z.infer<typeof edgeMessageSchema>;
export type ConfigMessage = Extract<EdgeMessage, { type: "config" }>;
export type ConfigSnapshot = Extract<ConfigMessage, { full: true }>;
export type ConfigDelta = Extract<ConfigMessage, { full: false }>;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; code: number; reason: string };

function parseFrame<T>(data: unknown, schema: z.ZodType<T>): ParseResult<T> {
  if (typeof data !== "string")
    return { ok: false, code: CLOSE_UNSUPPORTED_DATA, reason: "text frames only" };
  if (data.length > MAX_SYNC_MESSAGE_BYTES)
    return { ok: false, code: CLOSE_TOO_BIG, reason: "message too big" };
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, code: CLOSE_INVALID_PAYLOAD, reason: "invalid JSON" };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, message: r.data };
  const first = r.error.issues[0];
  const where = first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "invalid";
  // A close reason is at most 123 bytes (RFC 6455 §5.5).
  return { ok: false, code: CLOSE_POLICY_VIOLATION, reason: `invalid message: ${where}`.slice(0, 120) };
}

/** Validates a frame received from the relay (the edge calls this). */
export function parseRelayMessage(data: unknown): ParseResult<RelayMessage> {
  return parseFrame(data, relayMessageSchema);
}

/** Validates a frame received from the edge (the relay calls this). */
export function parseEdgeMessage(data: unknown): ParseResult<EdgeMessage> {
  return parseFrame(data, edgeMessageSchema);
}

/** Serialises a frame; the type parameter keeps each side sending only its own frames. */
export function encodeMessage<T extends RelayMessage | EdgeMessage>(message: T): string {
  return JSON.stringify(message);
}
