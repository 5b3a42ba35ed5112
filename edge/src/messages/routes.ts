/**
 * /api/messages: SMS/MMS for the UI (SPEC §5).
 *
 * - GET  /conversations: one entry per (DID, peer) with the last message, the
 *   unread count and the contact's name, newest first, paginated.
 * - GET  /conversations/{didId}/{peer}: its messages, newest first, with media links;
 *   POST …/read marks its inbound messages read. `didId` "none" is the admin's view of
 *   messages to a number that is not a DID.
 * - POST / sends a message (text and/or uploaded images): stored as queued and
 *   sent by the outbox (`sms.send`), answered 202 at once.
 * - POST /{id}/resend queues a failed or undelivered message again.
 * - POST /media uploads an image to attach (raw body or multipart "file"; 5 MB; removed
 *   after a day when it was never sent);
 *   GET /media/{mediaId} serves stored media to those who may see its message;
 *   GET /media/{mediaId}/public is the signed, expiring link Twilio fetches.
 * - /auto-replies: the DIDs' auto-reply rules (admin), see auto-reply-routes.ts.
 *
 * A user sees only the conversations of their DIDs (access.ts); anything else is 404.
 */
import {
  contactNumbers,
  contacts,
  type Db,
  dids,
  e164Schema,
  jobs,
  messageMedia,
  messageStatuses,
  messages,
} from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, count, desc, eq, inArray, isNull, or, type SQL, sql } from "drizzle-orm";
import { bodyLimit } from "hono/body-limit";
import { currentUser, requireUser } from "../auth/middleware.ts";
import { BlobTooLargeError } from "../blobs/store.ts";
import type { AuthUser } from "../env.ts";
import { AppError, conflict, errorBody, notFound } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  errorEnvelopeSchema,
  errorResponses,
  iso,
  isoTimestamp,
  jsonBody,
  jsonResponse,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";
import { enqueueJob } from "../jobs/queue.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { twilioCredentials } from "../twilio/credentials.ts";
import { type DidRef, visibleDids } from "./access.ts";
import { autoRepliesRouter } from "./auto-reply-routes.ts";
import {
  SMS_SEND,
  SMS_UPLOAD_EXPIRE,
  type SmsSendPayload,
  type SmsUploadExpirePayload,
  smsSendKey,
  smsUploadExpireKey,
} from "./job-kinds.ts";
import {
  extensionFor,
  inboundMediaKey,
  isMediaId,
  MAX_MEDIA_BYTES,
  MAX_MEDIA_PER_MESSAGE,
  mediaTypeOf,
  SENDABLE_IMAGE_TYPES,
  UPLOAD_TTL_MS,
  uploadKey,
  verifyMediaSignature,
} from "./media.ts";

// --- response shapes ------------------------------------------------------------

const mediaSchema = z
  .object({
    id: z.string(),
    contentType: z.string(),
    sizeBytes: z.int(),
    url: z.string().openapi({ description: "GET it with the session cookie" }),
  })
  .openapi("MessageMedia");

export const messageSchema = z
  .object({
    id: z.string(),
    direction: z.enum(["inbound", "outbound"]),
    didId: z.string().nullable(),
    from: z.string(),
    to: z.string(),
    peer: z.string().openapi({ description: "The other party: the conversation key with didId" }),
    body: z.string(),
    status: z.enum(messageStatuses),
    errorCode: z.int().nullable(),
    errorMessage: z.string().nullable(),
    isAutoReply: z.boolean(),
    sentByUserId: z.string().nullable(),
    readAt: isoTimestamp.nullable(),
    createdAt: isoTimestamp,
    updatedAt: isoTimestamp,
    media: z.array(mediaSchema),
  })
  .openapi("Message");
export type MessageDto = z.infer<typeof messageSchema>;

const conversationSchema = z
  .object({
    didId: z.string().nullable(),
    didE164: z.string().nullable(),
    peer: z.string(),
    contactName: z.string().nullable(),
    unreadCount: z.int(),
    messageCount: z.int(),
    lastMessage: messageSchema,
  })
  .openapi("Conversation");

const uploadedSchema = z
  .object({ id: z.string(), contentType: z.string(), sizeBytes: z.int() })
  .openapi("UploadedMessageMedia");

