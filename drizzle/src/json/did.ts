// JSON documents stored on DIDs: default ring targets and the voicemail greeting.
import { z } from "zod";
import { audioSourceSchema } from "./common.ts";
import { defineVersionedJson } from "./versioned.ts";

/** Devices rung when no routing rule matches (SPEC §2 step 6), then voicemail. */
export const didTargetsSchema = z.object({
  v: z.literal(1),
  deviceIds: z
    .array(z.string().min(1).max(64))
    .max(100)
    .refine((ids) => new Set(ids).size === ids.length, "device ids must not repeat"),
});
export type DidTargets = z.infer<typeof didTargetsSchema>;
export const didTargetsJson = defineVersionedJson({
  name: "didTargets",
  version: 1,
  schema: didTargetsSchema,
});
export const parseDidTargets = didTargetsJson.parse;

/** The voicemail greeting of a DID: text-to-speech or an uploaded recording. */
export const greetingSchema = z.object({
  v: z.literal(1),
  source: audioSourceSchema,
});
export type Greeting = z.infer<typeof greetingSchema>;
export const greetingJson = defineVersionedJson({ name: "greeting", version: 1, schema: greetingSchema });
export const parseGreeting = greetingJson.parse;
