// The outbound call policy of a device (toll-fraud guard), applied to an E.164 destination. One copy for the
// relay's dial plan (before the call leaves the phone) and the edge's sip-outbound webhook (defence in depth,
// after Twilio's SIP Domain received it). Emergency numbers never reach this check: callers let them through.
import type { OutboundPolicy } from "../json/device.ts";
import { isPremiumRate } from "./numbers.ts";

/** Why `policy` refuses this E.164 number, or undefined when it is allowed. */
export function policyRefusal(e164: string, policy: OutboundPolicy): string | undefined {
  if (!policy.allowOutbound) return "outbound calls are disabled for this device";
  if (policy.blockedPrefixes.some((prefix) => e164.startsWith(prefix))) return "destination is blocked";
  if (policy.blockPremiumRate && isPremiumRate(e164)) return "premium-rate numbers are blocked";
  if (!policy.allowedPrefixes.some((prefix) => e164.startsWith(prefix)))
    return "destination is not in the allowed prefixes";
  return undefined;
}
