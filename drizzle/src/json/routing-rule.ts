// The routing rule document (SPEC §2 step 5): one schema shared by the API, the UI
// and the evaluator. A rule matches when all its conditions match; its action then
// decides what happens to the call. Checks that need the database (targets exist)
// are the edge's job; everything checkable from the document alone is checked here.
import { z } from "zod";
import {
  audioSourceSchema,
  e164PrefixSchema,
  e164Schema,
  timeWindowSchema,
  timeZoneSchema,
} from "./common.ts";
import { defineVersionedJson } from "./versioned.ts";

/** Longest accepted caller-ID regex; long patterns are where catastrophic backtracking hides. */
export const MAX_CALLER_REGEX_LENGTH = 200;

export const RING_TIMEOUT_MIN_SECONDS = 5;
export const RING_TIMEOUT_MAX_SECONDS = 300;
export const RING_TIMEOUT_DEFAULT_SECONDS = 30;

const ringTimeoutSchema = z
  .int()
  .min(RING_TIMEOUT_MIN_SECONDS, `timeout must be at least ${RING_TIMEOUT_MIN_SECONDS} s`)
  .max(RING_TIMEOUT_MAX_SECONDS, `timeout must be at most ${RING_TIMEOUT_MAX_SECONDS} s`)
  .default(RING_TIMEOUT_DEFAULT_SECONDS);

const idListSchema = z
  .array(z.string().min(1).max(64))
  .min(1)
  .max(100)
  .refine((ids) => new Set(ids).size === ids.length, "ids must not repeat");

/** A regex source that compiles (matched against the caller's E.164 number). */
export const callerRegexSchema = z
  .string()
  .min(1)
  .max(MAX_CALLER_REGEX_LENGTH)
  .refine((source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  }, "regex does not compile");

// --- conditions ---------------------------------------------------------------

/**
 * Time of the call in `timeZone` (the installation's zone when absent).
 * Matches when the call falls in any window (no windows = all day) and the
 * holiday constraint holds: "ignore" (holidays are ordinary days), "exclude"
 * (never on a holiday), "only" (only on a holiday).
 */
export const timeConditionSchema = z.object({
  type: z.literal("time"),
  timeZone: timeZoneSchema.optional(),
  windows: z.array(timeWindowSchema).max(50).default([]),
  holidays: z.enum(["ignore", "exclude", "only"]).default("ignore"),
});

/** How the caller's number is compared. */
export const callerMatchSchema = z.discriminatedUnion("by", [
  z.object({ by: z.literal("exact"), numbers: z.array(e164Schema).min(1).max(1000) }),
  z.object({ by: z.literal("prefix"), prefixes: z.array(e164PrefixSchema).min(1).max(1000) }),
  z.object({ by: z.literal("regex"), pattern: callerRegexSchema }),
  /** Caller is one of these contacts, or any saved contact when `contactIds` is absent. */
  z.object({ by: z.literal("contacts"), contactIds: idListSchema.optional() }),
]);

export const callerIdConditionSchema = z.object({
  type: z.literal("callerId"),
  match: callerMatchSchema,
  /** Invert the match, e.g. "caller is NOT in my contacts". */
  negate: z.boolean().default(false),
});

/** Always matches: a catch-all rule, normally with the lowest priority. */
export const defaultConditionSchema = z.object({ type: z.literal("default") });

export const ruleConditionSchema = z.discriminatedUnion("type", [
  timeConditionSchema,
  callerIdConditionSchema,
  defaultConditionSchema,
]);
export type RuleCondition = z.infer<typeof ruleConditionSchema>;

// --- actions ------------------------------------------------------------------

/**
 * Ring devices (a ring group). Simultaneous: all ring for `timeoutSeconds`.
 * Sequential: each rings for `timeoutSeconds` in list order. Then `onNoAnswer`.
 */
export const ringActionSchema = z.object({
  type: z.literal("ring"),
  deviceIds: idListSchema,
  strategy: z.enum(["simultaneous", "sequential"]).default("simultaneous"),
  timeoutSeconds: ringTimeoutSchema,
  onNoAnswer: z.enum(["voicemail", "hangup"]).default("voicemail"),
});

/** Forward to an external number; the original caller ID is kept by default. */
export const forwardActionSchema = z.object({
  type: z.literal("forward"),
  to: e164Schema,
  callerId: z.enum(["original", "did"]).default("original"),
  timeoutSeconds: ringTimeoutSchema,
  onNoAnswer: z.enum(["voicemail", "hangup"]).default("voicemail"),
});

export const voicemailActionSchema = z.object({ type: z.literal("voicemail") });

/** Play a message, then hang up. */
export const playMessageActionSchema = z.object({
  type: z.literal("playMessage"),
  message: audioSourceSchema,
});

/** Reject: "busy" signals busy; "disconnected" plays a number-not-in-service message. */
export const rejectActionSchema = z.object({
  type: z.literal("reject"),
  reason: z.enum(["busy", "disconnected"]).default("busy"),
});

export const ruleActionSchema = z.discriminatedUnion("type", [
  ringActionSchema,
  forwardActionSchema,
  voicemailActionSchema,
  playMessageActionSchema,
  rejectActionSchema,
]);
export type RuleAction = z.infer<typeof ruleActionSchema>;

// --- the rule -----------------------------------------------------------------

export const routingRuleSchema = z
  .object({
    v: z.literal(1),
    /** All must match. `[{ type: "default" }]` for a catch-all. */
    conditions: z.array(ruleConditionSchema).min(1, "add at least one condition (or `default`)").max(20),
    action: ruleActionSchema,
    /** Record calls routed by this rule (SPEC §4 "always-on per rule"). */
    record: z.boolean().default(false),
  })
  .superRefine((rule, ctx) => {
    if (rule.conditions.some((c) => c.type === "default") && rule.conditions.length > 1) {
      ctx.addIssue({ code: "custom", path: ["conditions"], message: "`default` must be the only condition" });
    }
  });

export type RoutingRule = z.infer<typeof routingRuleSchema>;
/** What a client may submit (defaults not yet applied). */
export type RoutingRuleInput = z.input<typeof routingRuleSchema>;

export const routingRuleJson = defineVersionedJson({
  name: "routingRule",
  version: 1,
  schema: routingRuleSchema,
});

/** Validates a rule document (upgrading older versions); throws `JsonSchemaError`. */
export const parseRoutingRule = routingRuleJson.parse;
