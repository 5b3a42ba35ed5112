/**
 * /api/voicemails: the mailbox (SPEC §3, §6). A user sees only the voicemails of
 * their own mailbox (the row's userId), an admin every one; someone else's answers
 * 404, never 403, so ids reveal nothing. Audio downloads honour Range (206/416) for
 * the UI's player; marking read and deleting update the phones' MWI lamps. A
 * deleted voicemail is hidden at once, its audio removed here and from Twilio.
 *
 * Also here: the per-DID greeting (greetings.ts) and the one public route, the
 * signed prompt audio Twilio fetches for `<Play>` (playable.ts).
 */
import { type Db, transcriptStatuses, voicemailAudioStatuses, voicemails } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, isNotNull, isNull, type SQL } from "drizzle-orm";
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
import type { EdgeDeps } from "../platform/types.ts";
import { pushMailboxes } from "../relay/push.ts";
import { serveAudio } from "./audio.ts";
import { audioExtension } from "./email.ts";
import { greetingRoutes } from "./greetings.ts";
import { PLAYABLE_AUDIO_PATH, verifyPlayableAudio } from "./playable.ts";
import { enqueueTwilioDelete } from "./store.ts";

export const voicemailSchema = z
  .object({
    id: z.string(),
    didId: z.string().nullable(),
    userId: z
      .string()
      .nullable()
      .openapi({ description: "Mailbox owner; null = the shared (admin) mailbox" }),
    cdrId: z.string().nullable(),
    fromNumber: z.string(),
    durationSeconds: z.int(),
    audioStatus: z.enum(voicemailAudioStatuses),
    contentType: z.string().nullable(),
    sizeBytes: z.int().nullable(),
    transcript: z.string().nullable(),
    transcriptStatus: z.enum(transcriptStatuses).openapi({
      description: 'pending: may still come; too_long: over 2 minutes, no transcript; "failed": none came',
    }),
    read: z.boolean(),
    readAt: isoTimestamp.nullable(),
    receivedAt: isoTimestamp,
    audioUrl: z.string().nullable().openapi({ description: "Where to play or download it, once stored" }),
  })
  .openapi("Voicemail");
export type VoicemailDto = z.infer<typeof voicemailSchema>;

const columns = {
  id: voicemails.id,
  didId: voicemails.didId,
  userId: voicemails.userId,
  cdrId: voicemails.cdrId,
  fromNumber: voicemails.fromNumber,
  durationSeconds: voicemails.durationSeconds,
  audioStatus: voicemails.audioStatus,
  blobKey: voicemails.blobKey,
  contentType: voicemails.contentType,
  sizeBytes: voicemails.sizeBytes,
  transcript: voicemails.transcript,
  transcriptStatus: voicemails.transcriptStatus,
  twilioRecordingSid: voicemails.twilioRecordingSid,
  twilioDeletedAt: voicemails.twilioDeletedAt,
  readAt: voicemails.readAt,
  receivedAt: voicemails.receivedAt,
};
type VoicemailRow = SelectedRow<typeof columns>;

function toDto(row: VoicemailRow): VoicemailDto {
  return {
    id: row.id,
    didId: row.didId,
    userId: row.userId,
    cdrId: row.cdrId,
    fromNumber: row.fromNumber,
    durationSeconds: row.durationSeconds,
    audioStatus: row.audioStatus,
    contentType: row.contentType,
    sizeBytes: row.sizeBytes,
    transcript: row.transcript,
    transcriptStatus: row.transcriptStatus,
    read: row.readAt !== null,
    readAt: iso(row.readAt),
    receivedAt: iso(row.receivedAt),
    audioUrl: row.audioStatus === "stored" && row.blobKey ? `/api/voicemails/${row.id}/audio` : null,
  };
}

/** What `me` may see: not deleted, and their own unless admin. */
function scopeOf(me: AuthUser): SQL | undefined {
  const live = isNull(voicemails.deletedAt);
  return me.role === "admin" ? live : and(live, eq(voicemails.userId, me.id));
}

function findVisible(db: Db, me: AuthUser, id: string): Promise<VoicemailRow> {
  return findSelectedOr404(db, voicemails, columns, id, "Voicemail", scopeOf(me));
}

const listQuery = pageQuery.extend({
  unread: z
    .enum(["true", "false"])
    .transform((v) => v === "true")
    .optional()
    .openapi({ description: "true: only unread; false: only read" }),
  didId: z.string().min(1).max(64).optional(),
});

const errorJson = (description: string) => ({
  description,
  content: { "application/json": { schema: errorEnvelopeSchema } },
});

const audioContent = {
  "audio/wav": { schema: z.string().openapi({ format: "binary" }) },
  "audio/mpeg": { schema: z.string().openapi({ format: "binary" }) },
};

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["voicemails"],
  summary: "Voicemails, newest first (admin: all; user: own mailbox)",
  middleware: [requireUser] as const,
  request: { query: listQuery },
  responses: {
    200: jsonResponse(pageOf(voicemailSchema), "A page of voicemails"),
    ...errorResponses(400, 401),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["voicemails"],
  summary: "One voicemail",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(voicemailSchema, "The voicemail"), ...errorResponses(401, 404) },
});

