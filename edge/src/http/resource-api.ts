/**
 * Building blocks shared by the resource routers (users, devices, DIDs, rules,
 * blocklist, settings, relay tokens): OpenAPI request/response pieces, the
 * error envelope schema, the read shapes every collection shares (a page with
 * its total, one row by id or 404, delete by id or 404), and mapping database
 * constraint failures to 409 conflicts.
 */
import type { Db } from "@gosip/drizzle";
import { z } from "@hono/zod-openapi";
import type { InArgs } from "@libsql/client";
import { and, count, eq, fillPlaceholders, getTableColumns, type Query, type SQL, sql } from "drizzle-orm";
import { DrizzleQueryError } from "drizzle-orm/errors";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { AuthUser } from "../env.ts";
import type { ErrorCode } from "./errors.ts";
import { AppError, conflict, notFound } from "./errors.ts";
import type { Page } from "./pagination.ts";
import { type ColumnSelection, type SelectedRow, selectRows } from "./selected-rows.ts";

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
  return date === null ? null : isoFromMs(date.getTime());
}

/** Milliseconds of 9999-12-31T24:00Z: toISOString's fixed four-digit years end here. */
const YEAR_10000_MS = 253_402_300_800_000;
const DAY_MS = 86_400_000;

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * `new Date(ms).toISOString()`, computed with integer arithmetic: twice as fast, and
 * every API row carries two of them. Dates before 1970 or after 9999 and invalid ones
 * are left to toISOString (signed six-digit years, RangeError).
 */
