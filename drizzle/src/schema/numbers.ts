// Phone numbers (DIDs) and how their inbound calls are routed: rules and blocklist.
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { DidTargets, Greeting } from "../json/did.ts";
import type { RoutingRule } from "../json/routing-rule.ts";
import { bool, createdAt, idColumn, updatedAt } from "./columns.ts";

export const dids = sqliteTable("dids", {
  id: idColumn(),
  e164: text("e164").notNull().unique(),
  label: text("label").notNull().default(""),
  /** Twilio IncomingPhoneNumber SID (PN...), once provisioned. */
  twilioSid: text("twilio_sid").unique(),
  defaultTargets: text("default_targets", { mode: "json" })
    .$type<DidTargets>()
    .notNull()
    .$defaultFn(() => ({ v: 1, deviceIds: [] })),
  dnd: bool("dnd").notNull().default(false),
  /** Voicemail greeting; null plays the built-in text-to-speech greeting. */
  greeting: text("greeting", { mode: "json" }).$type<Greeting>(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const routingRules = sqliteTable(
  "routing_rules",
  {
    id: idColumn(),
    /** null = global rule (applies to every DID). */
    didId: text("did_id").references(() => dids.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Lower runs first; DID rules and global rules are merged by priority. */
    priority: integer("priority").notNull().default(100),
    enabled: bool("enabled").notNull().default(true),
    rule: text("rule", { mode: "json" }).$type<RoutingRule>().notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("routing_rules_did_priority_idx").on(t.didId, t.priority)],
);

export const blocklistMatchTypes = ["exact", "prefix", "regex"] as const;
export const blocklistActions = ["reject", "voicemail"] as const;

export const blocklist = sqliteTable(
  "blocklist",
  {
    id: idColumn(),
    /** E.164 number (exact), E.164 prefix, or regex source. */
    pattern: text("pattern").notNull(),
    matchType: text("match_type", { enum: blocklistMatchTypes }).notNull(),
    action: text("action", { enum: blocklistActions }).notNull().default("reject"),
    note: text("note").notNull().default(""),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("blocklist_pattern_match_type_uq").on(t.pattern, t.matchType)],
);
