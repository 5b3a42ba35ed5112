// Settings documents: one versioned schema per key of the `settings` table.
// Read with `parseSetting(key, row.value)`; a missing row means `settingDefaults[key]`.
// Fields marked secret must never be returned by the API or logged.
import { z } from "zod";
import { e164Schema, timeWindowSchema, timeZoneSchema } from "./common.ts";
import { defineVersionedJson, type VersionedJson } from "./versioned.ts";

/** Any settings value as stored: a JSON object carrying its version. */
export const settingDocumentSchema = z.looseObject({ v: z.int().min(1) });
export type SettingDocument = z.infer<typeof settingDocumentSchema>;

const installation = z.object({
  v: z.literal(1),
  /** Time zone of the installation: rules, quiet hours, holidays and UI display. */
  timeZone: timeZoneSchema.default("UTC"),
  /** Shown on the dashboard and in emails. */
  name: z.string().trim().min(1).max(100).default("GoSIP"),
  /** ISO 3166 alpha-2 country: national numbers dialled on a phone are made E.164 with its code. */
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, "must be a two-letter country code like US")
    .default("US"),
});

/**
 * SIP digest realm of the installation. Fixed after the first device is created:
 * every stored HA1 depends on it, so changing it would lock every phone out.
 */
const sip = z.object({
  v: z.literal(1),
  realm: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/, "realm must be letters, digits, dots and dashes (1–63)")
    .default("gosip"),
});

/** Global do-not-disturb (SPEC §2 step 4). */
const dnd = z.object({ v: z.literal(1), enabled: z.boolean().default(false) });

/** Inbound screening before rules (SPEC §2 steps 2–3). */
const callScreening = z.object({
  v: z.literal(1),
  rejectAnonymous: z.boolean().default(false),
  spamFilter: z.boolean().default(true),
  /** Calls scoring above this are blocked. */
  spamThreshold: z.number().min(0).max(1).default(0.7),
});

/** Office hours: "after hours" for auto-replies is outside these windows or on a holiday. */
const businessHours = z.object({
  v: z.literal(1),
  windows: z.array(timeWindowSchema).max(50).default([]),
});

const smtp = z.object({
  host: z.string().min(1).max(253),
  port: z.int().min(1).max(65535).default(587),
  /** true: TLS from the start (465); false: STARTTLS when offered. */
  secure: z.boolean().default(false),
  username: z.string().max(256).optional(),
  /** Secret. */
  password: z.string().max(1024).optional(),
});

const email = z
  .object({
    v: z.literal(1),
    provider: z.enum(["none", "smtp", "postmark"]).default("none"),
    from: z.email().optional(),
    smtp: smtp.optional(),
    /** Secret: Postmark server token. */
    postmarkToken: z.string().min(1).max(256).optional(),
  })
  .superRefine((e, ctx) => {
    if (e.provider !== "none" && !e.from)
      ctx.addIssue({ code: "custom", path: ["from"], message: "sender address required" });
    if (e.provider === "smtp" && !e.smtp)
      ctx.addIssue({ code: "custom", path: ["smtp"], message: "SMTP server required" });
    if (e.provider === "postmark" && !e.postmarkToken)
      ctx.addIssue({ code: "custom", path: ["postmarkToken"], message: "Postmark token required" });
  });

const gotify = z
  .object({
    v: z.literal(1),
    enabled: z.boolean().default(false),
    url: z.url({ protocol: /^https?$/ }).optional(),
    /** Secret: Gotify application token. */
    appToken: z.string().min(1).max(256).optional(),
  })
  .refine((g) => !g.enabled || (g.url && g.appToken), {
    message: "url and appToken are required when enabled",
    path: ["enabled"],
  });

/** Days to keep things; null keeps forever. */
const retention = z.object({
  v: z.literal(1),
  recordingsDays: z.int().min(1).max(3650).nullable().default(90),
  voicemailsDays: z.int().min(1).max(3650).nullable().default(null),
  cdrsDays: z.int().min(1).max(3650).nullable().default(null),
  messagesDays: z.int().min(1).max(3650).nullable().default(null),
});

const storage = z.object({
  v: z.literal(1),
  /** Alert the admin above this fill level (SPEC §9: storage > 80 %). */
  alertAtPercent: z.int().min(1).max(100).default(80),
  /** Below this much free space on the relay, calls go on without recording. */
  minFreeBytes: z
    .int()
    .min(0)
    .default(500 * 1024 * 1024),
});

