/**
 * Relay events applied to the edge's database, exactly once. Each event's
 * idempotency key goes into processed_webhooks (kind "relay.event") in the same
 * batch (one transaction) as its change, with a plain INSERT: a repeat of the key
 * fails that insert and so rolls the whole batch back, whoever ran it first. The
 * caller acknowledges both outcomes; a repeat changes nothing.
 *
 * Events of one relay are applied one at a time, in the order they arrive (the
 * link serialises them), so a read-then-write merge of a CDR sees the previous
 * event of the same call. Events may still come in any order across a reconnect
 * (call.ended before call.started): every merge keeps what is already known.
 */
import {
  cdrs,
  type Db,
  deviceEvents,
  devices,
  type EventSeverity,
  processedWebhooks,
  type RelayEvent,
  recordings,
  registrations as registrationsTable,
  sipBans,
  systemEvents,
  users,
} from "@gosip/drizzle";
import { and, desc, eq, gte, isNotNull, isNull, lte } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { BlobStore } from "../blobs/store.ts";
import { isUniqueViolation } from "../http/resource-api.ts";
import type { Logger } from "../platform/types.ts";

export const RELAY_EVENT_KIND = "relay.event";

export type EventDeps = { db: Db; logger: Logger; blobs: BlobStore };

export type EventOutcome =
  | { kind: "stored"; followUp?: FollowUp }
  | { kind: "duplicate" }
  /** The event can never be stored: the relay drops it (nack). */
  | { kind: "invalid"; error: string };

/** Something to tell the relay once the event is stored. */
export interface FollowUp {
  /** These devices' config changed (e.g. DND from a feature code): push them back. */
  upsertDevices: string[];
}

type Statement = BatchItem<"sqlite">;

/** Where the audio of a relay recording lives in the blob store. */
export function recordingBlobKey(relayRecordingId: string): string {
  return `recordings/${relayRecordingId}`;
}

/** Relay recording ids usable in a URL path and a blob key. */
export const RELAY_RECORDING_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Collapses SIP's and the relay's final states into the CDR's: what Twilio decided wins when it knows more. */
const TWILIO_DISPOSITIONS = new Set(["voicemail", "forwarded", "blocked"]);

async function alreadyProcessed(db: Db, key: string): Promise<boolean> {
  const [row] = await db
    .select({ sid: processedWebhooks.sid })
    .from(processedWebhooks)
    .where(and(eq(processedWebhooks.kind, RELAY_EVENT_KIND), eq(processedWebhooks.sid, key)));
  return row !== undefined;
}

/** The device and its owner, or nulls when the device is unknown (deleted since). */
async function deviceOwner(
  db: Db,
  deviceId: string | null,
): Promise<{ deviceId: string | null; userId: string | null }> {
  if (deviceId === null) return { deviceId: null, userId: null };
  const [row] = await db
    .select({ id: devices.id, userId: devices.userId, recordAlways: devices.recordAlways })
    .from(devices)
    .where(eq(devices.id, deviceId));
  return row ? { deviceId: row.id, userId: row.userId } : { deviceId: null, userId: null };
}

type CdrRow = typeof cdrs.$inferSelect;

/**
 * The CDR of a relay call: by its relay id, else the one Twilio's webhooks created for its CallSid (the
 * edge's voice webhook writes it before Twilio rings the relay). Several relay calls can share one CallSid:
 * Twilio sends one INVITE per `<Sip>` of a ring group, and one per step of a sequential one; the row is
 * then found for each of them, and `siblingLeg` tells the legs that do not own it.
 */
async function findCdr(db: Db, callId: string, twilioCallSid: string | null): Promise<CdrRow | undefined> {
  const [byRelay] = await db.select().from(cdrs).where(eq(cdrs.relayCallId, callId));
  if (byRelay || !twilioCallSid) return byRelay;
  const [byTwilio] = await db.select().from(cdrs).where(eq(cdrs.twilioCallSid, twilioCallSid));
  return byTwilio;
}

/** Another relay call of the same Twilio call owns this row. */
const siblingLeg = (row: CdrRow, callId: string): boolean =>
  row.relayCallId !== null && row.relayCallId !== callId;

/** An inbound row the edge tracks through Twilio's callbacks (dial-result, call-status end it). */
const twilioTracked = (row: CdrRow): boolean => row.direction === "inbound" && row.twilioCallSid !== null;

/** A relay outbound call and the edge's sip-outbound CDR are one call when this close in time. */
export const OUTBOUND_MERGE_WINDOW_MS = 120_000;