const sendSchema = z
  .object({
    from: e164Schema
      .optional()
      .openapi({ description: "A DID you may use; default: yours or the installation's" }),
    to: e164Schema,
    body: z.string().max(1600).optional(),
    mediaIds: z
      .array(z.string().refine(isMediaId, "must be an id from POST /api/messages/media"))
      .max(MAX_MEDIA_PER_MESSAGE)
      .optional(),
  })
  .strict()
  .refine((b) => (b.body ?? "").trim() !== "" || (b.mediaIds?.length ?? 0) > 0, {
    message: "a message needs text or an image",
    path: ["body"],
  })
  .openapi("SendMessage");

// --- reading ----------------------------------------------------------------------

const messageColumns = {
  id: messages.id,
  direction: messages.direction,
  didId: messages.didId,
  fromNumber: messages.fromNumber,
  toNumber: messages.toNumber,
  peerNumber: messages.peerNumber,
  body: messages.body,
  status: messages.status,
  errorCode: messages.errorCode,
  errorMessage: messages.errorMessage,
  isAutoReply: messages.isAutoReply,
  sentByUserId: messages.sentByUserId,
  readAt: messages.readAt,
  createdAt: messages.createdAt,
  updatedAt: messages.updatedAt,
};
type MessageRow = SelectedRow<typeof messageColumns>;

function toDto(row: MessageRow, media: MessageDto["media"]): MessageDto {
  return {
    id: row.id,
    direction: row.direction,
    didId: row.didId,
    from: row.fromNumber,
    to: row.toNumber,
    peer: row.peerNumber,
    body: row.body,
    status: row.status,
    errorCode: row.errorCode,
    errorMessage: row.errorMessage,
    isAutoReply: row.isAutoReply,
    sentByUserId: row.sentByUserId,
    readAt: iso(row.readAt),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    media,
  };
}

/** Media of these messages, by message id, as the API links them. */
async function mediaOf(db: Db, messageIds: string[]): Promise<Map<string, MessageDto["media"]>> {
  const out = new Map<string, MessageDto["media"]>();
  if (messageIds.length === 0) return out;
  const rows = await db
    .select({
      id: messageMedia.id,
      messageId: messageMedia.messageId,
      contentType: messageMedia.contentType,
      sizeBytes: messageMedia.sizeBytes,
    })
    .from(messageMedia)
    .where(inArray(messageMedia.messageId, messageIds))
    .orderBy(messageMedia.blobKey);
  for (const r of rows) {
    const list = out.get(r.messageId) ?? [];
    list.push({
      id: r.id,
      contentType: r.contentType,
      sizeBytes: r.sizeBytes,
      url: `/api/messages/media/${r.id}`,
    });
    out.set(r.messageId, list);
  }
  return out;
}

async function dtosOf(db: Db, rows: MessageRow[]): Promise<MessageDto[]> {
  const media = await mediaOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toDto(r, media.get(r.id) ?? []));
}

/** Filter on messages of the DIDs `me` may see; undefined = all (admin). */
function scopeOf(me: AuthUser, visible: readonly DidRef[]): SQL | undefined {
  if (me.role === "admin") return undefined;
  return visible.length > 0
    ? inArray(
        messages.didId,
        visible.map((d) => d.id),
      )
    : sql`0`;
}

/** The conversation's filter, or 404 when `me` may not see it. "none" = messages that reached no DID (admin). */
function conversationFilter(me: AuthUser, visible: readonly DidRef[], didId: string, peer: string): SQL {
  if (didId === "none") {
    if (me.role !== "admin") throw notFound("Conversation");
    return sql`${isNull(messages.didId)} and ${eq(messages.peerNumber, peer)}`;
  }
  if (me.role !== "admin" && !visible.some((d) => d.id === didId)) throw notFound("Conversation");
  return sql`${eq(messages.didId, didId)} and ${eq(messages.peerNumber, peer)}`;
}