/** What the setup wizard provisioned in the Twilio account. */
const twilio = z.object({
  v: z.literal(1),
  accountSid: z.string().regex(/^AC[0-9a-f]{32}$/, "must be an Account SID (AC…)"),
  /** Secret. */
  authToken: z.string().min(1).max(256),
  sipDomainSid: z
    .string()
    .regex(/^SD[0-9a-f]{32}$/)
    .optional(),
  /** e.g. "gosip-home.sip.twilio.com". */
  sipDomainName: z.string().min(1).max(253).optional(),
  credentialListSid: z
    .string()
    .regex(/^CL[0-9a-f]{32}$/)
    .optional(),
  /** Credentials the relay uses towards the SIP Domain (password secret). */
  sipUsername: z.string().min(1).max(128).optional(),
  sipPassword: z.string().min(1).max(256).optional(),
  /** Twilio Functions service of the voicemail fallback. */
  fallbackServiceSid: z
    .string()
    .regex(/^ZS[0-9a-f]{32}$/)
    .optional(),
  fallbackUrl: z.url().optional(),
});

/** How the edge reaches the relay for <Dial><Sip> and how Twilio authenticates to it. */
const relay = z.object({
  v: z.literal(1),
  /** Public SIP URI of the relay, e.g. "sip:home.example.net:5060". */
  publicSipUri: z
    .string()
    .regex(/^sips?:[^\s]+$/, "must be a sip: URI")
    .optional(),
  /** Digest credentials Twilio uses towards the relay (password secret). */
  inboundUsername: z.string().min(1).max(128).optional(),
  inboundPassword: z.string().min(1).max(256).optional(),
  /** LAN networks (CIDR) the relay never bans or rate-limits, e.g. "192.168.1.0/24". */
  trustedNetworks: z
    .array(z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, "must be a CIDR like 192.168.1.0/24"))
    .max(50)
    .default([]),
});

export const setupSteps = [
  "admin",
  "twilio",
  "numbers",
  "sip_domain",
  "webhooks",
  "fallback",
  "device",
] as const;

/** Setup wizard progress; each step is resumable. */
const setup = z.object({
  v: z.literal(1),
  completedSteps: z.array(z.enum(setupSteps)).default([]),
  completedAt: z.iso.datetime().nullable().default(null),
});

/** Outgoing SMS defaults. */
const messaging = z.object({
  v: z.literal(1),
  /** Forward inbound SMS to the users' email. */
  forwardToEmail: z.boolean().default(false),
  /** DID that sends when the UI does not pick one. */
  defaultSenderE164: e164Schema.nullable().default(null),
});

const schemas = {
  installation,
  sip,
  dnd,
  callScreening,
  businessHours,
  email,
  gotify,
  retention,
  storage,
  twilio,
  relay,
  setup,
  messaging,
} as const;

export type SettingKey = keyof typeof schemas;
export const settingKeys = Object.keys(schemas) as SettingKey[];
export type SettingValue<K extends SettingKey> = z.output<(typeof schemas)[K]>;
/** What a client submits for a key (defaults not yet applied). */
export type SettingInput<K extends SettingKey> = z.input<(typeof schemas)[K]>;

/** Versioned schema per settings key. */
export const settingSchemas: { [K in SettingKey]: VersionedJson<SettingValue<K>> } = {
  installation: defineVersionedJson({ name: "settings.installation", version: 1, schema: installation }),
  sip: defineVersionedJson({ name: "settings.sip", version: 1, schema: sip }),
  dnd: defineVersionedJson({ name: "settings.dnd", version: 1, schema: dnd }),
  callScreening: defineVersionedJson({ name: "settings.callScreening", version: 1, schema: callScreening }),
  businessHours: defineVersionedJson({ name: "settings.businessHours", version: 1, schema: businessHours }),
  email: defineVersionedJson({ name: "settings.email", version: 1, schema: email }),
  gotify: defineVersionedJson({ name: "settings.gotify", version: 1, schema: gotify }),
  retention: defineVersionedJson({ name: "settings.retention", version: 1, schema: retention }),
  storage: defineVersionedJson({ name: "settings.storage", version: 1, schema: storage }),
  twilio: defineVersionedJson({ name: "settings.twilio", version: 1, schema: twilio }),
  relay: defineVersionedJson({ name: "settings.relay", version: 1, schema: relay }),
  setup: defineVersionedJson({ name: "settings.setup", version: 1, schema: setup }),
  messaging: defineVersionedJson({ name: "settings.messaging", version: 1, schema: messaging }),
};

/** Validates (and upgrades) a stored or submitted value for `key`; throws `JsonSchemaError`. */
export function parseSetting<K extends SettingKey>(key: K, value: unknown): SettingValue<K> {
  return settingSchemas[key].parse(value);
}

/** Value of a key that has no row yet (`twilio` has none: it must be configured). */
export function settingDefault<K extends Exclude<SettingKey, "twilio">>(key: K): SettingValue<K> {
  return settingSchemas[key].parse({ v: 1 });
}
