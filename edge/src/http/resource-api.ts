/**
 * Building blocks shared by the resource routers (users, devices, DIDs, rules,
 * blocklist, settings, relay tokens): OpenAPI request/response pieces, the
 * error envelope schema, the read shapes every collection shares (a page with
 * its total, one row by id or 404, delete by id or 404), and mapping database
 * constraint failures to 409 conflicts.
 */
import type { Db } from "@gosip/drizzle";
import { z } from "@hono/zod-openapi";
import { and, count, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import { DrizzleQueryError } from "drizzle-orm/errors";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { AuthUser } from "../env.ts";
import type { ErrorCode } from "./errors.ts";
import { AppError, conflict, notFound } from "./errors.ts";
import type { Page } from "./pagination.ts";

/** The one error envelope, for the OpenAPI document. */
export const errorEnvelopeSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

const errorDescriptions: Record<number, [ErrorCode, string]> = {
  400: ["validation_failed", "The request is not valid"],
  401: ["unauthorized", "Not signed in"],
  403: ["forbidden", "Not allowed for this role"],
  404: ["not_found", "No such resource (or not yours)"],
  409: ["conflict", "Conflicts with existing data"],
};

/** OpenAPI response entries for the error statuses a route can answer. */
export function errorResponses(...statuses: (400 | 401 | 403 | 404 | 409)[]) {
  const out: Record<
    number,
    { description: string; content: { "application/json": { schema: typeof errorEnvelopeSchema } } }
  > = {};
  for (const s of statuses) {
    const [code, text] = errorDescriptions[s] ?? ["internal", "Error"];
    out[s] = {
      description: `${text} (${code})`,
      content: { "application/json": { schema: errorEnvelopeSchema } },
    };
  }
  return out;
}

/** A JSON request body. */
export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return {
    required: true,
    description,
    content: { "application/json": { schema } },
  } as const;
}

/** A JSON response. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } } as const;
}

/** Path parameter `:id` (text UUIDs; anything longer cannot exist). */
export const idParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

/** ISO 8601 UTC timestamp of a Date column, as every API response carries times. */
export const isoTimestamp = z.iso.datetime().openapi({ example: "2026-01-15T12:00:00.000Z" });

export function iso(date: Date): string;
export function iso(date: Date | null): string | null;
export function iso(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

/**
 * A non-admin may change only some fields of their own rows (`selfService`); any
 * other field in their PATCH body answers 403 forbidden, naming the fields.
 */
export function assertSelfServiceFields(me: AuthUser, body: object, selfService: ReadonlySet<string>): void {
  if (me.role === "admin") return;
  const fields = Object.keys(body).filter((k) => !selfService.has(k));
  if (fields.length) {
    throw new AppError(403, "forbidden", `Only an administrator can change ${fields.join(", ")}`, { fields });
  }
}

/** True when a database error (possibly wrapped by drizzle) is a UNIQUE/PRIMARY KEY violation. */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/UNIQUE constraint failed|PRIMARY KEY constraint failed/i.test(e.message)) return true;
  }
  return false;
}

/** True when a database error is a FOREIGN KEY violation. */
export function isForeignKeyViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/FOREIGN KEY constraint failed/i.test(e.message)) return true;
  }
  return false;
}

/** A failed database statement, described without its SQL parameters. */
export class DatabaseWriteError extends Error {
  override name = "DatabaseWriteError";
}

/**
 * Runs a database write whose parameters are sensitive (HA1s, password and token
 * hashes, setting secrets). drizzle's error message quotes every parameter, and
 * unhandled errors are logged, so the error is replaced by one that carries only
 * the driver's own message (e.g. "UNIQUE constraint failed: devices.extension").
 */
export async function safeWrite<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof DrizzleQueryError) {
      const cause = err.cause instanceof Error ? err.cause.message : "unknown cause";
      throw new DatabaseWriteError(`database write failed: ${cause}`);
    }
    throw err;
  }
}

/** Runs a write (see {@link safeWrite}); a UNIQUE violation becomes a 409 conflict with `message`. */
export async function uniqueOr409<T>(
  write: () => Promise<T>,
  message: string,
  details?: unknown,
): Promise<T> {
  try {
    return await safeWrite(write);
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(message, details);
    throw err;
  }
}

// --- collection reads ---------------------------------------------------------------

/** A table whose primary key is the text column `id` (every API resource). */
type ResourceTable = SQLiteTable & { id: SQLiteColumn };

export interface PageRequest {
  /** Filter (including who may see what); undefined = every row. */
  where?: SQL | undefined;
  /** Sort order; end with a unique column so pages never overlap. */
  orderBy: (SQL | SQLiteColumn)[];
  limit: number;
  offset: number;
}

/**
 * One page of `table` plus the total over all pages, in one statement (the count
 * is a subquery SQLite evaluates once): one round trip to a remote database
 * (Turso), one statement locally, and the total is counted in the same snapshot as
 * the items. Only a page past the end, which has no row to carry the total,
 * costs a second statement.
 */
export async function listPage<T extends SQLiteTable, Dto>(
  db: Db,
  table: T,
  { where, orderBy, limit, offset }: PageRequest,
  toDto: (row: T["$inferSelect"]) => Dto,
): Promise<Page<Dto>> {
  const filter = where ? sql` where ${where}` : sql``;
  const rows = await db
    .select({
      row: getTableColumns(table as SQLiteTable),
      total: sql<number>`(select count(*) from ${table}${filter})`.mapWith(Number),
    })
    .from(table as SQLiteTable)
    .where(where)
    .orderBy(...orderBy)
    .limit(limit)
    .offset(offset);
  let total = rows[0]?.total;
  if (total === undefined) {
    const [counted] = await db
      .select({ n: count() })
      .from(table as SQLiteTable)
      .where(where);
    total = counted?.n ?? 0;
  }
  return { items: rows.map((r) => toDto(r.row as T["$inferSelect"])), total, limit, offset };
}

/**
 * The row with this id, or 404 "<what> not found". `scope` narrows what the caller
 * may see (e.g. their own rows), so someone else's row is a 404 too, not a 403.
 */
export async function findByIdOr404<T extends ResourceTable>(
  db: Db,
  table: T,
  id: string,
  what: string,
  scope?: SQL,
): Promise<T["$inferSelect"]> {
  const [row] = await db
    .select()
    .from(table as ResourceTable)
    .where(and(eq(table.id, id), scope));
  if (!row) throw notFound(what);
  return row as T["$inferSelect"];
}

/** Deletes the row with this id (within `scope`), or 404 "<what> not found" when there was none. */
export async function deleteByIdOr404<T extends ResourceTable>(
  db: Db,
  table: T,
  id: string,
  what: string,
  scope?: SQL,
): Promise<void> {
  const deleted = await db
    .delete(table as ResourceTable)
    .where(and(eq(table.id, id), scope))
    .returning({ id: table.id });
  if (deleted.length === 0) throw notFound(what);
}