/**
 * The CDR the edge's sip-outbound webhook wrote for this relay outbound call: the relay does not learn the
 * CallSid of its call to the SIP Domain, so the call is matched by device, number and time (the edge does
 * the same the other way round when the relay's event comes first).
 */
async function findOutboundCdr(
  db: Db,
  event: { direction: string; deviceId: string | null; to: string; startedAt: string },
): Promise<CdrRow | undefined> {
  if (event.direction !== "outbound" || event.deviceId === null) return undefined;
  const started = new Date(event.startedAt).getTime();
  const [row] = await db
    .select()
    .from(cdrs)
    .where(
      and(
        eq(cdrs.direction, "outbound"),
        eq(cdrs.deviceId, event.deviceId),
        eq(cdrs.toNumber, event.to),
        isNull(cdrs.relayCallId),
        isNotNull(cdrs.twilioCallSid),
        gte(cdrs.startedAt, new Date(started - OUTBOUND_MERGE_WINDOW_MS)),
        lte(cdrs.startedAt, new Date(started + OUTBOUND_MERGE_WINDOW_MS)),
      ),
    )
    .orderBy(desc(cdrs.startedAt))
    .limit(1);
  return row;
}

function systemEvent(
  db: Db,
  type: string,
  severity: EventSeverity,
  at: Date,
  data: Record<string, string | number | boolean | null | string[]>,
): Statement {
  return db.insert(systemEvents).values({ type, severity, at, data: { v: 1, ...data } });
}

