// SIP devices (phones and softphones) and their SIP credentials.
import { sql } from "drizzle-orm";
import { check, index, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { defaultOutboundPolicy, type OutboundPolicy } from "../json/device.ts";
import { users } from "./auth.ts";
import { bool, createdAt, idColumn, updatedAt } from "./columns.ts";

export const devices = sqliteTable(
  "devices",
  {
    id: idColumn(),
    /** Owner; deleting the user removes their devices (and so their SIP credentials). */
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** The dialable extension number, e.g. "101". */
    extension: text("extension").notNull().unique(),
    sipUsername: text("sip_username").notNull().unique(),
    /** Hex HA1 = MD5(username:realm:password); the password itself is never stored. */
    ha1Md5: text("ha1_md5").notNull(),
    /** Hex HA1 = SHA-256(username:realm:password) for RFC 7616 clients. */
    ha1Sha256: text("ha1_sha256").notNull(),
    enabled: bool("enabled").notNull().default(true),
    recordAlways: bool("record_always").notNull().default(false),
    outboundPolicy: text("outbound_policy", { mode: "json" })
      .$type<OutboundPolicy>()
      .notNull()
      .$defaultFn(() => defaultOutboundPolicy),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("devices_user_idx").on(t.userId),
    check(
      "devices_extension_digits",
      sql`${t.extension} glob '[0-9]*' and ${t.extension} not glob '*[^0-9]*'`,
    ),
  ],
);
