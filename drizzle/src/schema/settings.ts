// Installation-wide settings: one row per key, value a versioned JSON document
// whose schema depends on the key (see json/settings.ts).
import { sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { SettingDocument } from "../json/settings.ts";
import { updatedAt } from "./columns.ts";

export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value", { mode: "json" }).$type<SettingDocument>().notNull(),
  updatedAt: updatedAt(),
});
