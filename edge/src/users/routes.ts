/**
 * /api/users: accounts. Admins list, create, change and delete users; anyone
 * signed in reads and renames themselves (GET/PATCH /me or their own id).
 * Another user's id answers 404 to a non-admin, so ids reveal nothing.
 * There is always at least one admin: the last one can be neither deleted nor demoted.
 */
import { type Db, devices, publicUserSchema, userRoles, users } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, or, sql } from "drizzle-orm";
import { currentUser, requireAdmin, requireUser } from "../auth/middleware.ts";
import { hashPassword, newPasswordSchema } from "../auth/password.ts";
import { revokeUserSessions } from "../auth/sessions.ts";
import { deviceReferences } from "../devices/references.ts";
import type { AuthUser } from "../env.ts";
import { conflict, notFound } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  assertSelfServiceFields,
  errorResponses,
  findSelectedOr404,
  idParams,
  iso,
  isoTimestamp,
  jsonBody,
  jsonResponse,
  listSelected,
  uniqueOr409,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";
import { pushDevices } from "../relay/push.ts";

// Server-owned and secret columns never appear in a response.
export const userSchema = publicUserSchema
  .omit({ passwordChangedAt: true })
  .extend({ createdAt: isoTimestamp, updatedAt: isoTimestamp })
  .openapi("User");
export type UserDto = z.infer<typeof userSchema>;

const emailSchema = z
  .email("must be an email address")
  .max(254)
  .transform((e) => e.toLowerCase());
const nameSchema = z.string().trim().min(1, "must not be empty").max(100);
const roleSchema = z.enum(userRoles);

const createUserSchema = z
  .object({
    email: emailSchema,
    name: nameSchema,
    role: roleSchema.default("user"),
    password: newPasswordSchema,
  })
  .strict()
  .openapi("CreateUser");

/** What may change. A non-admin may only send `name` and `dnd` about themselves. */
const updateUserSchema = z
  .object({
    email: emailSchema.optional(),
    name: nameSchema.optional(),
    role: roleSchema.optional(),
    password: newPasswordSchema.optional(),
    dnd: z.boolean().optional(),
  })
  .strict()
  .openapi("UpdateUser");
type UpdateUser = z.infer<typeof updateUserSchema>;
const SELF_SERVICE_FIELDS = new Set<keyof UpdateUser>(["name", "dnd"]);

const listQuery = pageQuery.extend({
  q: z.string().max(100).optional().openapi({ description: "Search in email and name" }),
  role: roleSchema.optional(),
});

/** The columns a user response shows: never the password hash, which stays on login and writes. */
const userColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: users.role,
  dnd: users.dnd,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
};
type UserRow = SelectedRow<typeof userColumns>;

function toDto(row: UserRow): UserDto {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    dnd: row.dnd,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

function findUser(db: Db, id: string): Promise<UserRow> {
  return findSelectedOr404(db, users, userColumns, id, "User");
}

/** Resolves `me` and hides other users from non-admins (404, not 403). */
function targetId(me: AuthUser, id: string): string {
  const resolved = id === "me" ? me.id : id;
  if (me.role !== "admin" && resolved !== me.id) throw notFound("User");
  return resolved;
}

const userIdParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" }, description: "A user id or `me`" }),
});

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["users"],
  summary: "List users (admin)",
  middleware: [requireAdmin] as const,
  request: { query: listQuery },
  responses: { 200: jsonResponse(pageOf(userSchema), "A page of users"), ...errorResponses(400, 401, 403) },
});

const createUserRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["users"],
  summary: "Create a user (admin)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createUserSchema) },
  responses: { 201: jsonResponse(userSchema, "The new user"), ...errorResponses(400, 401, 403, 409) },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["users"],
  summary: "Get a user (admin), or yourself (`me` or your own id)",
  middleware: [requireUser] as const,
  request: { params: userIdParams },
  responses: { 200: jsonResponse(userSchema, "The user"), ...errorResponses(401, 404) },
});

const updateRoute = createRoute({
  method: "patch",
  path: "/{id}",
  tags: ["users"],
  summary: "Change a user (admin), or your own name and DND (`me`)",
  middleware: [requireUser] as const,
  request: { params: userIdParams, body: jsonBody(updateUserSchema) },
  responses: {
    200: jsonResponse(userSchema, "The changed user"),
    ...errorResponses(400, 401, 403, 404, 409),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["users"],
  summary: "Delete a user and their devices (admin)",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 409) },
});

