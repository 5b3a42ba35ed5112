/**
 * /api/blocklist (admin): numbers, prefixes and regexes whose calls are rejected
 * or sent silently to voicemail. Patterns are validated on write (pattern.ts):
 * numbers normalized to E.164, regexes refused when they could backtrack
 * catastrophically. The same pattern and match type twice is a 409.
 */
import {
  blocklist,
  blocklistActions,
  blocklistMatchTypes,
  type Db,
  selectBlocklistSchema,
} from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, sql } from "drizzle-orm";
import { requireAdmin } from "../auth/middleware.ts";
import { AppError, notFound } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  deleteByIdOr404,
  errorResponses,
  findByIdOr404,
  idParams,
  iso,
  isoTimestamp,
  jsonBody,
  jsonResponse,
  listPage,
  uniqueOr409,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import { type BlockMatchType, validateBlockPattern } from "./pattern.ts";

export const blockEntrySchema = selectBlocklistSchema
  .extend({ createdAt: isoTimestamp })
  .openapi("BlocklistEntry");

const noteSchema = z.string().trim().max(500);
const createEntrySchema = z
  .object({
    pattern: z.string().min(1).max(200).openapi({ example: "+19005550100" }),
    matchType: z.enum(blocklistMatchTypes),
    action: z.enum(blocklistActions).default("reject"),
    note: noteSchema.default(""),
  })
  .strict()
  .openapi("CreateBlocklistEntry");

const updateEntrySchema = z
  .object({
    pattern: z.string().min(1).max(200).optional(),
    matchType: z.enum(blocklistMatchTypes).optional(),
    action: z.enum(blocklistActions).optional(),
    note: noteSchema.optional(),
  })
  .strict()
  .openapi("UpdateBlocklistEntry");

const listQuery = pageQuery.extend({
  q: z.string().max(100).optional().openapi({ description: "Search in pattern and note" }),
  matchType: z.enum(blocklistMatchTypes).optional(),
});

type EntryRow = typeof blocklist.$inferSelect;

function toDto(row: EntryRow): z.infer<typeof blockEntrySchema> {
  return { ...row, createdAt: iso(row.createdAt) };
}

/** The stored form of a pattern, or a 400 naming the problem. */
function checkedPattern(matchType: BlockMatchType, pattern: string): string {
  const result = validateBlockPattern(matchType, pattern);
  if (!result.ok) {
    throw new AppError(400, "validation_failed", `Invalid ${matchType} pattern: ${result.message}`, [
      { path: "pattern", message: result.message },
    ]);
  }
  return result.pattern;
}

function findEntry(db: Db, id: string): Promise<EntryRow> {
  return findByIdOr404(db, blocklist, id, "Blocklist entry");
}

const duplicate = "This pattern is already on the blocklist";

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["blocklist"],
  summary: "List blocklist entries",
  middleware: [requireAdmin] as const,
  request: { query: listQuery },
  responses: {
    200: jsonResponse(pageOf(blockEntrySchema), "A page of entries"),
    ...errorResponses(400, 401, 403),
  },
});

const createEntryRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["blocklist"],
  summary: "Block a number, prefix or regex",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createEntrySchema) },
  responses: { 201: jsonResponse(blockEntrySchema, "The new entry"), ...errorResponses(400, 401, 403, 409) },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["blocklist"],
  summary: "Get a blocklist entry",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(blockEntrySchema, "The entry"), ...errorResponses(401, 403, 404) },
});

const updateRoute = createRoute({
  method: "patch",
  path: "/{id}",
  tags: ["blocklist"],
  summary: "Change a blocklist entry",
  middleware: [requireAdmin] as const,
  request: { params: idParams, body: jsonBody(updateEntrySchema) },
  responses: {
    200: jsonResponse(blockEntrySchema, "The changed entry"),
    ...errorResponses(400, 401, 403, 404, 409),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["blocklist"],
  summary: "Unblock",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

export const blocklistRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const { limit, offset, q, matchType } = c.req.valid("query");
    const db = c.get("deps").db;
    const filters = [];
    if (matchType) filters.push(eq(blocklist.matchType, matchType));
    if (q) {
      const needle = `%${q.toLowerCase().replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
      filters.push(
        sql`(lower(${blocklist.pattern}) like ${needle} escape '\\' or lower(${blocklist.note}) like ${needle} escape '\\')`,
      );
    }
    const where = filters.length ? and(...filters) : undefined;
    const orderBy = [desc(blocklist.createdAt), blocklist.id];
    return c.json(await listPage(db, blocklist, { where, orderBy, limit, offset }, toDto), 200);
  })
  .openapi(createEntryRoute, async (c) => {
    const body = c.req.valid("json");
    const pattern = checkedPattern(body.matchType, body.pattern);
    const [row] = await uniqueOr409(
      () =>
        c
          .get("deps")
          .db.insert(blocklist)
          .values({ pattern, matchType: body.matchType, action: body.action, note: body.note })
          .returning(),
      duplicate,
    );
    if (!row) throw new Error("insert returned no row");
    return c.json(toDto(row), 201);
  })
  .openapi(getRoute, async (c) => {
    return c.json(toDto(await findEntry(c.get("deps").db, c.req.valid("param").id)), 200);
  })
  .openapi(updateRoute, async (c) => {
    const db = c.get("deps").db;
    const current = await findEntry(db, c.req.valid("param").id);
    const body = c.req.valid("json");
    const matchType = body.matchType ?? current.matchType;
    const patch: Partial<typeof blocklist.$inferInsert> = {};
    if (body.pattern !== undefined || body.matchType !== undefined) {
      patch.pattern = checkedPattern(matchType, body.pattern ?? current.pattern);
      patch.matchType = matchType;
    }
    if (body.action !== undefined) patch.action = body.action;
    if (body.note !== undefined) patch.note = body.note;
    if (Object.keys(patch).length === 0) return c.json(toDto(current), 200);
    const [row] = await uniqueOr409(
      () => db.update(blocklist).set(patch).where(eq(blocklist.id, current.id)).returning(),
      duplicate,
    );
    if (!row) throw notFound("Blocklist entry");
    return c.json(toDto(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteByIdOr404(c.get("deps").db, blocklist, c.req.valid("param").id, "Blocklist entry");
    return c.body(null, 204);
  });
