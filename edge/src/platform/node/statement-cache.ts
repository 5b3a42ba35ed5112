/**
 * Prepared-statement reuse for the Node edge's local libSQL file.
 *
 * @libsql/client compiles every statement anew, asks SQLite for its column list
 * twice per call and defines each row's values one property at a time; for the
 * edge's small queries that overhead was a third of a request's CPU. drizzle
 * emits the same SQL text for the same query shape (values are bound
 * parameters), so `execute` here keeps each compiled statement and its columns,
 * keyed by SQL text, on a connection of its own, and builds rows from a shared
 * per-statement prototype. Measured in-process, CPU per request: GET
 * /api/auth/me 230 → 150 µs, GET /api/devices (20 rows) 700 → 405 µs, POST
 * /api/devices 840 → 555 µs. Everything else (batch, migrate, executeMultiple)
 * is delegated to the wrapped @libsql/client as is.
 *
 * A SELECT reads integers as plain numbers and is read again exactly only when a
 * number beyond 2^53 shows up, so an unsafe integer still fails with RangeError as
 * with @libsql/client; no column of the schema holds such values (timestamps in ms,
 * counts, SIP CSeq and ports, autoincrement ids). Rows are instances of one class per
 * statement that keeps the values in a private field.
 *
 * Interactive transactions are refused: this client runs statements on two
 * connections, and a transaction holding the write lock on one would stall the
 * other's writes. The edge makes atomic changes with `db.batch` instead.
 */
import { Buffer } from "node:buffer";
import {
  type Client,
  type InArgs,
  type InStatement,
  type InValue,
  LibsqlError,
  type Replicated,
  type ResultSet,
  type Row,
  type Transaction,
  type Value,
} from "@libsql/client";
import Database from "libsql";

/** Compiled statements kept per connection; drizzle's distinct query shapes are far fewer. */
const MAX_CACHED_STATEMENTS = 500;

type Connection = Database.Database;
type Statement = Database.Statement<unknown[]>;

interface CachedStatement {
  statement: Statement;
  /** Column names and declared types when the statement returns rows (SELECT, RETURNING, PRAGMA). */
  columns: string[] | undefined;
  columnTypes: string[];
  /** How rows of this statement are built (see {@link rowShape}). */
  shape: RowShape;
  /**
   * Whether integers are read as exact BigInts. A SELECT reads plain numbers (a BigInt per
   * integer value was most of a row's cost) until it meets one outside the safe range; a
   * statement that writes is always exact, as it cannot be run again to re-read.
   */
  exact: boolean;
}

/** SQL that only reads (drizzle writes its SELECTs lowercase; either case is fine). */
const READ_ONLY = /^\s*select\s/i;

/** The SQLite pragmas the edge runs its file database with (set per connection). */
export const FILE_DATABASE_PRAGMAS = [
  // WAL lets readers (backups, the relay's tools) run beside the writer.
  "PRAGMA journal_mode = WAL",
  // The WAL setting SQLite recommends: no corruption on power loss, at most the last commits undone,
  // and no fsync per write.
  "PRAGMA synchronous = NORMAL",
  // Wait instead of failing when another process holds the lock.
  "PRAGMA busy_timeout = 5000",
];

/**
 * Wraps `inner` (a @libsql/client for the file at `path`) so that `execute`
 * reuses compiled statements on its own connection to the same file.
 */
export function withStatementCache(inner: Client, path: string): Client {
  return new StatementCachingClient(inner, path);
}

class StatementCachingClient implements Client {
  #inner: Client;
  #path: string;
  #db: Connection;
  #statements = new Map<string, CachedStatement>();

  constructor(inner: Client, path: string) {
    this.#inner = inner;
    this.#path = path;
    this.#db = openConnection(path);
  }

  get closed(): boolean {
    return this.#inner.closed;
  }

  get protocol(): string {
    return this.#inner.protocol;
  }

  execute(stmt: InStatement): Promise<ResultSet>;
  execute(sql: string, args?: InArgs): Promise<ResultSet>;
  async execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
    if (this.#inner.closed) throw new LibsqlError("The client is closed", "CLIENT_CLOSED");
    const stmt = typeof stmtOrSql === "string" ? { sql: stmtOrSql, args: args ?? [] } : stmtOrSql;
    try {
      return this.#run(stmt);
    } catch (err) {
      throw toLibsqlError(err);
    }
  }