const lastAdmin = () => conflict("There must be at least one administrator");

/** SQL that is true while more than one admin exists; makes demote/delete atomic. */
const anotherAdminExists = sql`(select count(*) from ${users} where ${users.role} = 'admin') > 1`;

export const usersRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const { limit, offset, q, role } = c.req.valid("query");
    const db = c.get("deps").db;
    const filters = [];
    if (role) filters.push(eq(users.role, role));
    if (q) {
      const needle = `%${q.toLowerCase().replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
      filters.push(
        or(
          sql`${users.email} like ${needle} escape '\\'`,
          sql`lower(${users.name}) like ${needle} escape '\\'`,
        ),
      );
    }
    const where = filters.length ? and(...filters) : undefined;
    return c.json(
      await listSelected(db, users, userColumns, { where, orderBy: [users.email], limit, offset }, toDto),
      200,
    );
  })
  .openapi(createUserRoute, async (c) => {
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    const passwordHash = await hashPassword(body.password);
    const [row] = await uniqueOr409(
      () =>
        db
          .insert(users)
          .values({ email: body.email, name: body.name, role: body.role, passwordHash })
          .returning(userColumns),
      "A user with this email already exists",
      { field: "email" },
    );
    if (!row) throw new Error("insert returned no row");
    return c.json(toDto(row), 201);
  })
  .openapi(getRoute, async (c) => {
    const id = targetId(currentUser(c), c.req.valid("param").id);
    return c.json(toDto(await findUser(c.get("deps").db, id)), 200);
  })
  .openapi(updateRoute, async (c) => {
    const me = currentUser(c);
    const id = targetId(me, c.req.valid("param").id);
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    assertSelfServiceFields(me, body, SELF_SERVICE_FIELDS);
    const current = await findUser(db, id);
    const patch: Partial<typeof users.$inferInsert> = {};
    if (body.name !== undefined) patch.name = body.name;
    if (body.dnd !== undefined) patch.dnd = body.dnd;
    if (body.email !== undefined) patch.email = body.email;
    if (body.role !== undefined) patch.role = body.role;
    if (body.password !== undefined) {
      patch.passwordHash = await hashPassword(body.password);
      patch.passwordChangedAt = new Date(c.get("deps").clock.now());
    }
    if (Object.keys(patch).length === 0) return c.json(toDto(current), 200);

    const demoting = current.role === "admin" && body.role === "user";
    const [row] = await uniqueOr409(
      () =>
        db
          .update(users)
          .set(patch)
          .where(demoting ? and(eq(users.id, id), anotherAdminExists) : eq(users.id, id))
          .returning(userColumns),
      "A user with this email already exists",
      { field: "email" },
    );
    if (!row) throw demoting ? lastAdmin() : notFound("User");
    // A new password ends every session of that user (SPEC §7), except the one
    // making the change when admins set their own.
    if (body.password !== undefined) {
      await revokeUserSessions(db, id, id === me.id ? c.get("sessionId") : undefined);
    }
    // The relay applies DND itself (phones do not ring): their devices' effective DND changed.
    if (body.dnd !== undefined && body.dnd !== current.dnd) {
      const owned = await db.select({ id: devices.id }).from(devices).where(eq(devices.userId, id));
      await pushDevices(c.get("deps"), { upsert: owned.map((d) => d.id) });
    }
    return c.json(toDto(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const { id } = c.req.valid("param");
    const db = c.get("deps").db;
    const current = await findUser(db, id);
    // Their devices go with them (FK cascade); refuse while a DID or rule still rings one.
    const owned = await db.select({ id: devices.id }).from(devices).where(eq(devices.userId, id));
    const refs = await deviceReferences(
      db,
      owned.map((d) => d.id),
    );
    if (refs.length) {
      throw conflict("The user's devices are still ring targets; remove them from these first", {
        references: refs,
      });
    }
    const where = current.role === "admin" ? and(eq(users.id, id), anotherAdminExists) : eq(users.id, id);
    const deleted = await db.delete(users).where(where).returning({ id: users.id });
    if (deleted.length === 0) throw current.role === "admin" ? lastAdmin() : notFound("User");
    // Their devices went with them (cascade): the relay drops them too.
    if (owned.length) await pushDevices(c.get("deps"), { remove: owned.map((d) => d.id) });
    return c.body(null, 204);
  });