/** Contact names for peers: the user's own contact first, then a shared one (first by name). */
async function contactNames(db: Db, me: AuthUser, peers: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (peers.length === 0) return out;
  const rows = await db
    .select({ e164: contactNumbers.e164, name: contacts.name, owner: contacts.ownerUserId })
    .from(contactNumbers)
    .innerJoin(contacts, eq(contacts.id, contactNumbers.contactId))
    .where(
      and(
        inArray(contactNumbers.e164, peers),
        or(isNull(contacts.ownerUserId), eq(contacts.ownerUserId, me.id)),
      ),
    )
    .orderBy(contacts.name);
  const own = new Set<string>();
  for (const r of rows) {
    if (r.owner === me.id) {
      if (!own.has(r.e164)) out.set(r.e164, r.name);
      own.add(r.e164);
    } else if (!out.has(r.e164)) out.set(r.e164, r.name);
  }
  return out;
}

interface ConversationRow {
  didId: string | null;
  peer: string;
  unread: number;
  count: number;
  total: number;
  lastId: string;
}

/** One page of conversations (groups of (did, peer)) with the total number of groups. */
async function listConversations(
  db: Db,
  where: SQL | undefined,
  limit: number,
  offset: number,
): Promise<{ rows: ConversationRow[]; total: number }> {
  // The last message of each group is found through the (did_id, peer_number, created_at) index.
  const query = db
    .select({
      didId: messages.didId,
      peer: messages.peerNumber,
      unread: sql<number>`sum(case when ${messages.direction} = 'inbound' and ${messages.readAt} is null then 1 else 0 end)`,
      count: sql<number>`count(*)`,
      total: sql<number>`count(*) over ()`,
      lastAt: sql<number>`max(${messages.createdAt})`,
      // Qualified by hand: drizzle leaves a single-table select's columns unqualified, which inside
      // the subquery would name m2's own columns.
      lastId: sql<string>`(select m2.id from messages m2 where m2.did_id is "messages"."did_id" and m2.peer_number = "messages"."peer_number" order by m2.created_at desc, m2.id desc limit 1)`,
    })
    .from(messages)
    .where(where)
    .groupBy(messages.didId, messages.peerNumber)
    .orderBy(desc(sql`max(${messages.createdAt})`), messages.didId, messages.peerNumber)
    .limit(limit)
    .offset(offset);
  const rows = await query;
  let total = rows[0] ? Number(rows[0].total) : 0;
  if (rows.length === 0 && offset > 0) {
    // Past the last page there is no row to carry the total: count the groups on their own.
    const groups = db
      .select({ one: sql`1`.as("one") })
      .from(messages)
      .where(where)
      .groupBy(messages.didId, messages.peerNumber)
      .as("groups");
    const [counted] = await db.select({ n: count() }).from(groups);
    total = counted?.n ?? 0;
  }
  return {
    rows: rows.map((r) => ({
      didId: r.didId,
      peer: r.peer,
      unread: Number(r.unread),
      count: Number(r.count),
      total: Number(r.total),
      lastId: r.lastId,
    })),
    total,
  };
}

// --- routes -------------------------------------------------------------------------

const errorJson = (description: string) => ({
  description,
  content: { "application/json": { schema: errorEnvelopeSchema } },
});

const conversationParams = z.object({
  didId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "didId", in: "path" }, description: 'A DID id, or "none" (admin)' }),
  peer: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "peer", in: "path" }, description: "The other party's number (URL-encoded)" }),
});

const mediaParams = z.object({
  mediaId: z
    .string()
    .refine(isMediaId, "not a media id")
    .openapi({ param: { name: "mediaId", in: "path" } }),
});

const messageIdParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

const conversationsRoute = createRoute({
  method: "get",
  path: "/conversations",
  tags: ["messages"],
  summary: "Conversations (per DID and peer) with unread counts, newest first",
  middleware: [requireUser] as const,
  request: { query: pageQuery },
  responses: {
    200: jsonResponse(pageOf(conversationSchema), "A page of conversations"),
    ...errorResponses(400, 401),
  },
});

const conversationRoute = createRoute({
  method: "get",
  path: "/conversations/{didId}/{peer}",
  tags: ["messages"],
  summary: "Messages of one conversation, newest first",
  middleware: [requireUser] as const,
  request: { params: conversationParams, query: pageQuery },
  responses: {
    200: jsonResponse(pageOf(messageSchema), "A page of messages"),
    ...errorResponses(400, 401, 404),
  },
});

