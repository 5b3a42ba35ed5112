/**
 * /api/cdrs: call history. Rows come from the relay's call events (and Twilio's
 * webhooks); an admin sees every call, a user only their own (the CDR's userId),
 * and someone else's call answers 404. GET /{id} adds the call's SIP ladder.
 * POST /{id}/recording starts or stops recording a live call through the relay.
 */
import {
  callDirections,
  callDispositions,
  callLadderSchema,
  callStatuses,
  cdrs,
  type Db,
} from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, gte, like, lt, or, type SQL } from "drizzle-orm";
import { currentUser, requireUser } from "../auth/middleware.ts";
import type { AuthUser } from "../env.ts";
import { AppError, conflict } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  errorEnvelopeSchema,
  errorResponses,
  findSelectedOr404,
  idParams,
  iso,
  isoTimestamp,
  jsonBody,
  jsonResponse,
  listSelected,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";

export const cdrSchema = z
  .object({
    id: z.string(),
    direction: z.enum(callDirections),
    from: z.string().openapi({ description: "E.164, an extension, or anonymous" }),
    to: z.string(),
    didId: z.string().nullable(),
    deviceId: z.string().nullable(),
    userId: z.string().nullable(),
    status: z.enum(callStatuses).openapi({ description: "ringing and answered are live calls" }),
    disposition: z.enum(callDispositions).nullable(),
    reason: z.string().nullable(),
    startedAt: isoTimestamp,
    answeredAt: isoTimestamp.nullable(),
    endedAt: isoTimestamp.nullable(),
    durationSeconds: z.int().openapi({ description: "Talk time, answer to hang-up" }),
    sipStatus: z.int().nullable(),
    hangupBy: z.enum(["caller", "callee", "relay"]).nullable(),
    spamScore: z.number().nullable(),
    twilioCallSid: z.string().nullable(),
    recordingId: z.string().nullable(),
    voicemailId: z.string().nullable(),
  })
  .openapi("Cdr");
export type CdrDto = z.infer<typeof cdrSchema>;

const cdrDetailSchema = cdrSchema
  .extend({
    ladder: callLadderSchema
      .nullable()
      .openapi({ description: "The call's SIP ladder (methods and statuses per leg, no bodies)" }),
  })
  .openapi("CdrDetail");

const cdrColumns = {
  id: cdrs.id,
  direction: cdrs.direction,
  fromNumber: cdrs.fromNumber,
  toNumber: cdrs.toNumber,
  didId: cdrs.didId,
  deviceId: cdrs.deviceId,
  userId: cdrs.userId,
  status: cdrs.status,
  disposition: cdrs.disposition,
  reason: cdrs.reason,
  startedAt: cdrs.startedAt,
  answeredAt: cdrs.answeredAt,
  endedAt: cdrs.endedAt,
  durationSeconds: cdrs.durationSeconds,
  sipStatus: cdrs.sipStatus,
  hangupBy: cdrs.hangupBy,
  spamScore: cdrs.spamScore,
  twilioCallSid: cdrs.twilioCallSid,
  recordingId: cdrs.recordingId,
  voicemailId: cdrs.voicemailId,
};
type CdrRow = SelectedRow<typeof cdrColumns>;
const detailColumns = { ...cdrColumns, sipLadder: cdrs.sipLadder, relayCallId: cdrs.relayCallId };

export function toCdrDto(row: CdrRow): CdrDto {
  return {
    id: row.id,
    direction: row.direction,
    from: row.fromNumber,
    to: row.toNumber,
    didId: row.didId,
    deviceId: row.deviceId,
    userId: row.userId,
    status: row.status,
    disposition: row.disposition,
    reason: row.reason,
    startedAt: iso(row.startedAt),
    answeredAt: iso(row.answeredAt),
    endedAt: iso(row.endedAt),
    durationSeconds: row.durationSeconds,
    sipStatus: row.sipStatus,
    hangupBy: row.hangupBy,
    spamScore: row.spamScore,
    twilioCallSid: row.twilioCallSid,
    recordingId: row.recordingId,
    voicemailId: row.voicemailId,
  };
}