/** The statements that apply `event`, or the reason it can never be applied. */
async function statementsFor(
  deps: EventDeps,
  event: RelayEvent,
  at: Date,
): Promise<{ statements: Statement[]; followUp?: FollowUp } | { invalid: string }> {
  const { db } = deps;
  switch (event.kind) {
    case "registration.up": {
      const owner = await deviceOwner(db, event.deviceId);
      if (!owner.deviceId) return { statements: [] };
      const c = event.contact;
      const [known] = await db
        .select({ id: registrationsTable.id })
        .from(registrationsTable)
        .where(
          and(
            eq(registrationsTable.deviceId, event.deviceId),
            eq(registrationsTable.contactUri, c.contactUri),
          ),
        );
      const values = {
        contactUri: c.contactUri,
        sourceAddress: c.sourceAddress,
        sourcePort: c.sourcePort,
        transport: c.transport,
        userAgent: c.userAgent,
        instanceId: c.instanceId,
        callId: c.callId,
        cseq: c.cseq,
        expiresAt: new Date(c.expiresAt),
        lastSeenAt: new Date(c.lastSeenAt),
      };
      const statements: Statement[] = [
        db
          .insert(registrationsTable)
          .values({ deviceId: event.deviceId, ...values })
          .onConflictDoUpdate({
            target: [registrationsTable.deviceId, registrationsTable.contactUri],
            set: values,
          }),
      ];
      // A refresh of a known contact is not news; a new contact is.
      if (!known) {
        statements.push(
          db.insert(deviceEvents).values({
            deviceId: event.deviceId,
            type: "registered",
            at,
            data: {
              v: 1,
              transport: c.transport,
              sourceAddress: c.sourceAddress,
              sourcePort: c.sourcePort,
              userAgent: c.userAgent,
            },
          }),
        );
      }
      return { statements };
    }
    case "registration.down": {
      const owner = await deviceOwner(db, event.deviceId);
      if (!owner.deviceId) return { statements: [] };
      return {
        statements: [
          db
            .delete(registrationsTable)
            .where(
              and(
                eq(registrationsTable.deviceId, event.deviceId),
                eq(registrationsTable.contactUri, event.contactUri),
              ),
            ),
          db.insert(deviceEvents).values({
            deviceId: event.deviceId,
            type: event.reason === "removed" ? "unregistered" : event.reason,
            severity: event.reason === "offline" ? "warning" : "info",
            at,
            data: { v: 1, reason: event.reason },
          }),
        ],
      };
    }
    case "call.started": {
      const owner = await deviceOwner(db, event.deviceId);
      const row =
        (await findCdr(db, event.callId, event.twilioCallSid)) ??
        (event.twilioCallSid === null ? await findOutboundCdr(db, event) : undefined);
      // Another INVITE of the same Twilio call (ring group, next sequential step) already owns the row.
      if (row && siblingLeg(row, event.callId)) return { statements: [] };
      if (!row) {
        return {
          statements: [
            db.insert(cdrs).values({
              relayCallId: event.callId,
              direction: event.direction,
              fromNumber: event.from,
              toNumber: event.to,
              deviceId: owner.deviceId,
              userId: owner.userId,
              status: "ringing",
              startedAt: new Date(event.startedAt),
              twilioCallSid: event.twilioCallSid,
            }),
          ],
        };
      }
      // Known already (a Twilio webhook, or call.ended overtook this): fill gaps, never go back.
      return {
        statements: [
          db
            .update(cdrs)
            .set({
              relayCallId: event.callId,
              deviceId: row.deviceId ?? owner.deviceId,
              userId: row.userId ?? owner.userId,
              twilioCallSid: row.twilioCallSid ?? event.twilioCallSid,
            })
            .where(eq(cdrs.id, row.id)),
        ],
      };
    }
    case "call.answered": {
      const row = await findCdr(db, event.callId, null);
      // Answered without started: call.ended carries the answer time too, so nothing is lost.
      if (!row) return { statements: [] };
      const owner = await deviceOwner(db, event.deviceId);
      return {
        statements: [
          db
            .update(cdrs)
            .set({
              status: row.status === "ended" ? "ended" : "answered",
              answeredAt: row.answeredAt ?? new Date(event.answeredAt),
              deviceId: owner.deviceId ?? row.deviceId,
              userId: owner.deviceId ? owner.userId : row.userId,
            })
            .where(eq(cdrs.id, row.id)),
        ],
      };
    }
    case "call.ended": {
      const owner = await deviceOwner(db, event.deviceId);
      const row =
        (await findCdr(db, event.callId, event.twilioCallSid)) ??
        (event.twilioCallSid === null ? await findOutboundCdr(db, event) : undefined);
      const answered = event.answeredAt !== null;
      // A leg of a ring group that did not answer says nothing about the call: the answering leg, or
      // Twilio's dial-result, does. It gives the row back so the next leg (sequential step) can own it.
      if (row && !answered && (siblingLeg(row, event.callId) || twilioTracked(row))) {
        if (siblingLeg(row, event.callId)) return { statements: [] };
        return {
          statements: [
            db
              .update(cdrs)
              .set({ relayCallId: null, sipStatus: row.sipStatus ?? event.sipStatus })
              .where(eq(cdrs.id, row.id)),
          ],
        };
      }
      const ended = {
        status: "ended" as const,
        endedAt: new Date(event.endedAt),
        durationSeconds: event.durationSeconds,
        sipStatus: event.sipStatus,
        hangupBy: event.hangupBy,
        sipLadder: { v: 1 as const, steps: event.ladder },
      };
      if (!row) {
        return {
          statements: [
            db.insert(cdrs).values({
              ...ended,
              relayCallId: event.callId,
              direction: event.direction,
              fromNumber: event.from,
              toNumber: event.to,
              deviceId: owner.deviceId,
              userId: owner.userId,
              disposition: event.disposition,
              startedAt: new Date(event.startedAt),
              answeredAt: event.answeredAt === null ? null : new Date(event.answeredAt),
              twilioCallSid: event.twilioCallSid,
            }),
          ],
        };
      }
      const keepTwilio = row.disposition !== null && TWILIO_DISPOSITIONS.has(row.disposition);
      return {
        statements: [
          db
            .update(cdrs)
            .set({
              ...ended,
              relayCallId: event.callId,
              disposition: keepTwilio ? row.disposition : event.disposition,
              answeredAt: row.answeredAt ?? (event.answeredAt === null ? null : new Date(event.answeredAt)),
              deviceId: owner.deviceId ?? row.deviceId,
              userId: owner.deviceId ? owner.userId : row.userId,
              twilioCallSid: row.twilioCallSid ?? event.twilioCallSid,
            })
            .where(eq(cdrs.id, row.id)),
        ],
      };
    }
    case "recording.ready": {
      if (!RELAY_RECORDING_ID.test(event.recordingId))
        return { invalid: "recordingId is not usable as a key" };
      const key = recordingBlobKey(event.recordingId);
      const blob = await deps.blobs.head(key);
      if (!blob)
        return { invalid: `audio not uploaded (PUT /api/relay/recordings/${event.recordingId} first)` };
      if (blob.sha256 !== event.sha256 || blob.size !== event.sizeBytes) {
        return { invalid: "uploaded audio does not match the event's sha256/sizeBytes" };
      }
      const cdr = await findCdr(db, event.callId, null);
      const owner = await deviceOwner(db, event.deviceId ?? cdr?.deviceId ?? null);
      const [existing] = await db
        .select({ id: recordings.id })
        .from(recordings)
        .where(eq(recordings.relayRecordingId, event.recordingId));
      const id = existing?.id ?? crypto.randomUUID();
      const values = {
        cdrId: cdr?.id ?? null,
        deviceId: owner.deviceId,
        userId: cdr?.userId ?? owner.userId,
        trigger: event.trigger,
        status: "stored" as const,
        blobKey: key,
        contentType: blob.contentType,
        sizeBytes: blob.size,
        durationSeconds: event.durationSeconds,
        error: null,
        startedAt: new Date(event.startedAt),
        endedAt: new Date(event.endedAt),
      };
      const statements: Statement[] = [
        db
          .insert(recordings)
          .values({ id, relayRecordingId: event.recordingId, ...values })
          .onConflictDoUpdate({ target: recordings.relayRecordingId, set: values }),
      ];
      if (cdr) statements.push(db.update(cdrs).set({ recordingId: id }).where(eq(cdrs.id, cdr.id)));
      return { statements };
    }
    case "recording.skipped": {
      const cdr = await findCdr(db, event.callId, null);
      const owner = await deviceOwner(db, event.deviceId ?? cdr?.deviceId ?? null);
      const values = {
        cdrId: cdr?.id ?? null,
        deviceId: owner.deviceId,
        userId: cdr?.userId ?? owner.userId,
        status: "skipped" as const,
        error: event.reason,
      };
      return {
        statements: [
          db
            .insert(recordings)
            .values({ relayRecordingId: event.recordingId, trigger: "on_demand", startedAt: at, ...values })
            .onConflictDoUpdate({ target: recordings.relayRecordingId, set: values }),
          systemEvent(db, "recording.skipped", "warning", at, {
            message:
              event.reason === "storage_low"
                ? "A call was not recorded: the relay is low on disk space"
                : "A call recording failed on the relay",
            reason: event.reason,
            recordingId: event.recordingId,
            cdrId: cdr?.id ?? null,
          }),
        ],
      };
    }
    case "ban.added": {
      const values = {
        level: event.level,
        reason: event.reason,
        failures: event.failures,
        bannedAt: at,
        until: new Date(event.until),
        liftedAt: null,
        liftedBy: null,
      };
      return {
        statements: [
          db
            .insert(sipBans)
            .values({ address: event.address, ...values })
            .onConflictDoUpdate({ target: sipBans.address, set: values }),
          systemEvent(db, "sip.banned", "warning", at, {
            message: "The relay banned a source address",
            address: event.address,
            level: event.level,
            reason: event.reason,
          }),
        ],
      };
    }
    case "ban.lifted":
      return {
        statements: [
          db
            .update(sipBans)
            .set({ liftedAt: at, liftedBy: event.by })
            .where(and(eq(sipBans.address, event.address), isNull(sipBans.liftedAt))),
        ],
      };
    case "security.alert":
      return {
        statements: [
          systemEvent(db, "security.extension_under_attack", "warning", at, {
            message: "Someone is guessing a device's SIP password",
            deviceId: event.deviceId,
            failures: event.failures,
            sources: event.sources,
          }),
        ],
      };
    case "device.dnd": {
      const owner = await deviceOwner(db, event.deviceId);
      if (!owner.userId || !owner.deviceId) return { statements: [] };
      const userDevices = await db
        .select({ id: devices.id })
        .from(devices)
        .where(eq(devices.userId, owner.userId));
      return {
        statements: [db.update(users).set({ dnd: event.enabled }).where(eq(users.id, owner.userId))],
        followUp: { upsertDevices: userDevices.map((d) => d.id) },
      };
    }
    case "storage.status":
      if (!event.low) return { statements: [] };
      return {
        statements: [
          systemEvent(db, "storage.low", "warning", at, {
            message: "The relay's recording storage is low: calls go on unrecorded",
            freeBytes: event.freeBytes,
            totalBytes: event.totalBytes,
          }),
        ],
      };
  }
}

/** Applies one event once; a key seen before is a duplicate and changes nothing. */
export async function applyRelayEvent(
  deps: EventDeps,
  frame: { key: string; at: string; event: RelayEvent },
): Promise<EventOutcome> {
  const { db } = deps;
  if (await alreadyProcessed(db, frame.key)) return { kind: "duplicate" };
  const at = new Date(frame.at);
  const planned = await statementsFor(deps, frame.event, at);
  if ("invalid" in planned) return { kind: "invalid", error: planned.invalid };
  const mark = db.insert(processedWebhooks).values({ kind: RELAY_EVENT_KIND, sid: frame.key });
  try {
    await db.batch([mark, ...planned.statements]);
  } catch (err) {
    // Someone applied this key between the check and the batch: theirs stands, this one rolled back.
    if (isUniqueViolation(err) && (await alreadyProcessed(db, frame.key))) return { kind: "duplicate" };
    throw err;
  }
  return planned.followUp ? { kind: "stored", followUp: planned.followUp } : { kind: "stored" };
}
