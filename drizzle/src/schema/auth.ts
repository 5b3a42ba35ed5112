// Accounts and access: users, login sessions, login throttling and relay tokens.
import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { bool, createdAt, idColumn, timestamp, updatedAt } from "./columns.ts";

export const userRoles = ["admin", "user"] as const;
export type UserRole = (typeof userRoles)[number];

export const users = sqliteTable(
  "users",
  {
    id: idColumn(),
    /** Always stored lowercased (enforced by a CHECK); compare with a lowercased input. */
    email: text("email").notNull().unique(),
    name: text("name").notNull(),
    role: text("role", { enum: userRoles }).notNull().default("user"),
    /** KDF output in PHC string format; never a plain hash. */
    passwordHash: text("password_hash").notNull(),
    /** Sessions created before this are invalid (SPEC §7: revoked on password change). */
    passwordChangedAt: timestamp("password_changed_at")
      .notNull()
      .$defaultFn(() => new Date()),
    /** Per-user do-not-disturb (SPEC §2 step 4). */
    dnd: bool("dnd").notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check("users_email_lowercase", sql`${t.email} = lower(${t.email})`),
    check("users_role_valid", sql`${t.role} in ('admin', 'user')`),
  ],
);

export const sessions = sqliteTable(
  "sessions",
  {
    /** SHA-256 hex of the random session token; the token itself is never stored. */
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    lastSeenAt: timestamp("last_seen_at")
      .notNull()
      .$defaultFn(() => new Date()),
    /** Sliding: moved forward on use (24 h idle). */
    expiresAt: timestamp("expires_at").notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
  },
  (t) => [index("sessions_user_idx").on(t.userId), index("sessions_expires_idx").on(t.expiresAt)],
);

export const loginAttemptScopes = ["account", "ip"] as const;

/** One row per login attempt, counted per account and per IP for the 5-failures lockout. */
export const loginAttempts = sqliteTable(
  "login_attempts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    scope: text("scope", { enum: loginAttemptScopes }).notNull(),
    /** Lowercased email for scope "account", client IP for scope "ip". */
    subject: text("subject").notNull(),
    succeeded: bool("succeeded").notNull(),
    at: timestamp("at")
      .notNull()
      .$defaultFn(() => new Date()),
  },
  (t) => [index("login_attempts_scope_subject_at_idx").on(t.scope, t.subject, t.at)],
);

/** Tokens the on-prem relay authenticates its WebSocket with (shown once, stored hashed). */
export const relayTokens = sqliteTable("relay_tokens", {
  id: idColumn(),
  name: text("name").notNull(),
  /** SHA-256 hex of the token. */
  tokenHash: text("token_hash").notNull().unique(),
  createdAt: createdAt(),
  lastUsedAt: timestamp("last_used_at"),
  revokedAt: timestamp("revoked_at"),
});