export function isoFromMs(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  const millis = rest % 1000;
  rest = (rest - millis) / 1000;
  const seconds = rest % 60;
  rest = (rest - seconds) / 60;
  const minutes = rest % 60;
  const hours = (rest - minutes) / 60;
  // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil inverse), for days >= 0.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(millis)}Z`;
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

const allColumns = new WeakMap<SQLiteTable, ColumnSelection>();

/** Every column of `table` (the same object each time, so its decoders are looked up once). */
function columnsOf(table: SQLiteTable): ColumnSelection {
  let columns = allColumns.get(table);
  if (!columns) {
    columns = getTableColumns(table);
    allColumns.set(table, columns);
  }
  return columns;
}

/**
 * One page of `table` plus the total over all pages, in one statement (the count
 * is a subquery SQLite evaluates once): one round trip to a remote database
 * (Turso), one statement locally, and the total is counted in the same snapshot as
 * the items. Only a page past the end, which has no row to carry the total,
 * costs a second statement. Reads every column; see {@link listSelected} to read
 * only what the response shows.
 */
export function listPage<T extends SQLiteTable, Dto>(
  db: Db,
  table: T,
  request: PageRequest,
  toDto: (row: T["$inferSelect"]) => Dto,
): Promise<Page<Dto>> {
  return listSelected(
    db,
    table,
    columnsOf(table),
    request,
    toDto as (row: SelectedRow<ColumnSelection>) => Dto,
  );
}

/** {@link listPage} reading only `columns` of `table` (say, none of its secrets). */
export function listSelected<C extends ColumnSelection, Dto>(
  db: Db,
  table: SQLiteTable,
  columns: C,
  { where, orderBy, limit, offset }: PageRequest,
  toDto: (row: SelectedRow<C>) => Dto,
): Promise<Page<Dto>> {
  const page = pageSelect(db, table, columns, where, orderBy).limit(limit).offset(offset).toSQL();
  const counted = () => countSelect(db, table, where).toSQL();
  return runPage(db, columns, page, counted, { limit, offset }, toDto);
}

/** A page query of fixed shape whose SQL is built once (see {@link preparePage}). */
export interface PreparedPage<C extends ColumnSelection> {
  /**
   * One page plus the total, as {@link listSelected} answers; `values` names a value for
   * every placeholder of the filter.
   */
  list<Dto>(
    db: Db,
    values: Record<string, unknown>,
    page: { limit: number; offset: number },
    toDto: (row: SelectedRow<C>) => Dto,
  ): Promise<Page<Dto>>;
}

/**
 * {@link listSelected} for a list whose filter has a fixed shape, its values given as
 * `sql.placeholder(name)`: drizzle builds the SQL on first use only, where building
 * it per request cost about as much CPU as SQLite takes to answer a small page.
 */
export function preparePage<C extends ColumnSelection>(
  table: SQLiteTable,
  columns: C,
  { where, orderBy }: Pick<PageRequest, "where" | "orderBy">,
): PreparedPage<C> {
  let built: { page: Query; count: Query } | undefined;
  return {
    list(db, values, { limit, offset }, toDto) {
      built ??= {
        page: pageSelect(db, table, columns, where, orderBy)
          .limit(sql.placeholder("limit"))
          .offset(sql.placeholder("offset"))
          .toSQL(),
        count: countSelect(db, table, where).toSQL(),
      };
      const { page, count } = built;
      const pageQuery = {
        sql: page.sql,
        params: fillPlaceholders(page.params, { ...values, limit, offset }),
      };
      const countQuery = () => ({ sql: count.sql, params: fillPlaceholders(count.params, values) });
      return runPage(db, columns, pageQuery, countQuery, { limit, offset }, toDto);
    },
  };
}

/** Selection key of the page total; no table has a column of this name. */
const PAGE_TOTAL = "\u0000pageTotal";

/** The page's columns with the total over all pages as one more value (SQLite counts it once). */
function pageSelect(
  db: Db,
  table: SQLiteTable,
  columns: ColumnSelection,
  where: SQL | undefined,
  orderBy: (SQL | SQLiteColumn)[],
) {
  const filter = where ? sql` where ${where}` : sql``;
  return db
    .select({ ...columns, [PAGE_TOTAL]: sql`(select count(*) from ${table}${filter})` })
    .from(table)
    .where(where)
    .orderBy(...orderBy);
}

function countSelect(db: Db, table: SQLiteTable, where: SQL | undefined) {
  return db.select({ n: count() }).from(table).where(where);
}

async function runPage<C extends ColumnSelection, Dto>(
  db: Db,
  columns: C,
  page: Query,
  countQuery: () => Query,
  { limit, offset }: { limit: number; offset: number },
  toDto: (row: SelectedRow<C>) => Dto,
): Promise<Page<Dto>> {
  const { rows, raw } = await selectRows(db, page, columns);
  // The total is the value after the columns; only a page past the end has no row to carry it.
  let total = Number(raw[0]?.[Object.keys(columns).length] ?? Number.NaN);
  if (raw.length === 0) {
    const { sql: text, params } = countQuery();
    const { rows: counted } = await db.$client.execute({ sql: text, args: params as InArgs });
    total = Number(counted[0]?.[0] ?? 0);
  }
  return { items: rows.map(toDto), total, limit, offset };
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
  return findSelectedOr404(db, table, columnsOf(table), id, what, scope) as Promise<T["$inferSelect"]>;
}

/** {@link findByIdOr404} reading only `columns` of `table`. */
export async function findSelectedOr404<C extends ColumnSelection>(
  db: Db,
  table: ResourceTable,
  columns: C,
  id: string,
  what: string,
  scope?: SQL,
): Promise<SelectedRow<C>> {
  const query = db
    .select(columns)
    .from(table)
    .where(and(eq(table.id, id), scope))
    .toSQL();
  const [row] = (await selectRows(db, query, columns)).rows;
  if (!row) throw notFound(what);
  return row;
}

/** A by-id read of fixed shape whose SQL is built once (see {@link prepareFind}). */
export interface PreparedFind<C extends ColumnSelection> {
  /** The row with this id, or 404 "<what> not found"; `values` fills the scope's placeholders. */
  findOr404(db: Db, id: string, what: string, values?: Record<string, unknown>): Promise<SelectedRow<C>>;
}

/**
 * {@link findSelectedOr404} with its scope's values as `sql.placeholder(name)`s, built
 * into SQL on first use only (as {@link preparePage} does for lists).
 */
export function prepareFind<C extends ColumnSelection>(
  table: ResourceTable,
  columns: C,
  scope?: SQL,
): PreparedFind<C> {
  let built: Query | undefined;
  return {
    async findOr404(db, id, what, values = {}) {
      built ??= db
        .select(columns)
        .from(table)
        .where(and(eq(table.id, sql.placeholder(FIND_ID)), scope))
        .toSQL();
      const query = { sql: built.sql, params: fillPlaceholders(built.params, { ...values, [FIND_ID]: id }) };
      const [row] = (await selectRows(db, query, columns)).rows;
      if (!row) throw notFound(what);
      return row;
    },
  };
}

/** Placeholder name of the id in {@link prepareFind} (not a name a scope would pick). */
const FIND_ID = "\u0000id";

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