const readRoute = createRoute({
  method: "post",
  path: "/conversations/{didId}/{peer}/read",
  tags: ["messages"],
  summary: "Mark a conversation's messages read",
  middleware: [requireUser] as const,
  request: { params: conversationParams },
  responses: {
    200: jsonResponse(z.object({ updated: z.int() }), "How many messages became read"),
    ...errorResponses(401, 404),
  },
});

const sendRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["messages"],
  summary: "Send an SMS/MMS (queued; delivery status follows)",
  middleware: [requireUser] as const,
  request: { body: jsonBody(sendSchema) },
  responses: { 202: jsonResponse(messageSchema, "Queued for sending"), ...errorResponses(400, 401) },
});

const resendRoute = createRoute({
  method: "post",
  path: "/{id}/resend",
  tags: ["messages"],
  summary: "Send a failed or undelivered message again",
  middleware: [requireUser] as const,
  request: { params: messageIdParams },
  responses: { 202: jsonResponse(messageSchema, "Queued again"), ...errorResponses(401, 404, 409) },
});

// Plain OpenAPI schemas, not zod: the handler reads and checks the body itself (no validator is generated).
const imageContent = Object.fromEntries(
  [...SENDABLE_IMAGE_TYPES, "multipart/form-data"].map((t) => [
    t,
    { schema: { type: "string" as const, format: "binary" } },
  ]),
);

const uploadLimit = bodyLimit({
  maxSize: MAX_MEDIA_BYTES + 64 * 1024,
  onError: (c) =>
    c.json(errorBody("payload_too_large", `Images are limited to ${MAX_MEDIA_BYTES} bytes`), 413),
});

const uploadRoute = createRoute({
  method: "post",
  path: "/media",
  tags: ["messages"],
  summary: `Upload an image to send (JPEG, PNG, GIF, WebP; at most ${MAX_MEDIA_BYTES} bytes)`,
  // app.ts lets this path skip the JSON body limit; this one applies instead.
  middleware: [requireUser, uploadLimit] as const,
  request: {
    body: {
      required: true,
      description: 'The image as the body, or multipart/form-data field "file"',
      content: imageContent,
    },
  },
  responses: {
    201: jsonResponse(uploadedSchema, "Stored; pass its id in mediaIds"),
    ...errorResponses(400, 401),
    413: errorJson("Larger than 5 MB"),
    415: errorJson("Not a JPEG, PNG, GIF or WebP image"),
  },
});

const binary = { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } };

const mediaRoute = createRoute({
  method: "get",
  path: "/media/{mediaId}",
  tags: ["messages"],
  summary: "A message's media file",
  middleware: [requireUser] as const,
  request: { params: mediaParams },
  responses: {
    200: { description: "The file, with its content type", content: binary },
    ...errorResponses(401, 404),
  },
});

const publicMediaRoute = createRoute({
  method: "get",
  path: "/media/{mediaId}/public",
  tags: ["messages"],
  summary: "Outgoing media for Twilio (signed, expiring link; no session)",
  request: {
    params: mediaParams,
    query: z.object({ exp: z.string().max(16).optional(), sig: z.string().max(128).optional() }),
  },
  responses: { 200: { description: "The file", content: binary }, ...errorResponses(404) },
});

/** Response headers of a stored media file: never rendered as a page, never cached by shared caches. */
function mediaHeaders(contentType: string, size: number, filename: string): Record<string, string> {
  return {
    "Content-Type": contentType,
    "Content-Length": String(size),
    "Content-Disposition": `inline; filename="${filename}"`,
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
  };
}

async function serveMedia(deps: EdgeDeps, row: { id: string; blobKey: string; contentType: string }) {
  const blob = await deps.blobs.get(row.blobKey);
  if (!blob) throw notFound("Media");
  return {
    body: blob.body,
    headers: mediaHeaders(row.contentType, blob.meta.size, `${row.id}.${extensionFor(row.contentType)}`),
  };
}

/** The first bytes of each sendable image type: an upload must be what it claims to be. */
function looksLike(type: string, b: Uint8Array): boolean {
  const at = (i: number, ...bytes: number[]) => bytes.every((v, k) => b[i + k] === v);
  switch (type) {
    case "image/jpeg":
      return at(0, 0xff, 0xd8, 0xff);
    case "image/png":
      return at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
    case "image/gif":
      return at(0, 0x47, 0x49, 0x46, 0x38);
    case "image/webp":
      return at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50);
    default:
      return false;
  }
}