const audioRoute = createRoute({
  method: "get",
  path: "/{id}/audio",
  tags: ["voicemails"],
  summary: "The voicemail's audio (Range supported)",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: {
    200: { description: "The whole audio file", content: audioContent },
    206: { description: "The requested byte range", content: audioContent },
    ...errorResponses(401, 404),
    416: errorJson("The range lies outside the file (range_not_satisfiable)"),
  },
});

const readRoute = createRoute({
  method: "post",
  path: "/{id}/read",
  tags: ["voicemails"],
  summary: "Mark a voicemail read (the phones' MWI lamps follow)",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(voicemailSchema, "The voicemail, read"), ...errorResponses(401, 404) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["voicemails"],
  summary: "Delete a voicemail: hidden at once, audio removed here and from Twilio (MWI follows)",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 404) },
});

const promptQuery = z.object({
  key: z.string().min(1).max(512),
  exp: z.coerce.number().int().min(0),
  sig: z.string().regex(/^[0-9a-f]{64}$/),
});

const promptRoute = createRoute({
  method: "get",
  path: PLAYABLE_AUDIO_PATH.slice("/api/voicemails".length),
  tags: ["voicemails"],
  summary: "Audio Twilio plays (greeting, message): public, only with the edge's expiring signature",
  request: { query: promptQuery },
  responses: {
    200: { description: "The audio", content: audioContent },
    206: { description: "The requested byte range", content: audioContent },
    ...errorResponses(400, 403, 404),
  },
});

async function updateMwi(deps: EdgeDeps, userId: string | null): Promise<void> {
  if (userId) await pushMailboxes(deps, userId);
}

export const voicemailsRouter = createRouter()
  // Before /{id}: the literal path must not be taken for an id.
  .openapi(promptRoute, async (c) => {
    const deps = c.get("deps");
    const q = c.req.valid("query");
    if (!(await verifyPlayableAudio(deps, q))) {
      throw new AppError(403, "forbidden", "The link is invalid or has expired");
    }
    return serveAudio(c, deps, q.key, {
      contentType: null,
      filename: `prompt.${q.key.split(".").pop() ?? "wav"}`,
      cacheControl: "private, max-age=3600",
      what: "Audio",
    });
  })
  .route("/greetings", greetingRoutes)
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const filters: (SQL | undefined)[] = [scopeOf(currentUser(c))];
    if (q.unread === true) filters.push(isNull(voicemails.readAt));
    if (q.unread === false) filters.push(isNotNull(voicemails.readAt));
    if (q.didId) filters.push(eq(voicemails.didId, q.didId));
    const page = {
      where: and(...filters),
      orderBy: [desc(voicemails.receivedAt), desc(voicemails.id)],
      limit: q.limit,
      offset: q.offset,
    };
    return c.json(await listSelected(c.get("deps").db, voicemails, columns, page, toDto), 200);
  })
  .openapi(getRoute, async (c) => {
    const row = await findVisible(c.get("deps").db, currentUser(c), c.req.valid("param").id);
    return c.json(toDto(row), 200);
  })
  .openapi(audioRoute, async (c) => {
    const deps = c.get("deps");
    const row = await findVisible(deps.db, currentUser(c), c.req.valid("param").id);
    if (row.audioStatus !== "stored" || !row.blobKey) throw notFound("Voicemail audio");
    return serveAudio(c, deps, row.blobKey, {
      contentType: row.contentType,
      filename: `voicemail-${row.id}.${audioExtension(row.contentType)}`,
      cacheControl: "private, no-cache",
      what: "Voicemail audio",
    });
  })
  .openapi(readRoute, async (c) => {
    const deps = c.get("deps");
    const row = await findVisible(deps.db, currentUser(c), c.req.valid("param").id);
    if (row.readAt === null) {
      const readAt = new Date(deps.clock.now());
      await deps.db
        .update(voicemails)
        .set({ readAt })
        .where(and(eq(voicemails.id, row.id), isNull(voicemails.readAt)));
      row.readAt = readAt;
      await updateMwi(deps, row.userId);
    }
    return c.json(toDto(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const deps = c.get("deps");
    const row = await findVisible(deps.db, currentUser(c), c.req.valid("param").id);
    // Hidden first (lists, MWI counts), then the audio goes; the row stays for the CDR's link.
    await deps.db
      .update(voicemails)
      .set({ deletedAt: new Date(deps.clock.now()), blobKey: null })
      .where(eq(voicemails.id, row.id));
    if (row.blobKey) await deps.blobs.delete(row.blobKey);
    if (row.twilioRecordingSid && !row.twilioDeletedAt) {
      await enqueueTwilioDelete(deps, row.id, row.twilioRecordingSid, "deleted");
    }
    await updateMwi(deps, row.userId);
    return c.body(null, 204);
  });
