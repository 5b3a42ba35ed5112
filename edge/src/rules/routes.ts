/**
 * /api/routes (admin): routing rules, per DID or global (didId null), evaluated
 * by priority (lower first; DID and global rules merged). The rule document is
 * the one schema from @gosip/drizzle; writes are also checked against the
 * database (validate.ts). PUT /order reorders atomically. POST /dry-run answers
 * what would happen to a call (routing/dry-run.ts), without storing anything.
 */
import { type Db, insertRoutingRuleSchema, routingRules, selectRoutingRuleSchema } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { asc, eq, isNull, max, type SQL } from "drizzle-orm";
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
import { dryRunRequestSchema, dryRunResponseSchema, dryRunRouting } from "../routing/dry-run.ts";
import { ruleReferenceIssues } from "./validate.ts";

export const ruleSchema = selectRoutingRuleSchema
  .extend({ createdAt: isoTimestamp, updatedAt: isoTimestamp })
  .openapi("RoutingRule");

/** Gap between priorities after a reorder, so one rule can be slotted in without renumbering. */
export const PRIORITY_STEP = 10;

const writable = insertRoutingRuleSchema.pick({
  didId: true,
  name: true,
  priority: true,
  enabled: true,
  rule: true,
});
const createRuleSchema = writable.strict().openapi("CreateRoutingRule");
const updateRuleSchema = writable.partial().strict().openapi("UpdateRoutingRule");

const orderSchema = z
  .object({
    ids: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(1000)
      .refine((ids) => new Set(ids).size === ids.length, "ids must not repeat"),
  })
  .strict()
  .openapi("RoutingRuleOrder");

const listQuery = pageQuery.extend({
  didId: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .openapi({ description: "A DID id, or `global` for rules that apply to every DID" }),
});

type RuleRow = typeof routingRules.$inferSelect;

function toDto(row: RuleRow): z.infer<typeof ruleSchema> {
  return { ...row, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
}

const byEvaluationOrder = [asc(routingRules.priority), asc(routingRules.createdAt), asc(routingRules.id)];

async function assertReferences(
  db: Db,
  rule: RuleRow["rule"],
  didId: string | null | undefined,
): Promise<void> {
  const issues = await ruleReferenceIssues(db, rule, didId);
  if (issues.length) {
    throw new AppError(
      400,
      "validation_failed",
      `The rule is not valid: ${issues[0]?.message ?? ""}`,
      issues,
    );
  }
}

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["routes"],
  summary: "List routing rules in evaluation order",
  middleware: [requireAdmin] as const,
  request: { query: listQuery },
  responses: { 200: jsonResponse(pageOf(ruleSchema), "A page of rules"), ...errorResponses(400, 401, 403) },
});

const createRuleRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["routes"],
  summary: "Add a routing rule (last in order unless a priority is given)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createRuleSchema) },
  responses: { 201: jsonResponse(ruleSchema, "The new rule"), ...errorResponses(400, 401, 403) },
});

const orderRoute = createRoute({
  method: "put",
  path: "/order",
  tags: ["routes"],
  summary: "Reorder rules: the listed rules take the listed order within the places they hold",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(orderSchema) },
  responses: {
    200: jsonResponse(z.object({ items: z.array(ruleSchema) }), "Every rule, in the new evaluation order"),
    ...errorResponses(400, 401, 403),
  },
});

const dryRunRoute = createRoute({
  method: "post",
  path: "/dry-run",
  tags: ["routes"],
  summary: "What happens if this number calls this DID at this time: the decision and its reasons",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(dryRunRequestSchema) },
  responses: {
    200: jsonResponse(dryRunResponseSchema, "The routing decision, a summary and the reasons step by step"),
    ...errorResponses(400, 401, 403, 404),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["routes"],
  summary: "Get a routing rule",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(ruleSchema, "The rule"), ...errorResponses(401, 403, 404) },
});

const updateRoute = createRoute({
  method: "patch",
  path: "/{id}",
  tags: ["routes"],
  summary: "Change a routing rule",
  middleware: [requireAdmin] as const,
  request: { params: idParams, body: jsonBody(updateRuleSchema) },
  responses: { 200: jsonResponse(ruleSchema, "The changed rule"), ...errorResponses(400, 401, 403, 404) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["routes"],
  summary: "Delete a routing rule",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

export const rulesRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const { limit, offset, didId } = c.req.valid("query");
    const db = c.get("deps").db;
    let where: SQL | undefined;
    if (didId === "global") where = isNull(routingRules.didId);
    else if (didId) where = eq(routingRules.didId, didId);
    const page = { where, orderBy: byEvaluationOrder, limit, offset };
    return c.json(await listPage(db, routingRules, page, toDto), 200);
  })
  .openapi(createRuleRoute, async (c) => {
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    await assertReferences(db, body.rule, body.didId);
    let priority = body.priority;
    if (priority === undefined) {
      const [last] = await db.select({ p: max(routingRules.priority) }).from(routingRules);
      priority = (last?.p ?? 0) + PRIORITY_STEP;
    }
    const [row] = await db
      .insert(routingRules)
      .values({ ...body, priority })
      .returning();
    if (!row) throw new Error("insert returned no row");
    return c.json(toDto(row), 201);
  })
  .openapi(orderRoute, async (c) => {
    const { ids } = c.req.valid("json");
    const db = c.get("deps").db;
    const all = await db
      .select({ id: routingRules.id })
      .from(routingRules)
      .orderBy(...byEvaluationOrder);
    const current = all.map((r) => r.id);
    const known = new Set(current);
    const unknown = ids.flatMap((id, i) =>
      known.has(id) ? [] : [{ path: `ids.${i}`, message: `no rule ${id}` }],
    );
    if (unknown.length) throw new AppError(400, "validation_failed", "Unknown rule ids", unknown);
    // The listed rules swap among the places they hold; unlisted rules keep theirs.
    const listed = new Set(ids);
    const queue = [...ids];
    const order = current.map((id) => (listed.has(id) ? (queue.shift() ?? id) : id));
    const [first, ...rest] = order.map((id, i) =>
      db
        .update(routingRules)
        .set({ priority: (i + 1) * PRIORITY_STEP })
        .where(eq(routingRules.id, id)),
    );
    // One batch is one transaction: the new order appears all at once or not at all.
    if (first) await db.batch([first, ...rest]);
    const rows = await db
      .select()
      .from(routingRules)
      .orderBy(...byEvaluationOrder);
    return c.json({ items: rows.map(toDto) }, 200);
  })
  .openapi(dryRunRoute, async (c) => c.json(await dryRunRouting(c.get("deps"), c.req.valid("json")), 200))
  .openapi(getRoute, async (c) => {
    const id = c.req.valid("param").id;
    return c.json(toDto(await findByIdOr404(c.get("deps").db, routingRules, id, "Routing rule")), 200);
  })
  .openapi(updateRoute, async (c) => {
    const id = c.req.valid("param").id;
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    const current = await findByIdOr404(db, routingRules, id, "Routing rule");
    if (body.rule !== undefined || body.didId !== undefined) {
      await assertReferences(
        db,
        body.rule ?? current.rule,
        body.didId === undefined ? current.didId : body.didId,
      );
    }
    if (Object.keys(body).length === 0) return c.json(toDto(current), 200);
    const [row] = await db.update(routingRules).set(body).where(eq(routingRules.id, id)).returning();
    if (!row) throw notFound("Routing rule");
    return c.json(toDto(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteByIdOr404(c.get("deps").db, routingRules, c.req.valid("param").id, "Routing rule");
    return c.body(null, 204);
  });
