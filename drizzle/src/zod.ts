// zod schemas derived from the tables (drizzle-zod), so API request/response
// schemas come from the one table definition. JSON columns use their document
// schemas; text columns with a format (E.164, extension, email) are refined here.
// Refinements are functions so drizzle-zod still adds optional/nullable per column.
// `select*` describe rows as read; `insert*`/`update*` rows as written (server-managed
// columns are optional: the edge `.omit()`s or `.pick()`s what a client may send).
import { createInsertSchema, createSelectSchema, createUpdateSchema } from "drizzle-zod";
import { z } from "zod";
import { clockTimeSchema, e164PrefixSchema, e164Schema, isoDateSchema } from "./json/common.ts";
import { outboundPolicySchema } from "./json/device.ts";
import { didTargetsSchema, greetingSchema } from "./json/did.ts";
import { eventDataSchema } from "./json/operations.ts";
import { callerRegexSchema, routingRuleSchema } from "./json/routing-rule.ts";
import {
  autoReplies,
  blocklist,
  cdrs,
  contactNumbers,
  contacts,
  deviceEvents,
  devices,
  dids,
  holidays,
  messageMedia,
  messages,
  notificationPreferences,
  recordings,
  registrations,
  relayTokens,
  routingRules,
  sessions,
  systemEvents,
  users,
  voicemails,
} from "./schema/index.ts";

/** An email address, trimmed and lowercased (how `users.email` is stored). */
export const emailSchema = z.string().trim().toLowerCase().pipe(z.email().max(254));
/** Dialable extension: 2–8 digits. */
export const extensionSchema = z.string().regex(/^\d{2,8}$/, "must be 2–8 digits");
/** SIP username (digest user part): letters, digits, `.`, `_`, `-`. */
export const sipUsernameSchema = z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, "3–64 letters, digits, . _ -");
const nameSchema = z.string().trim().min(1).max(100);

/**
 * Refinement for a column with a default or a nullable one: drizzle-zod makes such
 * columns optional on insert at runtime but not in its types; this makes both agree.
 */
const opt =
  <T extends z.ZodType>(schema: T) =>
  () =>
    schema.optional();

// --- users and access ---------------------------------------------------------

const userRefine = { email: () => emailSchema, name: () => nameSchema };
export const selectUserSchema = createSelectSchema(users);
/** A user as the API shows it: never the password hash. */
export const publicUserSchema = selectUserSchema.omit({ passwordHash: true });
export const insertUserSchema = createInsertSchema(users, userRefine);
export const updateUserSchema = createUpdateSchema(users, userRefine);

export const selectSessionSchema = createSelectSchema(sessions);

export const selectRelayTokenSchema = createSelectSchema(relayTokens);
/** A relay token as listed: never its hash. */
export const publicRelayTokenSchema = selectRelayTokenSchema.omit({ tokenHash: true });
export const insertRelayTokenSchema = createInsertSchema(relayTokens, { name: () => nameSchema });

// --- devices ------------------------------------------------------------------

const deviceRefine = {
  name: () => nameSchema,
  extension: () => extensionSchema,
  sipUsername: () => sipUsernameSchema,
  outboundPolicy: opt(outboundPolicySchema),
};
export const selectDeviceSchema = createSelectSchema(devices, { outboundPolicy: () => outboundPolicySchema });
/** A device as the API shows it: never its HA1 hashes. */
export const publicDeviceSchema = selectDeviceSchema.omit({ ha1Md5: true, ha1Sha256: true });
export const insertDeviceSchema = createInsertSchema(devices, deviceRefine);
export const updateDeviceSchema = createUpdateSchema(devices, deviceRefine);

export const selectRegistrationSchema = createSelectSchema(registrations);
export const selectDeviceEventSchema = createSelectSchema(deviceEvents, { data: () => eventDataSchema });

// --- numbers and routing ------------------------------------------------------

const didRefine = {
  e164: () => e164Schema,
  label: opt(z.string().trim().max(100)),
  defaultTargets: opt(didTargetsSchema),
  greeting: opt(greetingSchema),
};
export const selectDidSchema = createSelectSchema(dids, {
  defaultTargets: () => didTargetsSchema,
  greeting: () => greetingSchema,
});
export const insertDidSchema = createInsertSchema(dids, didRefine);
export const updateDidSchema = createUpdateSchema(dids, didRefine);

const ruleRefine = {
  name: () => nameSchema,
  priority: opt(z.int().min(0).max(1_000_000)),
  rule: () => routingRuleSchema,
};
export const selectRoutingRuleSchema = createSelectSchema(routingRules, { rule: () => routingRuleSchema });
export const insertRoutingRuleSchema = createInsertSchema(routingRules, ruleRefine);
export const updateRoutingRuleSchema = createUpdateSchema(routingRules, ruleRefine);

