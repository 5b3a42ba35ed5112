/**
 * Reads rows of a fixed column selection without drizzle's generic row mapping.
 *
 * drizzle copies every row into an array by index, then maps each value through a
 * path walk and `is()` class checks to find its decoder; for a page of devices that
 * was several µs per row. Here drizzle builds the SQL as usual, the libSQL client
 * runs it, the decoders of a selection are looked up once, and each row becomes an
 * object with one read by column name and one decoder call per non-null value, as
 * drizzle would decode it. The same code runs on every libSQL client (the Node
 * file database, @libsql/client over HTTP on Workers): only drizzle's query builder
 * and the client's documented rows (values by index and by column name) are used.
 */
import type { Db } from "@gosip/drizzle";
import type { InArgs, Row } from "@libsql/client";
import type { GetColumnData, Query } from "drizzle-orm";
import { Column } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";

/** Columns read for a response, by field name (a table's columns minus its secrets, say). */
export type ColumnSelection = Record<string, SQLiteColumn>;

/** A row of a selection, typed as drizzle types a select of those columns. */
export type SelectedRow<C extends ColumnSelection> = { [K in keyof C]: GetColumnData<C[K]> };

interface Field {
  key: string;
  /** The column's name in the result (its SQL name: a selection reads one table). */
  name: string;
  /** The column's driver → JS mapping; undefined where drizzle passes the value through. */
  decode: ((value: unknown) => unknown) | undefined;
}

const fieldsBySelection = new WeakMap<ColumnSelection, Field[]>();

function fieldsOf(columns: ColumnSelection): Field[] {
  const known = fieldsBySelection.get(columns);
  if (known) return known;
  const fields = Object.entries(columns).map(
    ([key, column]): Field => ({
      key,
      name: column.name,
      decode: decoderOf(column),
    }),
  );
  fieldsBySelection.set(columns, fields);
  return fields;
}

function decoderOf(column: SQLiteColumn): Field["decode"] {
  if (column.getSQLType() === "blob") {
    // drizzle turns a driver's ArrayBuffer into a Buffer before decoding; no API row has blobs.
    throw new TypeError(`selected rows: blob column ${column.name} is not supported`);
  }
  if (column.mapFromDriverValue === Column.prototype.mapFromDriverValue) return undefined;
  // JSON documents repeat (most devices keep the default outbound policy): parse each text once.
  if (column.columnType === "SQLiteTextJson") return parseJsonOnce;
  return (value) => column.mapFromDriverValue(value);
}

/** Texts of JSON documents parsed recently, and their values (frozen: every reader shares them). */
const parsedJson = new Map<string, unknown>();
const PARSED_JSON_ENTRIES = 512;
const PARSED_JSON_MAX_LENGTH = 4096;

/**
 * `JSON.parse` of a JSON column, as drizzle decodes it, remembered by text. The value
 * is deeply frozen, since rows read later share it: a reader that wants to change a
 * document must copy it (none does: routes build new objects for responses and writes).
 */
function parseJsonOnce(value: unknown): unknown {
  if (typeof value !== "string" || value.length > PARSED_JSON_MAX_LENGTH) return JSON.parse(value as string);
  const known = parsedJson.get(value);
  if (known !== undefined) return known;
  const parsed = deepFreeze(JSON.parse(value) as unknown);
  if (parsedJson.size >= PARSED_JSON_ENTRIES) parsedJson.clear();
  parsedJson.set(value, parsed);
  return parsed;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * Runs `query` (the SQL of a drizzle select of `columns` of one table, optionally
 * followed by more fields, with driver values as parameters: `.toSQL()`, placeholders
 * filled) and decodes each row's `columns`; the raw rows come back too, for the extra
 * fields (by index).
 */
export async function selectRows<C extends ColumnSelection>(
  db: Db,
  { sql, params }: Query,
  columns: C,
): Promise<{ rows: SelectedRow<C>[]; raw: Row[] }> {
  const { rows: raw } = await db.$client.execute({ sql, args: params as InArgs });
  const fields = fieldsOf(columns);
  const rows: SelectedRow<C>[] = new Array(raw.length);
  for (let r = 0; r < raw.length; r++) {
    const row = raw[r] as Row;
    const item: Record<string, unknown> = {};
    for (const { key, name, decode } of fields) {
      const value = row[name];
      item[key] = value === null || value === undefined || decode === undefined ? value : decode(value);
    }
    rows[r] = item as SelectedRow<C>;
  }
  return { rows, raw };
}
