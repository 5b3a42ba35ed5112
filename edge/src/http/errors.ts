/**
 * Typed errors and the one place they become HTTP responses.
 * Every error body has the shape { error: { code, message, details? } }; internal
 * messages and stacks are logged, never sent to the client.
 */
import { DrizzleQueryError } from "drizzle-orm/errors";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../env.ts";

export type ErrorCode =
  | "bad_request"
  | "validation_failed"
  | "unauthorized"
  | "forbidden"
  | "csrf_failed"
  | "not_found"
  | "conflict"
  | "locked"
  | "payload_too_large"
  | "rate_limited"
  | "setup_closed"
  | "range_not_satisfiable"
  | "unavailable"
  | "internal";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export class AppError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const notFound = (what = "Resource"): AppError => new AppError(404, "not_found", `${what} not found`);
export const conflict = (message: string, details?: unknown): AppError =>
  new AppError(409, "conflict", message, details);
export const badRequest = (message: string, details?: unknown): AppError =>
  new AppError(400, "bad_request", message, details);

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}

const statusCodes: Partial<Record<number, ErrorCode>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  423: "locked",
  416: "range_not_satisfiable",
  429: "rate_limited",
  503: "unavailable",
};

/** hono onError handler: maps typed errors, hides everything else behind a generic 500. */
export function handleError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof AppError) {
    if (err.headers) for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
    return c.json(errorBody(err.code, err.message, err.details), err.status);
  }
  if (err instanceof HTTPException) {
    const code = statusCodes[err.status] ?? "bad_request";
    return c.json(errorBody(code, err.message || code), err.status);
  }
  // A drizzle query error's message lists every SQL parameter (hashes, phone numbers): log only the driver's cause.
  const logged =
    err instanceof DrizzleQueryError
      ? { dbError: err.cause instanceof Error ? err.cause.message : "query failed" }
      : { err: err.message, stack: err.stack };
  c.get("deps")?.logger.error({ ...logged, path: c.req.path }, "unhandled error");
  return c.json(errorBody("internal", "Internal server error"), 500);
}
