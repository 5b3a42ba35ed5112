/**
 * /api/messages/auto-replies (admin): the auto-reply rules of the DIDs. A rule
 * answers an inbound SMS always, after hours, during DND, or when the message
 * contains its keyword (a whole word, any case); the lowest priority wins and a
 * sender gets at most one auto-reply per 30 minutes (inbound.ts).
 */
import { autoReplies, autoReplyTriggers, dids } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { asc, eq, type SQL } from "drizzle-orm";
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
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";

export const autoReplySchema = z
  .object({
    id: z.string(),
    didId: z.string(),
    trigger: z.enum(autoReplyTriggers),
    keyword: z.string().nullable(),
    text: z.string(),
    enabled: z.boolean(),
    priority: z.int(),
    createdAt: isoTimestamp,
    updatedAt: isoTimestamp,
  })
  .openapi("AutoReply");

const keywordSchema = z
  .string()
  .trim()
  .min(1)
  .max(50)
  .regex(
    /^[\p{L}\p{N}][\p{L}\p{N} '-]*$/u,
    "letters, digits, spaces, ' and - only, starting with a letter or digit",
  );

const fields = {
  trigger: z.enum(autoReplyTriggers),
  keyword: keywordSchema.nullable().optional(),
  text: z.string().trim().min(1).max(1600),
  enabled: z.boolean().optional(),
  priority: z.int().min(0).max(10_000).optional(),
};

const createSchema = z
  .object({ didId: z.string().min(1).max(64), ...fields })
  .strict()
  .openapi("CreateAutoReply");

const updateSchema = z
  .object({
    trigger: fields.trigger.optional(),
    keyword: fields.keyword,
    text: fields.text.optional(),
    enabled: fields.enabled,
    priority: fields.priority,
  })
  .strict()
  .openapi("UpdateAutoReply");

/** A keyword rule needs its keyword, the other triggers have none. */
function checkKeyword(trigger: string, keyword: string | null | undefined): void {
  if (trigger === "keyword" && !keyword)
    throw new AppError(400, "validation_failed", "A keyword rule needs a keyword", [
      { path: "keyword", message: "required for trigger keyword" },
    ]);
  if (trigger !== "keyword" && keyword)
    throw new AppError(400, "validation_failed", "Only keyword rules have a keyword", [
      { path: "keyword", message: `not used by trigger ${trigger}` },
    ]);
}

type AutoReplyRow = typeof autoReplies.$inferSelect;

function toDto(row: AutoReplyRow): z.infer<typeof autoReplySchema> {
  return { ...row, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
}

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["messages"],
  summary: "Auto-reply rules, by DID and priority (admin)",
  middleware: [requireAdmin] as const,
  request: { query: pageQuery.extend({ didId: z.string().min(1).max(64).optional() }) },
  responses: {
    200: jsonResponse(pageOf(autoReplySchema), "A page of rules"),
    ...errorResponses(400, 401, 403),
  },
});

const createRuleRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["messages"],
  summary: "Add an auto-reply rule (admin)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createSchema) },
  responses: { 201: jsonResponse(autoReplySchema, "The new rule"), ...errorResponses(400, 401, 403) },
});

const updateRoute = createRoute({
  method: "patch",
  path: "/{id}",
  tags: ["messages"],
  summary: "Change an auto-reply rule (admin)",
  middleware: [requireAdmin] as const,
  request: { params: idParams, body: jsonBody(updateSchema) },
  responses: {
    200: jsonResponse(autoReplySchema, "The changed rule"),
    ...errorResponses(400, 401, 403, 404),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["messages"],
  summary: "Remove an auto-reply rule (admin)",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

export const autoRepliesRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const { limit, offset, didId } = c.req.valid("query");
    const where: SQL | undefined = didId ? eq(autoReplies.didId, didId) : undefined;
    const orderBy = [asc(autoReplies.didId), asc(autoReplies.priority), asc(autoReplies.id)];
    return c.json(
      await listPage(c.get("deps").db, autoReplies, { where, orderBy, limit, offset }, toDto),
      200,
    );
  })
  .openapi(createRuleRoute, async (c) => {
    const body = c.req.valid("json");
    const { db } = c.get("deps");
    checkKeyword(body.trigger, body.keyword);
    const [did] = await db.select({ id: dids.id }).from(dids).where(eq(dids.id, body.didId));
    if (!did)
      throw new AppError(400, "validation_failed", "No such DID", [
        { path: "didId", message: "no DID with this id" },
      ]);
    const [row] = await db
      .insert(autoReplies)
      .values({ ...body, keyword: body.keyword ?? null })
      .returning();
    if (!row) throw new Error("insert returned no row");
    return c.json(toDto(row), 201);
  })
  .openapi(updateRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const { db } = c.get("deps");
    const current = await findByIdOr404(db, autoReplies, id, "Auto-reply");
    const trigger = body.trigger ?? current.trigger;
    // Switching away from "keyword" drops the keyword unless one is (wrongly) given.
    const keyword =
      body.keyword !== undefined ? body.keyword : trigger === "keyword" ? current.keyword : null;
    checkKeyword(trigger, keyword);
    const [row] = await db
      .update(autoReplies)
      .set({ ...body, keyword })
      .where(eq(autoReplies.id, id))
      .returning();
    if (!row) throw notFound("Auto-reply");
    return c.json(toDto(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteByIdOr404(c.get("deps").db, autoReplies, c.req.valid("param").id, "Auto-reply");
    return c.body(null, 204);
  });
