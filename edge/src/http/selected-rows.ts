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
  const fields = Object.entries(columns).map(([key, column]): Field => {
    if (column.getSQLType() === "blob") {
      // drizzle turns a driver's ArrayBuffer into a Buffer before decoding; no API row has blobs.
      throw new TypeError(`selected rows: blob column ${column.name} is not supported`);
    }
    const passThrough = column.mapFromDriverValue === Column.prototype.mapFromDriverValue;
    return {
      key,
      name: column.name,
      decode: passThrough ? undefined : (value) => column.mapFromDriverValue(value),
    };
  });
  fieldsBySelection.set(columns, fields);
  return fields;
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
