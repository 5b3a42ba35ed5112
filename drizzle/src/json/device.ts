// JSON documents stored on devices: the outbound call policy (toll-fraud guard).
import { z } from "zod";
import { e164PrefixSchema } from "./common.ts";
import { defineVersionedJson } from "./versioned.ts";

/**
 * What a device may dial out to the PSTN. A dialled E.164 number is allowed when
 * outbound calls are enabled, it starts with one of `allowedPrefixes`, with none of
 * `blockedPrefixes`, and (when `blockPremiumRate`) is not a known premium-rate range.
 * Emergency numbers (911, 112, 999) are always allowed, whatever the policy says.
 */
export const outboundPolicySchema = z.object({
  v: z.literal(1),
  allowOutbound: z.boolean().default(true),
  allowedPrefixes: z.array(e164PrefixSchema).max(200).default(["+1"]),
  blockedPrefixes: z.array(e164PrefixSchema).max(200).default([]),
  blockPremiumRate: z.boolean().default(true),
});
export type OutboundPolicy = z.infer<typeof outboundPolicySchema>;

export const outboundPolicyJson = defineVersionedJson({
  name: "outboundPolicy",
  version: 1,
  schema: outboundPolicySchema,
});
export const parseOutboundPolicy = outboundPolicyJson.parse;

/** Policy of a new device: domestic (NANP) calls only, premium-rate blocked. */
export const defaultOutboundPolicy: OutboundPolicy = {
  v: 1,
  allowOutbound: true,
  allowedPrefixes: ["+1"],
  blockedPrefixes: [],
  blockPremiumRate: true,
};
