/**
 * Server-side login sessions. The browser holds a random token in the
 * `gosip_session` cookie; the database holds only its SHA-256 (sessions.id), so a
 * leaked database does not hand out live sessions. Sessions slide: each use
 * moves expiry to 24 h ahead, written at most once a minute per session.
 */
import { type Db, sessions, users } from "@gosip/drizzle";
import { and, eq, lte, ne, sql } from "drizzle-orm";
import type { Context } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import type { AppEnv, AuthUser } from "../env.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { newSecretToken, secretTokenDigest } from "./secret-token.ts";

export const SESSION_COOKIE = "gosip_session";
export const SESSION_TTL_MS = 24 * 60 * 60 * 1000;
/** Sliding expiry is written at most this often per session, not on every request. */
export const SESSION_TOUCH_INTERVAL_MS = 60 * 1000;

/** A fresh session token: 32 random bytes, base64url. */
export const newSessionToken: () => string = newSecretToken;

/** The database id of a session token (SHA-256 hex). */
export const sessionIdOf: (token: string) => string = secretTokenDigest;

export interface NewSession {
  token: string;
  id: string;
  expiresAt: Date;
}

/** Store a new session for `userId` and return its token (to be put in the cookie). */
export async function createSession(
  deps: EdgeDeps,
  userId: string,
  meta: { ip?: string; userAgent?: string } = {},
): Promise<NewSession> {
  const token = newSessionToken();
  const id = sessionIdOf(token);
  const now = new Date(deps.clock.now());
  const expiresAt = new Date(now.getTime() + SESSION_TTL_MS);
  await deps.db.insert(sessions).values({
    id,
    userId,
    createdAt: now,
    lastSeenAt: now,
    expiresAt,
    ip: meta.ip ?? null,
    userAgent: meta.userAgent?.slice(0, 300) ?? null,
  });
  return { token, id, expiresAt };
}

// Every signed-in request runs this lookup: prepare it once per database handle
// rather than rebuilding the query each time.
function prepareSessionLookup(db: Db) {
  return db
    .select({
      id: sessions.id,
      lastSeenAt: sessions.lastSeenAt,
      expiresAt: sessions.expiresAt,
      userId: users.id,
      email: users.email,
      name: users.name,
      role: users.role,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sql.placeholder("id")))
    .limit(1)
    .prepare();
}
const sessionLookups = new WeakMap<Db, ReturnType<typeof prepareSessionLookup>>();
function sessionLookup(db: Db): ReturnType<typeof prepareSessionLookup> {
  let lookup = sessionLookups.get(db);
  if (!lookup) {
    lookup = prepareSessionLookup(db);
    sessionLookups.set(db, lookup);
  }
  return lookup;
}

export interface LoadedSession {
  id: string;
  user: AuthUser;
  lastSeenAt: Date;
  expiresAt: Date;
}

/**
 * The live session with this id and its user, or undefined. An expired session
 * is deleted on sight.
 */
export async function loadSession(deps: EdgeDeps, id: string): Promise<LoadedSession | undefined> {
  const rows = await sessionLookup(deps.db).all({ id });
  const row = rows[0];
  if (!row) return undefined;
  if (row.expiresAt.getTime() <= deps.clock.now()) {
    await deps.db.delete(sessions).where(eq(sessions.id, id));
    return undefined;
  }
  return {
    id: row.id,
    lastSeenAt: row.lastSeenAt,
    expiresAt: row.expiresAt,
    user: { id: row.userId, email: row.email, name: row.name, role: row.role },
  };
}

/**
 * Slide the session's expiry if it was last written over a minute ago.
 * Returns the new expiry when it moved (so the cookie's Max-Age can follow).
 */
export async function touchSession(deps: EdgeDeps, session: LoadedSession): Promise<Date | undefined> {
  const now = deps.clock.now();
  if (now - session.lastSeenAt.getTime() < SESSION_TOUCH_INTERVAL_MS) return undefined;
  const expiresAt = new Date(now + SESSION_TTL_MS);
  await deps.db
    .update(sessions)
    .set({ lastSeenAt: new Date(now), expiresAt })
    .where(eq(sessions.id, session.id));
  return expiresAt;
}

export async function revokeSession(db: Db, id: string): Promise<void> {
  await db.delete(sessions).where(eq(sessions.id, id));
}

/** Revoke every session of a user, except `keepId` when given (the caller's own). */
export async function revokeUserSessions(db: Db, userId: string, keepId?: string): Promise<void> {
  await db
    .delete(sessions)
    .where(keepId ? and(eq(sessions.userId, userId), ne(sessions.id, keepId)) : eq(sessions.userId, userId));
}

/** Delete every expired session (housekeeping, run on login). */
export async function deleteExpiredSessions(deps: EdgeDeps): Promise<void> {
  await deps.db.delete(sessions).where(lte(sessions.expiresAt, new Date(deps.clock.now())));
}

/** Put the session token in the cookie: HttpOnly, SameSite=Lax, Path=/, Secure with an https PUBLIC_URL. */
export function setSessionCookie(c: Context<AppEnv>, token: string, expiresAt: Date): void {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - c.get("deps").clock.now()) / 1000));
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: c.get("deps").config.secureCookies,
    maxAge,
  });
}

export function clearSessionCookie(c: Context<AppEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: c.get("deps").config.secureCookies });
}
