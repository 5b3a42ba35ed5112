/**
 * /api/recordings: call recordings made by the relay and uploaded to the blob
 * store. An admin sees all, a user only their own (the recording's userId);
 * someone else's answers 404. GET /{id}/audio streams the audio with its content
 * type and honours Range (206/416) so the UI's player can seek; DELETE removes
 * the audio and the row (admin, or the recording's user).
 */
import { type Db, recordingStatuses, recordings, recordingTriggers } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, type SQL } from "drizzle-orm";
import { currentUser, requireUser } from "../auth/middleware.ts";
import type { AuthUser } from "../env.ts";
import { AppError, notFound } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  errorEnvelopeSchema,
  errorResponses,
  findSelectedOr404,
  idParams,
  iso,
  isoTimestamp,
  jsonResponse,
  listSelected,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";
import { decideRange } from "./range.ts";

export const recordingSchema = z
  .object({
    id: z.string(),
    cdrId: z.string().nullable(),
    deviceId: z.string().nullable(),
    userId: z.string().nullable(),
    trigger: z.enum(recordingTriggers),
    status: z.enum(recordingStatuses),
    contentType: z.string().nullable(),
    sizeBytes: z.int().nullable(),
    durationSeconds: z.int().nullable(),
    error: z.string().nullable().openapi({ description: 'Why it failed or was skipped, e.g. "storage_low"' }),
    startedAt: isoTimestamp,
    endedAt: isoTimestamp.nullable(),
    createdAt: isoTimestamp,
    audioUrl: z.string().nullable().openapi({ description: "Where to play or download it, once stored" }),
  })
  .openapi("Recording");
export type RecordingDto = z.infer<typeof recordingSchema>;

const recordingColumns = {
  id: recordings.id,
  cdrId: recordings.cdrId,
  deviceId: recordings.deviceId,
  userId: recordings.userId,
  trigger: recordings.trigger,
  status: recordings.status,
  blobKey: recordings.blobKey,
  contentType: recordings.contentType,
  sizeBytes: recordings.sizeBytes,
  durationSeconds: recordings.durationSeconds,
  error: recordings.error,
  startedAt: recordings.startedAt,
  endedAt: recordings.endedAt,
  createdAt: recordings.createdAt,
};
type RecordingRow = SelectedRow<typeof recordingColumns>;

function toDto(row: RecordingRow): RecordingDto {
  return {
    id: row.id,
    cdrId: row.cdrId,
    deviceId: row.deviceId,
    userId: row.userId,
    trigger: row.trigger,
    status: row.status,
    contentType: row.contentType,
    sizeBytes: row.sizeBytes,
    durationSeconds: row.durationSeconds,
    error: row.error,
    startedAt: iso(row.startedAt),
    endedAt: iso(row.endedAt),
    createdAt: iso(row.createdAt),
    audioUrl: row.status === "stored" && row.blobKey ? `/api/recordings/${row.id}/audio` : null,
  };
}

function scopeOf(me: AuthUser): SQL | undefined {
  return me.role === "admin" ? undefined : eq(recordings.userId, me.id);
}

function findVisible(db: Db, me: AuthUser, id: string): Promise<RecordingRow> {
  return findSelectedOr404(db, recordings, recordingColumns, id, "Recording", scopeOf(me));
}

const listQuery = pageQuery.extend({
  cdrId: z.string().min(1).max(64).optional(),
  deviceId: z.string().min(1).max(64).optional(),
  status: z.enum(recordingStatuses).optional(),
});

const errorJson = (description: string) => ({
  description,
  content: { "application/json": { schema: errorEnvelopeSchema } },
});

const audioContent = {
  "audio/wav": { schema: z.string().openapi({ format: "binary" }) },
};

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["recordings"],
  summary: "Call recordings, newest first (admin: all; user: own)",
  middleware: [requireUser] as const,
  request: { query: listQuery },
  responses: {
    200: jsonResponse(pageOf(recordingSchema), "A page of recordings"),
    ...errorResponses(400, 401),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["recordings"],
  summary: "One recording",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(recordingSchema, "The recording"), ...errorResponses(401, 404) },
});

const audioRoute = createRoute({
  method: "get",
  path: "/{id}/audio",
  tags: ["recordings"],
  summary: "The recording's audio (Range supported)",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: {
    200: { description: "The whole audio file", content: audioContent },
    206: { description: "The requested byte range", content: audioContent },
    ...errorResponses(401, 404),
    416: errorJson("The range lies outside the file (range_not_satisfiable)"),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["recordings"],
  summary: "Delete a recording and its audio (admin, or its user)",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 404) },
});

export const recordingsRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const filters: (SQL | undefined)[] = [scopeOf(currentUser(c))];
    if (q.cdrId) filters.push(eq(recordings.cdrId, q.cdrId));
    if (q.deviceId) filters.push(eq(recordings.deviceId, q.deviceId));
    if (q.status) filters.push(eq(recordings.status, q.status));
    const page = {
      where: and(...filters),
      orderBy: [desc(recordings.startedAt), recordings.id],
      limit: q.limit,
      offset: q.offset,
    };
    return c.json(await listSelected(c.get("deps").db, recordings, recordingColumns, page, toDto), 200);
  })
  .openapi(getRoute, async (c) => {
    const row = await findVisible(c.get("deps").db, currentUser(c), c.req.valid("param").id);
    return c.json(toDto(row), 200);
  })
  .openapi(audioRoute, async (c) => {
    const deps = c.get("deps");
    const row = await findVisible(deps.db, currentUser(c), c.req.valid("param").id);
    if (row.status !== "stored" || !row.blobKey) throw notFound("Recording audio");
    const meta = await deps.blobs.head(row.blobKey);
    if (!meta) throw notFound("Recording audio");
    const decision = decideRange(c.req.header("range"), meta.size);
    const headers: Record<string, string> = {
      "Content-Type": row.contentType ?? meta.contentType,
      "Accept-Ranges": "bytes",
      ETag: `"${meta.sha256}"`,
      "Cache-Control": "private, no-cache",
      "Content-Disposition": `inline; filename="recording-${row.id}.wav"`,
    };
    if (decision.kind === "unsatisfiable") {
      throw new AppError(416, "range_not_satisfiable", "The range lies outside the file", undefined, {
        "Content-Range": `bytes */${meta.size}`,
      });
    }
    const blob = await deps.blobs.get(row.blobKey, decision.kind === "partial" ? decision.range : undefined);
    if (!blob) throw notFound("Recording audio");
    if (decision.kind === "partial") {
      const { offset, length } = decision.range;
      headers["Content-Range"] = `bytes ${offset}-${offset + length - 1}/${meta.size}`;
      headers["Content-Length"] = String(length);
      return c.body(blob.body, 206, headers);
    }
    headers["Content-Length"] = String(meta.size);
    return c.body(blob.body, 200, headers);
  })
  .openapi(deleteRoute, async (c) => {
    const deps = c.get("deps");
    const row = await findVisible(deps.db, currentUser(c), c.req.valid("param").id);
    // The row first: once it is gone nobody can ask for the audio, then the audio goes.
    await deps.db.delete(recordings).where(eq(recordings.id, row.id));
    if (row.blobKey) await deps.blobs.delete(row.blobKey);
    return c.body(null, 204);
  });
