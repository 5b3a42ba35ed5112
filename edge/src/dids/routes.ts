/**
 * /api/dids: the installation's phone numbers. Admins create, change and delete
 * them; a user may read the DIDs that ring one of their devices by default.
 * Default ring targets must be existing devices (checked on write).
 */
import { type Db, devices, dids, insertDidSchema, selectDidSchema } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { eq, inArray, type SQL, sql } from "drizzle-orm";
import { currentUser, requireAdmin, requireUser } from "../auth/middleware.ts";
import type { AuthUser } from "../env.ts";
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
import { pushAllDevicesAndSettings } from "../relay/push.ts";

export const didSchema = selectDidSchema
  .extend({ createdAt: isoTimestamp, updatedAt: isoTimestamp })
  .openapi("Did");

const twilioSidSchema = z
  .string()
  .regex(/^PN[0-9a-f]{32}$/, "must be a Twilio phone number SID (PN…)")
  .nullable();

const writable = insertDidSchema.pick({
  e164: true,
  label: true,
  defaultTargets: true,
  dnd: true,
  greeting: true,
});
const createDidSchema = writable
  .extend({ twilioSid: twilioSidSchema.optional() })
  .strict()
  .openapi("CreateDid");
const updateDidSchema = writable
  .partial()
  .extend({ twilioSid: twilioSidSchema.optional() })
  .strict()
  .openapi("UpdateDid");

type DidRow = typeof dids.$inferSelect;

function toDto(row: DidRow): z.infer<typeof didSchema> {
  return { ...row, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
}

/** SQL true for DIDs that ring one of `userId`'s devices by default. */
function ringsDevicesOf(userId: string): SQL {
  return sql`exists (select 1 from json_each(${dids.defaultTargets}, '$.deviceIds') t
    where t.value in (select ${devices.id} from ${devices} where ${devices.userId} = ${userId}))`;
}

function visibleTo(me: AuthUser): SQL | undefined {
  return me.role === "admin" ? undefined : ringsDevicesOf(me.id);
}

/** 400 unless every id names an existing device. */
export async function assertDevicesExist(db: Db, ids: readonly string[], path: string): Promise<void> {
  if (ids.length === 0) return;
  const found = await db
    .select({ id: devices.id })
    .from(devices)
    .where(inArray(devices.id, [...ids]));
  const known = new Set(found.map((r) => r.id));
  const missing = ids.flatMap((id, i) =>
    known.has(id) ? [] : [{ path: `${path}.${i}`, message: `no device ${id}` }],
  );
  if (missing.length)
    throw new AppError(400, "validation_failed", "Ring targets must be existing devices", missing);
}

const duplicate = "This number (or Twilio SID) already exists";

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["dids"],
  summary: "List DIDs (admin: all; user: those ringing their devices)",
  middleware: [requireUser] as const,
  request: { query: pageQuery },
  responses: { 200: jsonResponse(pageOf(didSchema), "A page of DIDs"), ...errorResponses(400, 401) },
});

const createDidRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["dids"],
  summary: "Add a DID (admin)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createDidSchema) },
  responses: { 201: jsonResponse(didSchema, "The new DID"), ...errorResponses(400, 401, 403, 409) },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["dids"],
  summary: "Get a DID",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(didSchema, "The DID"), ...errorResponses(401, 404) },
});

const updateRoute = createRoute({
  method: "patch",
  path: "/{id}",
  tags: ["dids"],
  summary: "Change a DID (admin)",
  middleware: [requireAdmin] as const,
  request: { params: idParams, body: jsonBody(updateDidSchema) },
  responses: { 200: jsonResponse(didSchema, "The changed DID"), ...errorResponses(400, 401, 403, 404, 409) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["dids"],
  summary: "Remove a DID and its routing rules (admin)",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

export const didsRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const { limit, offset } = c.req.valid("query");
    const db = c.get("deps").db;
    const where = visibleTo(currentUser(c));
    return c.json(await listPage(db, dids, { where, orderBy: [dids.e164], limit, offset }, toDto), 200);
  })
  .openapi(createDidRoute, async (c) => {
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    if (body.defaultTargets)
      await assertDevicesExist(db, body.defaultTargets.deviceIds, "defaultTargets.deviceIds");
    const [row] = await uniqueOr409(() => db.insert(dids).values(body).returning(), duplicate);
    if (!row) throw new Error("insert returned no row");
    // Devices' outbound caller ID follows the DIDs.
    await pushAllDevicesAndSettings(c.get("deps"));
    return c.json(toDto(row), 201);
  })
  .openapi(getRoute, async (c) => {
    const id = c.req.valid("param").id;
    const row = await findByIdOr404(c.get("deps").db, dids, id, "DID", visibleTo(currentUser(c)));
    return c.json(toDto(row), 200);
  })
  .openapi(updateRoute, async (c) => {
    const id = c.req.valid("param").id;
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    const current = await findByIdOr404(db, dids, id, "DID");
    if (body.defaultTargets)
      await assertDevicesExist(db, body.defaultTargets.deviceIds, "defaultTargets.deviceIds");
    if (Object.keys(body).length === 0) return c.json(toDto(current), 200);
    const [row] = await uniqueOr409(
      () => db.update(dids).set(body).where(eq(dids.id, id)).returning(),
      duplicate,
    );
    if (!row) throw notFound("DID");
    await pushAllDevicesAndSettings(c.get("deps"));
    return c.json(toDto(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteByIdOr404(c.get("deps").db, dids, c.req.valid("param").id, "DID");
    await pushAllDevicesAndSettings(c.get("deps"));
    return c.body(null, 204);
  });