  #run(stmt: InStatement): ResultSet {
    const sql = typeof stmt === "string" ? stmt : stmt.sql;
    const bound = typeof stmt === "string" ? [] : toSqlArgs(stmt.args);
    const cached = this.#prepared(sql);
    if (cached.columns === undefined) {
      const info = cached.statement.run(bound);
      return resultSet([], [], [], info.changes, BigInt(info.lastInsertRowid));
    }
    let values = cached.statement.all(bound) as unknown[][];
    // SQLite recompiles a statement whose tables another connection altered (e.g. `select *` after
    // ALTER TABLE), so the row width can outgrow the columns read at prepare time: read them again.
    const width = values[0]?.length;
    if (width !== undefined && width !== cached.columns.length) readColumns(cached);
    if (!cached.exact && !fromPlainValues(values)) {
      // A number beyond 2^53 may be a rounded integer: read this statement exactly from now on, so
      // an unsafe integer fails as it does with @libsql/client instead of being silently changed.
      cached.exact = true;
      cached.statement.safeIntegers(true);
      values = cached.statement.all(bound) as unknown[][];
    }
    if (cached.exact) values = values.map((row) => row.map(fromExact));
    const columns = cached.columns ?? [];
    const rows = (values as Value[][]).map((row) => toRow(row, cached.shape));
    return resultSet(columns, cached.columnTypes, rows, 0, undefined);
  }

  #prepared(sql: string): CachedStatement {
    const hit = this.#statements.get(sql);
    if (hit) return hit;
    const statement = this.#db.prepare(sql);
    // A SELECT cannot change the database, so it may run a second time with exact integers.
    const exact = !READ_ONLY.test(sql);
    statement.safeIntegers(exact);
    const entry: CachedStatement = {
      statement,
      columns: undefined,
      columnTypes: [],
      shape: rowShape([]),
      exact,
    };
    let returnsRows = true;
    try {
      statement.raw(true); // throws for statements that return no rows
    } catch {
      returnsRows = false;
    }
    if (returnsRows) readColumns(entry);
    if (this.#statements.size >= MAX_CACHED_STATEMENTS) {
      const oldest = this.#statements.keys().next().value;
      if (oldest !== undefined) this.#statements.delete(oldest);
    }
    this.#statements.set(sql, entry);
    return entry;
  }

  batch(...args: Parameters<Client["batch"]>): Promise<ResultSet[]> {
    return this.#inner.batch(...args);
  }

  async migrate(stmts: InStatement[]): Promise<ResultSet[]> {
    const results = await this.#inner.migrate(stmts);
    this.#statements.clear(); // compiled against the old schema
    return results;
  }

  async executeMultiple(sql: string): Promise<void> {
    await this.#inner.executeMultiple(sql);
    this.#statements.clear();
  }

  transaction(): Promise<Transaction> {
    return Promise.reject(
      new LibsqlError(
        "Interactive transactions are not available on the edge's file database; use db.batch",
        "TRANSACTION_UNSUPPORTED",
      ),
    );
  }

  sync(): Promise<Replicated> {
    return this.#inner.sync();
  }

  close(): void {
    this.#statements.clear();
    if (this.#db.open) this.#db.close();
    this.#inner.close();
  }

  reconnect(): void {
    this.close();
    this.#inner.reconnect();
    this.#db = openConnection(this.#path);
  }
}

function readColumns(entry: CachedStatement): void {
  const defs = entry.statement.columns();
  entry.columns = defs.map((c) => c.name);
  entry.columnTypes = defs.map((c) => c.type ?? "");
  entry.shape = rowShape(entry.columns);
}

function openConnection(path: string): Connection {
  const db = new Database(path);
  for (const pragma of FILE_DATABASE_PRAGMAS) db.exec(pragma);
  return db;
}

function resultSet(
  columns: string[],
  columnTypes: string[],
  rows: Row[],
  rowsAffected: number,
  lastInsertRowid: bigint | undefined,
): ResultSet {
  return {
    columns,
    columnTypes,
    rows,
    rowsAffected,
    lastInsertRowid,
    toJSON: () => ({
      columns,
      columnTypes,
      rows: rows.map((row) => Array.prototype.map.call(row, jsonValue)),
      rowsAffected,
      lastInsertRowid: lastInsertRowid === undefined ? null : String(lastInsertRowid),
    }),
  };
}

function jsonValue(value: unknown): unknown {
  if (typeof value === "bigint") return String(value);
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString("base64");
  return value;
}

/** Holds a row's values where neither keys, spread, JSON nor equality checks see them. */
class RowValues {
  #values: Value[];
  constructor(values: Value[]) {
    this.#values = values;
  }
  static of(row: RowValues): Value[] {
    return row.#values;
  }
}

