// Column builders shared by every table, so ids, timestamps and booleans look the
// same everywhere: text UUID ids, millisecond timestamps (Date in TS), 0/1 booleans.
import { sql } from "drizzle-orm";
import { integer, text } from "drizzle-orm/sqlite-core";

/** Text primary key filled with `crypto.randomUUID()` (works on Node and Workers). */
export const idColumn = () =>
  text("id")
    .primaryKey()
    .$defaultFn(() => crypto.randomUUID());

/** A millisecond timestamp column, read and written as `Date`. */
export const timestamp = (name: string) => integer(name, { mode: "timestamp_ms" });

// SQL default too, so rows inserted with plain SQL (relay, scripts) still get a time.
const nowMs = sql`(cast(unixepoch('subsec') * 1000 as integer))`;

export const createdAt = () =>
  timestamp("created_at")
    .notNull()
    .default(nowMs)
    .$defaultFn(() => new Date());

export const updatedAt = () =>
  timestamp("updated_at")
    .notNull()
    .default(nowMs)
    .$defaultFn(() => new Date())
    .$onUpdateFn(() => new Date());

export const bool = (name: string) => integer(name, { mode: "boolean" });