/** The image of an upload request (raw body or multipart "file"), type-checked; throws 400/413/415. */
async function uploadedImage(req: Request): Promise<{ bytes: Uint8Array; type: string }> {
  const declared = mediaTypeOf(req.headers.get("content-type"));
  let bytes: Uint8Array;
  let type: string;
  if (declared === "multipart/form-data") {
    const form = await req.formData().catch(() => {
      throw new AppError(400, "bad_request", "The multipart body could not be read");
    });
    // unknown: the Node and Workers typings of FormData.get differ; a file part is a Blob on both.
    const file: unknown = form.get("file");
    if (!(file instanceof Blob))
      throw new AppError(400, "bad_request", 'The multipart body needs a "file" field');
    type = mediaTypeOf(file.type);
    bytes = new Uint8Array(await file.arrayBuffer());
  } else {
    type = declared;
    bytes = new Uint8Array(await req.arrayBuffer());
  }
  if (bytes.byteLength > MAX_MEDIA_BYTES)
    throw new AppError(413, "payload_too_large", `Images are limited to ${MAX_MEDIA_BYTES} bytes`);
  if (bytes.byteLength === 0) throw new AppError(400, "bad_request", "The image is empty");
  if (!SENDABLE_IMAGE_TYPES.has(type) || !looksLike(type, bytes))
    throw new AppError(415, "bad_request", "Only JPEG, PNG, GIF and WebP images can be sent");
  return { bytes, type };
}

/** The DID to send from: the one asked for (if `me` may use it), else the default sender or their first DID. */
async function senderDid(db: Db, visible: readonly DidRef[], from: string | undefined): Promise<DidRef> {
  if (from !== undefined) {
    const did = visible.find((d) => d.e164 === from);
    if (!did)
      throw new AppError(400, "validation_failed", "You cannot send from this number", [
        { path: "from", message: "not one of your numbers" },
      ]);
    return did;
  }
  const { defaultSenderE164 } = await readSetting(db, "messaging");
  const did = visible.find((d) => d.e164 === defaultSenderE164) ?? visible[0];
  if (!did)
    throw new AppError(400, "validation_failed", "No number to send from", [
      { path: "from", message: "no DID rings one of your devices" },
    ]);
  return did;
}

async function loadDto(db: Db, id: string): Promise<MessageDto> {
  const [row] = await db.select(messageColumns).from(messages).where(eq(messages.id, id));
  if (!row) throw notFound("Message");
  const [dto] = await dtosOf(db, [row]);
  if (!dto) throw notFound("Message");
  return dto;
}

