// Holidays for time conditions of routing rules and after-hours auto-replies.
import { sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { bool, createdAt, idColumn } from "./columns.ts";

export const holidays = sqliteTable(
  "holidays",
  {
    id: idColumn(),
    /** `YYYY-MM-DD` in the installation's time zone. */
    date: text("date").notNull(),
    name: text("name").notNull(),
    /** Repeats every year on the same month and day (the year of `date` is then ignored). */
    recurring: bool("recurring").notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("holidays_date_uq").on(t.date)],
);
