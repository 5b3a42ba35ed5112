/**
 * /api/auth: sign in, sign out, who am I, change my password.
 * Sign-in answers the same "invalid email or password" for an unknown email and
 * a wrong password, and takes the same time for both (a dummy hash is verified).
 */

import { users } from "@gosip/drizzle";
import { createRoute } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { AppError } from "../http/errors.ts";
import { createRouter } from "../http/router.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { attemptSucceeded, beginLoginAttempt } from "./lockout.ts";
import { currentUser, requireCsrf, requireUser } from "./middleware.ts";
import {
  dummyPasswordHash,
  hashPassword,
  needsRehash,
  PASSWORD_MAX_LENGTH,
  verifyPassword,
} from "./password.ts";
import { errorResponses, loginBodySchema, passwordChangeSchema, userEnvelopeSchema } from "./schemas.ts";
import {
  clearSessionCookie,
  createSession,
  deleteExpiredSessions,
  revokeSession,
  revokeUserSessions,
  setSessionCookie,
} from "./sessions.ts";

const invalidCredentials = () => new AppError(401, "unauthorized", "Invalid email or password");

const loginRoute = createRoute({
  method: "post",
  path: "/login",
  tags: ["auth"],
  summary: "Sign in; sets the gosip_session cookie",
  description:
    "5 failed sign-ins within 15 minutes lock the account and, separately, the client address for 15 minutes " +
    "(423 / 429 with Retry-After), even for the right password.",
  middleware: [requireCsrf] as const,
  request: { body: { required: true, content: { "application/json": { schema: loginBodySchema } } } },
  responses: {
    200: { description: "Signed in", content: { "application/json": { schema: userEnvelopeSchema } } },
    ...errorResponses(400, 401, 403, 423, 429),
  },
});

const logoutRoute = createRoute({
  method: "post",
  path: "/logout",
  tags: ["auth"],
  summary: "Sign out: revokes the current session and clears the cookie",
  middleware: [requireCsrf] as const,
  responses: { 204: { description: "Signed out" }, ...errorResponses(403) },
});

const meRoute = createRoute({
  method: "get",
  path: "/me",
  tags: ["auth"],
  summary: "The signed-in user",
  security: [{ sessionCookie: [] }],
  middleware: [requireUser] as const,
  responses: {
    200: {
      description: "The signed-in user",
      content: { "application/json": { schema: userEnvelopeSchema } },
    },
    ...errorResponses(401),
  },
});

const passwordRoute = createRoute({
  method: "post",
  path: "/password",
  tags: ["auth"],
  summary: "Change my password",
  description:
    "Needs the current password. Revokes all of the user's other sessions; the current session is renewed.",
  security: [{ sessionCookie: [] }],
  middleware: [requireUser] as const,
  request: { body: { required: true, content: { "application/json": { schema: passwordChangeSchema } } } },
  responses: {
    204: { description: "Password changed" },
    ...errorResponses(400, 401, 403, 423, 429),
  },
});

/** Checks `password` for the account `email`, under the lockout rules; returns the user id. */
async function checkCredentials(
  deps: EdgeDeps,
  email: string,
  password: string,
  ip: string,
): Promise<string> {
  const attempt = await beginLoginAttempt(deps, email, ip);
  const [user] = await deps.db
    .select({ id: users.id, passwordHash: users.passwordHash })
    .from(users)
    .where(eq(users.email, email))
    .limit(1);
  const stored = user?.passwordHash ?? (await dummyPasswordHash());
  const ok = password.length <= PASSWORD_MAX_LENGTH && (await verifyPassword(password, stored));
  if (!user || !ok) {
    deps.logger.info({ ip }, "sign-in failed");
    throw invalidCredentials();
  }
  await attemptSucceeded(deps, attempt);
  if (needsRehash(user.passwordHash)) {
    await deps.db
      .update(users)
      .set({ passwordHash: await hashPassword(password) })
      .where(eq(users.id, user.id));
  }
  return user.id;
}

export const authRouter = createRouter()
  .openapi(loginRoute, async (c) => {
    const deps = c.get("deps");
    const { email, password } = c.req.valid("json");
    const ip = c.get("clientIp");
    const userId = await checkCredentials(deps, email, password, ip);

    // A fresh token on every sign-in (no session fixation); the previous session of this browser ends.
    const previous = c.get("sessionId");
    if (previous) await revokeSession(deps.db, previous);
    await deleteExpiredSessions(deps);
    const session = await createSession(deps, userId, { ip, userAgent: c.req.header("user-agent") });
    setSessionCookie(c, session.token, session.expiresAt);

    const [user] = await deps.db
      .select({ id: users.id, email: users.email, name: users.name, role: users.role })
      .from(users)
      .where(eq(users.id, userId));
    if (!user) throw invalidCredentials();
    deps.logger.info({ userId }, "signed in");
    return c.json({ user }, 200);
  })
  .openapi(logoutRoute, async (c) => {
    const sessionId = c.get("sessionId");
    if (sessionId) await revokeSession(c.get("deps").db, sessionId);
    clearSessionCookie(c);
    return c.body(null, 204);
  })
  .openapi(meRoute, (c) => c.json({ user: currentUser(c) }, 200))
  .openapi(passwordRoute, async (c) => {
    const deps = c.get("deps");
    const user = currentUser(c);
    const { currentPassword, newPassword } = c.req.valid("json");
    // Same throttling as sign-in, so a stolen session cannot be used to guess the password.
    try {
      await checkCredentials(deps, user.email, currentPassword, c.get("clientIp"));
    } catch (err) {
      if (err instanceof AppError && err.status === 401)
        throw new AppError(403, "forbidden", "The current password is wrong");
      throw err;
    }
    const now = new Date(deps.clock.now());
    await deps.db
      .update(users)
      .set({ passwordHash: await hashPassword(newPassword), passwordChangedAt: now, updatedAt: now })
      .where(eq(users.id, user.id));

    // Every session of the user ends, including this one; this browser gets a new one.
    await revokeUserSessions(deps.db, user.id);
    const session = await createSession(deps, user.id, {
      ip: c.get("clientIp"),
      userAgent: c.req.header("user-agent"),
    });
    setSessionCookie(c, session.token, session.expiresAt);
    deps.logger.info({ userId: user.id }, "password changed");
    return c.body(null, 204);
  });
