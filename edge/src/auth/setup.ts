/**
 * /api/setup: first-run creation of the administrator. Open only while the
 * database has no user at all; the admin is inserted by one conditional
 * statement (INSERT ... WHERE NOT EXISTS users), so two concurrent requests
 * cannot both succeed. Afterwards it answers 409 setup_closed for good (the
 * users feature never deletes the last admin).
 */

import { users } from "@gosip/drizzle";
import { createRoute } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { AppError } from "../http/errors.ts";
import { createRouter } from "../http/router.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { requireCsrf } from "./middleware.ts";
import { hashPassword } from "./password.ts";
import { errorResponses, setupBodySchema, setupStatusSchema, userEnvelopeSchema } from "./schemas.ts";
import { createSession, setSessionCookie } from "./sessions.ts";

const setupClosed = () => new AppError(409, "setup_closed", "Setup is already complete");

/** True while no user exists (the UI shows the setup wizard). */
export async function needsSetup(deps: EdgeDeps): Promise<boolean> {
  const rows = await deps.db.select({ id: users.id }).from(users).limit(1);
  return rows.length === 0;
}

const statusRoute = createRoute({
  method: "get",
  path: "/status",
  tags: ["setup"],
  summary: "Whether first-run setup is still needed",
  responses: {
    200: { description: "Setup status", content: { "application/json": { schema: setupStatusSchema } } },
  },
});

const setupRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["setup"],
  summary: "Create the first administrator (first run only); signs them in",
  middleware: [requireCsrf] as const,
  request: { body: { required: true, content: { "application/json": { schema: setupBodySchema } } } },
  responses: {
    201: {
      description: "Administrator created",
      content: { "application/json": { schema: userEnvelopeSchema } },
    },
    ...errorResponses(400, 403, 409),
  },
});

export const setupRouter = createRouter()
  .openapi(statusRoute, async (c) => c.json({ needsSetup: await needsSetup(c.get("deps")) }, 200))
  .openapi(setupRoute, async (c) => {
    const deps = c.get("deps");
    // Cheap refusal first, so a closed setup does not cost a password hash.
    if (!(await needsSetup(deps))) throw setupClosed();
    const body = c.req.valid("json");
    const passwordHash = await hashPassword(body.password);
    const id = crypto.randomUUID();
    const name = body.name ?? body.email.split("@")[0] ?? "Administrator";
    const now = deps.clock.now();
    const result = await deps.db.run(sql`
      INSERT INTO users (id, email, name, role, password_hash, password_changed_at, dnd, created_at, updated_at)
      SELECT ${id}, ${body.email}, ${name}, 'admin', ${passwordHash}, ${now}, 0, ${now}, ${now}
      WHERE NOT EXISTS (SELECT 1 FROM users)`);
    if (result.rowsAffected !== 1) throw setupClosed();

    const session = await createSession(deps, id, {
      ip: c.get("clientIp"),
      userAgent: c.req.header("user-agent"),
    });
    setSessionCookie(c, session.token, session.expiresAt);
    deps.logger.info({ userId: id }, "setup complete: administrator created");
    return c.json({ user: { id, email: body.email, name, role: "admin" as const } }, 201);
  });