/** Checks a blocklist pattern against its match type (E.164, E.164 prefix, compiling regex). */
function checkBlocklistPattern(
  entry: { pattern?: string | undefined; matchType?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (entry.pattern === undefined || entry.matchType === undefined) return;
  const schema =
    entry.matchType === "exact"
      ? e164Schema
      : entry.matchType === "prefix"
        ? e164PrefixSchema
        : callerRegexSchema;
  const result = schema.safeParse(entry.pattern);
  if (!result.success) {
    for (const issue of result.error.issues)
      ctx.addIssue({ code: "custom", path: ["pattern"], message: issue.message });
  }
}
const blocklistRefine = { note: opt(z.string().max(500)) };
export const selectBlocklistSchema = createSelectSchema(blocklist);
export const insertBlocklistSchema = createInsertSchema(blocklist, blocklistRefine).superRefine(
  checkBlocklistPattern,
);
/** For a partial update send both `pattern` and `matchType` when either changes, so they are checked together. */
export const updateBlocklistSchema = createUpdateSchema(blocklist, blocklistRefine).superRefine(
  checkBlocklistPattern,
);

export const selectContactSchema = createSelectSchema(contacts);
export const insertContactSchema = createInsertSchema(contacts, {
  name: () => nameSchema,
  note: opt(z.string().max(1000)),
});
export const updateContactSchema = createUpdateSchema(contacts, {
  name: () => nameSchema,
  note: opt(z.string().max(1000)),
});
export const selectContactNumberSchema = createSelectSchema(contactNumbers);
export const insertContactNumberSchema = createInsertSchema(contactNumbers, {
  e164: () => e164Schema,
  label: opt(z.string().max(50)),
});

export const selectHolidaySchema = createSelectSchema(holidays);
export const insertHolidaySchema = createInsertSchema(holidays, {
  date: () => isoDateSchema,
  name: () => nameSchema,
});
export const updateHolidaySchema = createUpdateSchema(holidays, {
  date: () => isoDateSchema,
  name: () => nameSchema,
});

// --- calls, voicemail, recordings ---------------------------------------------

export const selectCdrSchema = createSelectSchema(cdrs);
export const selectVoicemailSchema = createSelectSchema(voicemails);
export const selectRecordingSchema = createSelectSchema(recordings);

// --- messaging ----------------------------------------------------------------

/** 1600 characters: Twilio's limit for one (concatenated) SMS body. */
export const smsBodySchema = z.string().max(1600);
export const selectMessageSchema = createSelectSchema(messages);
export const insertMessageSchema = createInsertSchema(messages, {
  fromNumber: () => e164Schema,
  toNumber: () => e164Schema,
  peerNumber: () => e164Schema,
  body: opt(smsBodySchema),
});
export const selectMessageMediaSchema = createSelectSchema(messageMedia);

function checkAutoReplyKeyword(
  reply: { trigger?: string | undefined; keyword?: string | null | undefined },
  ctx: z.RefinementCtx,
): void {
  if (reply.trigger === "keyword" && !reply.keyword) {
    ctx.addIssue({ code: "custom", path: ["keyword"], message: "a keyword trigger needs a keyword" });
  }
}
const autoReplyRefine = {
  keyword: opt(z.string().trim().min(1).max(50)),
  text: () => z.string().trim().min(1).max(1600),
};
export const selectAutoReplySchema = createSelectSchema(autoReplies);
export const insertAutoReplySchema = createInsertSchema(autoReplies, autoReplyRefine).superRefine(
  checkAutoReplyKeyword,
);
export const updateAutoReplySchema = createUpdateSchema(autoReplies, autoReplyRefine).superRefine(
  checkAutoReplyKeyword,
);

// --- notifications and events -------------------------------------------------

function checkQuietHours(
  pref: { quietHoursStart?: string | null | undefined; quietHoursEnd?: string | null | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((pref.quietHoursStart == null) !== (pref.quietHoursEnd == null)) {
    ctx.addIssue({
      code: "custom",
      path: ["quietHoursEnd"],
      message: "set both quiet-hours start and end, or neither",
    });
  }
}
const quietHoursRefine = {
  quietHoursStart: opt(clockTimeSchema),
  quietHoursEnd: opt(clockTimeSchema),
};
export const selectNotificationPreferenceSchema = createSelectSchema(notificationPreferences);
export const insertNotificationPreferenceSchema = createInsertSchema(
  notificationPreferences,
  quietHoursRefine,
).superRefine(checkQuietHours);

export const selectSystemEventSchema = createSelectSchema(systemEvents, { data: () => eventDataSchema });