export const messagesRouter = createRouter()
  .route("/auto-replies", autoRepliesRouter)
  .openapi(conversationsRoute, async (c) => {
    const me = currentUser(c);
    const { db } = c.get("deps");
    const { limit, offset } = c.req.valid("query");
    const visible = await visibleDids(db, me);
    const where = scopeOf(me, visible);
    const { rows, total } = await listConversations(db, where, limit, offset);
    const lasts = rows.length
      ? await db
          .select(messageColumns)
          .from(messages)
          .where(
            inArray(
              messages.id,
              rows.map((r) => r.lastId),
            ),
          )
      : [];
    const lastDtos = new Map((await dtosOf(db, lasts)).map((d) => [d.id, d]));
    const names = await contactNames(
      db,
      me,
      rows.map((r) => r.peer),
    );
    const didE164 = new Map(
      (me.role === "admin" ? await db.select({ id: dids.id, e164: dids.e164 }).from(dids) : visible).map(
        (d) => [d.id, d.e164],
      ),
    );
    const items = rows.flatMap((r) => {
      const lastMessage = lastDtos.get(r.lastId);
      if (!lastMessage) return [];
      return [
        {
          didId: r.didId,
          didE164: r.didId ? (didE164.get(r.didId) ?? null) : null,
          peer: r.peer,
          contactName: names.get(r.peer) ?? null,
          unreadCount: r.unread,
          messageCount: r.count,
          lastMessage,
        },
      ];
    });
    return c.json({ items, total, limit, offset }, 200);
  })
  .openapi(conversationRoute, async (c) => {
    const me = currentUser(c);
    const { db } = c.get("deps");
    const { didId, peer } = c.req.valid("param");
    const { limit, offset } = c.req.valid("query");
    const where = conversationFilter(me, await visibleDids(db, me), didId, peer);
    const [rows, counted] = await Promise.all([
      db
        .select(messageColumns)
        .from(messages)
        .where(where)
        .orderBy(desc(messages.createdAt), desc(messages.id))
        .limit(limit)
        .offset(offset),
      db.select({ n: sql<number>`count(*)` }).from(messages).where(where),
    ]);
    const total = Number(counted[0]?.n ?? 0);
    if (total === 0) throw notFound("Conversation");
    return c.json({ items: await dtosOf(db, rows), total, limit, offset }, 200);
  })
  .openapi(readRoute, async (c) => {
    const me = currentUser(c);
    const deps = c.get("deps");
    const { didId, peer } = c.req.valid("param");
    const where = conversationFilter(me, await visibleDids(deps.db, me), didId, peer);
    const [exists] = await deps.db.select({ id: messages.id }).from(messages).where(where).limit(1);
    if (!exists) throw notFound("Conversation");
    const updated = await deps.db
      .update(messages)
      .set({ readAt: new Date(deps.clock.now()) })
      .where(and(where, eq(messages.direction, "inbound"), isNull(messages.readAt)))
      .returning({ id: messages.id });
    return c.json({ updated: updated.length }, 200);
  })
  .openapi(sendRoute, async (c) => {
    const me = currentUser(c);
    const deps = c.get("deps");
    const input = c.req.valid("json");
    const did = await senderDid(deps.db, await visibleDids(deps.db, me), input.from);
    const uploads = input.mediaIds ?? [];
    if (new Set(uploads).size !== uploads.length)
      throw new AppError(400, "validation_failed", "The same image is attached twice", [
        { path: "mediaIds", message: "ids must not repeat" },
      ]);
    const messageId = crypto.randomUUID();
    const now = new Date(deps.clock.now());
    // Copy each upload under the message first; the rows then go in one batch with the message and its job.
    const copied: { key: string; contentType: string; size: number }[] = [];
    try {
      for (const [i, uploadId] of uploads.entries()) {
        const blob = await deps.blobs.get(uploadKey(me.id, uploadId));
        if (!blob || !SENDABLE_IMAGE_TYPES.has(blob.meta.contentType)) {
          await blob?.body.cancel().catch(() => undefined);
          throw new AppError(400, "validation_failed", "Unknown image", [
            {
              path: `mediaIds.${i}`,
              message: "no such upload (upload it with POST /api/messages/media first)",
            },
          ]);
        }
        const key = inboundMediaKey(messageId, i);
        const meta = await deps.blobs.put(key, blob.body, {
          contentType: blob.meta.contentType,
          sha256: blob.meta.sha256,
          maxBytes: MAX_MEDIA_BYTES,
        });
        copied.push({ key, contentType: meta.contentType, size: meta.size });
      }
      const payload: SmsSendPayload = { v: 1, messageId };
      await deps.db.batch([
        deps.db.insert(messages).values({
          id: messageId,
          direction: "outbound",
          didId: did.id,
          fromNumber: did.e164,
          toNumber: input.to,
          peerNumber: input.to,
          // Whitespace alone beside an image is no text.
          body: (input.body ?? "").trim() === "" ? "" : (input.body ?? ""),
          status: "queued",
          sentByUserId: me.id,
          createdAt: now,
          updatedAt: now,
        }),
        ...copied.map((m) =>
          deps.db.insert(messageMedia).values({
            messageId,
            blobKey: m.key,
            contentType: m.contentType,
            sizeBytes: m.size,
            createdAt: now,
          }),
        ),
        deps.db.insert(jobs).values({
          kind: SMS_SEND,
          payload,
          idempotencyKey: smsSendKey(messageId),
          nextAttemptAt: now,
        }),
      ]);
    } catch (err) {
      await Promise.all(copied.map((m) => deps.blobs.delete(m.key).catch(() => undefined)));
      if (err instanceof BlobTooLargeError)
        throw new AppError(413, "payload_too_large", `Images are limited to ${MAX_MEDIA_BYTES} bytes`);
      throw err;
    }
    deps.jobs?.wake();
    // The uploads now live under the message.
    await Promise.all(uploads.map((id) => deps.blobs.delete(uploadKey(me.id, id)).catch(() => undefined)));
    return c.json(await loadDto(deps.db, messageId), 202);
  })
  .openapi(resendRoute, async (c) => {
    const me = currentUser(c);
    const deps = c.get("deps");
    const { id } = c.req.valid("param");
    const scope = scopeOf(me, await visibleDids(deps.db, me));
    const [row] = await deps.db
      .select({ id: messages.id, direction: messages.direction, status: messages.status })
      .from(messages)
      .where(and(eq(messages.id, id), scope));
    if (!row) throw notFound("Message");
    const now = new Date(deps.clock.now());
    // One conditional update: two clicks on "resend" queue it once.
    const reset = await deps.db
      .update(messages)
      .set({ status: "queued", errorCode: null, errorMessage: null, twilioMessageSid: null, updatedAt: now })
      .where(
        and(
          eq(messages.id, id),
          eq(messages.direction, "outbound"),
          inArray(messages.status, ["failed", "undelivered"]),
        ),
      )
      .returning({ id: messages.id });
    if (reset.length === 0) throw conflict("Only a failed or undelivered outbound message can be resent");
    const payload: SmsSendPayload = { v: 1, messageId: id };
    await deps.db.insert(jobs).values({
      kind: SMS_SEND,
      payload,
      idempotencyKey: smsSendKey(id, `resend-${now.getTime()}-${crypto.randomUUID()}`),
      nextAttemptAt: now,
    });
    deps.jobs?.wake();
    return c.json(await loadDto(deps.db, id), 202);
  })
  .openapi(uploadRoute, async (c) => {
    const me = currentUser(c);
    const deps = c.get("deps");
    const { bytes, type } = await uploadedImage(c.req.raw);
    const id = crypto.randomUUID();
    const meta = await deps.blobs.put(uploadKey(me.id, id), bytes, {
      contentType: type,
      maxBytes: MAX_MEDIA_BYTES,
    });
    const expire: SmsUploadExpirePayload = { v: 1, userId: me.id, uploadId: id };
    await enqueueJob(deps, {
      kind: SMS_UPLOAD_EXPIRE,
      payload: expire,
      idempotencyKey: smsUploadExpireKey(id),
      runAt: new Date(deps.clock.now() + UPLOAD_TTL_MS),
    });
    return c.json({ id, contentType: type, sizeBytes: meta.size }, 201);
  })
  .openapi(mediaRoute, async (c) => {
    const me = currentUser(c);
    const deps = c.get("deps");
    const { mediaId } = c.req.valid("param");
    const scope = scopeOf(me, await visibleDids(deps.db, me));
    const [row] = await deps.db
      .select({ id: messageMedia.id, blobKey: messageMedia.blobKey, contentType: messageMedia.contentType })
      .from(messageMedia)
      .innerJoin(messages, eq(messages.id, messageMedia.messageId))
      .where(and(eq(messageMedia.id, mediaId), scope));
    if (!row) throw notFound("Media");
    const { body, headers } = await serveMedia(deps, row);
    return c.body(body, 200, headers);
  })
  .openapi(publicMediaRoute, async (c) => {
    const deps = c.get("deps");
    const { mediaId } = c.req.valid("param");
    const { exp, sig } = c.req.valid("query");
    const creds = await twilioCredentials(deps);
    const ok = creds
      ? await verifyMediaSignature(creds.authToken, mediaId, exp, sig, deps.clock.now())
      : false;
    if (!ok) throw notFound("Media");
    const [row] = await deps.db
      .select({ id: messageMedia.id, blobKey: messageMedia.blobKey, contentType: messageMedia.contentType })
      .from(messageMedia)
      .where(eq(messageMedia.id, mediaId));
    if (!row) throw notFound("Media");
    const { body, headers } = await serveMedia(deps, row);
    return c.body(body, 200, headers);
  });