const listQuery = pageQuery.extend({
  from: z.iso.datetime({ offset: true }).optional().openapi({ description: "Started at or after" }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: "Started before" }),
  direction: z.enum(callDirections).optional(),
  disposition: z.enum(callDispositions).optional(),
  status: z.enum(callStatuses).optional(),
  deviceId: z.string().min(1).max(64).optional(),
  number: z
    .string()
    .regex(/^[+0-9*#]{1,20}$|^anonymous$/, "digits, +, * or #")
    .optional()
    .openapi({ description: "Calls from or to a number containing this" }),
});

/** A user's calls only; an admin's filter is everything. */
function scopeOf(me: AuthUser): SQL | undefined {
  return me.role === "admin" ? undefined : eq(cdrs.userId, me.id);
}

/** The CDR with its ladder, or 404 when it does not exist or is someone else's. */
export function findVisibleCdr(db: Db, me: AuthUser, id: string) {
  return findSelectedOr404(db, cdrs, detailColumns, id, "Call", scopeOf(me));
}

const unavailable = {
  description: "The relay is not connected or did not answer (unavailable)",
  content: { "application/json": { schema: errorEnvelopeSchema } },
};

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["cdrs"],
  summary: "Call history, newest first (admin: all; user: own)",
  middleware: [requireUser] as const,
  request: { query: listQuery },
  responses: { 200: jsonResponse(pageOf(cdrSchema), "A page of calls"), ...errorResponses(400, 401) },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["cdrs"],
  summary: "One call, with its SIP ladder",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(cdrDetailSchema, "The call"), ...errorResponses(401, 404) },
});

const recordingActionSchema = z
  .object({ action: z.enum(["start", "stop"]) })
  .strict()
  .openapi("CallRecordingAction");

const recordingRoute = createRoute({
  method: "post",
  path: "/{id}/recording",
  tags: ["cdrs"],
  summary: "Start or stop recording a live call (admin, or the call's user)",
  middleware: [requireUser] as const,
  request: { params: idParams, body: jsonBody(recordingActionSchema) },
  responses: {
    200: jsonResponse(
      z.object({ cdrId: z.string(), action: z.enum(["start", "stop"]) }).openapi("CallRecordingResult"),
      "The relay did it",
    ),
    ...errorResponses(400, 401, 404, 409),
    503: unavailable,
  },
});

export const cdrsRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const me = currentUser(c);
    const filters: (SQL | undefined)[] = [scopeOf(me)];
    if (q.from) filters.push(gte(cdrs.startedAt, new Date(q.from)));
    if (q.to) filters.push(lt(cdrs.startedAt, new Date(q.to)));
    if (q.direction) filters.push(eq(cdrs.direction, q.direction));
    if (q.disposition) filters.push(eq(cdrs.disposition, q.disposition));
    if (q.status) filters.push(eq(cdrs.status, q.status));
    if (q.deviceId) filters.push(eq(cdrs.deviceId, q.deviceId));
    if (q.number) {
      // The pattern allows no LIKE wildcards, so it needs no escaping.
      const needle = `%${q.number}%`;
      filters.push(or(like(cdrs.fromNumber, needle), like(cdrs.toNumber, needle)));
    }
    const where = and(...filters);
    const orderBy = [desc(cdrs.startedAt), cdrs.id];
    const page = { where, orderBy, limit: q.limit, offset: q.offset };
    return c.json(await listSelected(c.get("deps").db, cdrs, cdrColumns, page, toCdrDto), 200);
  })
  .openapi(getRoute, async (c) => {
    const row = await findVisibleCdr(c.get("deps").db, currentUser(c), c.req.valid("param").id);
    return c.json({ ...toCdrDto(row), ladder: row.sipLadder ?? null }, 200);
  })
  .openapi(recordingRoute, async (c) => {
    const deps = c.get("deps");
    const { action } = c.req.valid("json");
    const row = await findVisibleCdr(deps.db, currentUser(c), c.req.valid("param").id);
    if (row.status === "ended") throw conflict("The call is not live");
    if (!row.relayCallId) throw conflict("The call does not go through the relay");
    const kind = action === "start" ? "recording.start" : "recording.stop";
    const outcome = await deps.relayChannel.command({ kind, callId: row.relayCallId });
    if (!outcome.ok) {
      if (outcome.reason === "refused") throw conflict(`The relay refused: ${outcome.error}`);
      throw new AppError(503, "unavailable", `The relay could not be reached: ${outcome.error}`);
    }
    return c.json({ cdrId: row.id, action }, 200);
  });