/**
 * Rows of one statement are instances of one class whose prototype serves `length`
 * and the values by index (non-enumerable, like @libsql/client's rows); each row then
 * only gets its values array and one plain property per column name, instead of a
 * property definition per value and per name.
 */
interface RowShape {
  create: new (values: Value[]) => RowValues;
  /** Own property name for each column, or undefined where @libsql/client keeps none (repeated name). */
  names: (string | undefined)[];
}

function rowShape(columns: string[]): RowShape {
  const create = class Row extends RowValues {};
  Object.defineProperty(create.prototype, "length", {
    get(this: RowValues) {
      return RowValues.of(this).length;
    },
  });
  columns.forEach((_, i) => {
    Object.defineProperty(create.prototype, i, {
      get(this: RowValues) {
        return RowValues.of(this)[i];
      },
    });
  });
  const seen = new Set<string>();
  const names = columns.map((column) => {
    // The first column of a name wins; index-like names and `length` stay with the prototype.
    if (seen.has(column) || column === "length" || /^\d+$/.test(column)) return undefined;
    seen.add(column);
    return column;
  });
  return { create, names };
}

/** A row as @libsql/client builds it: values by index (and `length`), and by column name (enumerable). */
function toRow(values: Value[], shape: RowShape): Row {
  const row = new shape.create(values) as unknown as Record<string, Value>;
  const { names } = shape;
  for (let i = 0; i < values.length; i++) {
    const name = names[i];
    if (name !== undefined) row[name] = values[i] as Value;
  }
  return row as unknown as Row;
}

/**
 * Converts, in place, the values of rows read with plain JS numbers to what
 * @libsql/client answers (blobs as ArrayBuffer). False when a number is outside the
 * safe integer range: it may be a rounded 64-bit integer, so the statement must be
 * read again with exact integers.
 */
function fromPlainValues(rows: unknown[][]): rows is Value[][] {
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const value = row[i];
      if (typeof value === "number") {
        if (value > Number.MAX_SAFE_INTEGER || value < Number.MIN_SAFE_INTEGER) return false;
      } else if (value instanceof Uint8Array) {
        row[i] = toArrayBuffer(value);
      }
    }
  }
  return true;
}

function toArrayBuffer(value: Uint8Array): ArrayBuffer {
  return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** SQLite value read with exact integers → JS value, as @libsql/client's default intMode "number" does. */
function fromExact(value: unknown): Value {
  if (typeof value === "bigint") {
    if (value < MIN_SAFE || value > MAX_SAFE) {
      throw new RangeError("Received integer which cannot be safely represented as a JavaScript number");
    }
    return Number(value);
  }
  if (value instanceof Uint8Array) return toArrayBuffer(value);
  return value as Value;
}

const MIN_INT64 = -9223372036854775808n;
const MAX_INT64 = 9223372036854775807n;

function toSqlValue(value: InValue): unknown {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      throw new RangeError("Only finite numbers (not Infinity or NaN) can be passed as arguments");
    }
    return value;
  }
  if (typeof value === "bigint") {
    if (value < MIN_INT64 || value > MAX_INT64) {
      throw new RangeError(
        "bigint is too large to be represented as a 64-bit integer and passed as argument",
      );
    }
    return value;
  }
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (value instanceof Date) return value.valueOf();
  if (value === undefined) throw new TypeError("undefined cannot be passed as argument to the database");
  return value;
}

function toSqlArgs(args: InArgs | undefined): unknown[] | Record<string, unknown> {
  if (args === undefined) return [];
  if (Array.isArray(args)) return args.map(toSqlValue);
  const named: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) {
    const key = name[0] === "@" || name[0] === "$" || name[0] === ":" ? name.slice(1) : name;
    named[key] = toSqlValue(value);
  }
  return named;
}

const SQLITE_BASE_CODES: Record<number, string> = {
  1: "SQLITE_ERROR",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  17: "SQLITE_SCHEMA",
  18: "SQLITE_TOOBIG",
  19: "SQLITE_CONSTRAINT",
  20: "SQLITE_MISMATCH",
  21: "SQLITE_MISUSE",
  25: "SQLITE_RANGE",
};

/** A driver error as @libsql/client reports it (LibsqlError with the base and extended SQLite codes). */
function toLibsqlError(err: unknown): unknown {
  if (err instanceof Database.SqliteError) {
    const raw = (err as { rawCode?: number }).rawCode;
    const base =
      raw === undefined
        ? "SQLITE_UNKNOWN"
        : (SQLITE_BASE_CODES[raw & 0xff] ?? `SQLITE_UNKNOWN_${raw & 0xff}`);
    return new LibsqlError(err.message, base, err.code, raw, err);
  }
  return err;
}
