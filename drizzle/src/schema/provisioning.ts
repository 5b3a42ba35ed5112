// One-time links a phone (Grandstream XML, Linphone remote provisioning, QR code)
// fetches its configuration from.
import { index, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { createdAt, idColumn, timestamp } from "./columns.ts";
import { devices } from "./devices.ts";

export const provisioningFormats = ["grandstream", "linphone", "qr"] as const;

export const provisioningTokens = sqliteTable(
  "provisioning_tokens",
  {
    id: idColumn(),
    deviceId: text("device_id")
      .notNull()
      .references(() => devices.id, { onDelete: "cascade" }),
    format: text("format", { enum: provisioningFormats }).notNull(),
    /** SHA-256 hex of the token in the URL; the token itself is never stored. */
    tokenHash: text("token_hash").notNull().unique(),
    expiresAt: timestamp("expires_at").notNull(),
    usedAt: timestamp("used_at"),
    createdAt: createdAt(),
  },
  (t) => [index("provisioning_tokens_device_idx").on(t.deviceId)],
);
