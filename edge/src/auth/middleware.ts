/**
 * Authentication and CSRF middleware for every edge route.
 *
 * - `sessionMiddleware` (mounted once, globally, in app.ts) checks CSRF on
 *   state-changing requests that carry the session cookie, then loads the
 *   session's user into the context (`user`, `sessionId`) and slides its expiry.
 * - `requireUser` / `requireAdmin` guard routes: 401 unauthorized without a valid
 *   session, 403 forbidden for a non-admin on an admin route.
 *
 * CSRF defence (cookie-authenticated, state-changing requests):
 *   1. the request must carry the header `X-GoSIP-CSRF: 1`. Browsers only let a
 *      page send a custom header cross-origin after a CORS preflight, which the
 *      edge never grants, so another site cannot forge it;
 *   2. when the browser says where the request comes from (Origin,
 *      Sec-Fetch-Site), it must be this site: PUBLIC_URL's origin or the origin
 *      the request was addressed to.
 * Requests without the session cookie (Twilio webhooks, relay) are not
 * cookie-authenticated, so they are not subject to it; login and setup apply
 * `requireCsrf` themselves against login CSRF.
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv, AuthUser } from "../env.ts";
import { AppError } from "../http/errors.ts";
import { SECRET_TOKEN_PATTERN } from "./secret-token.ts";
import {
  clearSessionCookie,
  loadSession,
  SESSION_COOKIE,
  sessionIdOf,
  setSessionCookie,
  touchSession,
} from "./sessions.ts";

/** Header the UI (and test-support) sends on every state-changing request. */
export const CSRF_HEADER = "X-GoSIP-CSRF";
export const CSRF_HEADER_VALUE = "1";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Why this request fails the CSRF check, or undefined when it passes (or is a safe method). */
export function csrfProblem(c: Context<AppEnv>): string | undefined {
  if (SAFE_METHODS.has(c.req.method)) return undefined;
  if (c.req.header(CSRF_HEADER) !== CSRF_HEADER_VALUE) return `missing ${CSRF_HEADER} header`;
  if (c.req.header("sec-fetch-site") === "cross-site") return "cross-site request";
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    const allowed = [originOf(c.get("deps").config.publicUrl), originOf(c.req.url)];
    if (!allowed.includes(origin)) return "foreign origin";
  }
  return undefined;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

function csrfError(reason: string): AppError {
  return new AppError(403, "csrf_failed", `CSRF check failed: ${reason}`);
}

/** CSRF check for routes that must be protected even without a session (login, setup). */
export const requireCsrf: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  const problem = csrfProblem(c);
  if (problem) throw csrfError(problem);
  await next();
});

/** Loads the session user into the context; never rejects for a bad cookie (routes decide). */
export const sessionMiddleware: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  const token = getCookie(c, SESSION_COOKIE);
  if (token === undefined || token === "") return next();
  const problem = csrfProblem(c);
  if (problem) throw csrfError(problem);

  const deps = c.get("deps");
  // Tokens are 43 base64url chars; anything else cannot be ours, skip the lookup.
  const session = SECRET_TOKEN_PATTERN.test(token) ? await loadSession(deps, sessionIdOf(token)) : undefined;
  if (!session) {
    clearSessionCookie(c);
    return next();
  }
  c.set("user", session.user);
  c.set("sessionId", session.id);
  const newExpiry = await touchSession(deps, session);
  if (newExpiry) setSessionCookie(c, token, newExpiry);
  return next();
});

/** 401 unless a valid session came with the request. */
export const requireUser: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  currentUser(c);
  await next();
});

/** 401 without a session, 403 for a signed-in non-admin. */
export const requireAdmin: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  if (currentUser(c).role !== "admin") throw new AppError(403, "forbidden", "Administrator role required");
  await next();
});

/** The signed-in user; throws 401 unauthorized when there is none. */
export function currentUser(c: Context<AppEnv>): AuthUser {
  const user = c.get("user");
  if (!user) throw new AppError(401, "unauthorized", "Sign in first");
  return user;
}
