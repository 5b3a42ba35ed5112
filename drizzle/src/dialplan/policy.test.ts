// The shared outbound policy check, as both the relay's dial plan and the edge's sip-outbound webhook apply it.
import { describe, expect, it } from "vitest";
import { defaultOutboundPolicy, type OutboundPolicy } from "../json/device.ts";
import { EMERGENCY_NUMBERS, isPremiumRate, toE164 } from "./numbers.ts";
import { policyRefusal } from "./policy.ts";

const policy = (over: Partial<OutboundPolicy>): OutboundPolicy => ({ ...defaultOutboundPolicy, ...over });

describe("policyRefusal", () => {
  it("the default policy allows North American numbers and refuses premium rate and abroad", () => {
    expect(policyRefusal("+15551234567", defaultOutboundPolicy)).toBeUndefined();
    expect(policyRefusal("+19005551234", defaultOutboundPolicy)).toBe("premium-rate numbers are blocked");
    expect(policyRefusal("+442079460000", defaultOutboundPolicy)).toBe(
      "destination is not in the allowed prefixes",
    );
  });

  it("disabled outbound, blocked prefixes, and premium rate allowed when the admin says so", () => {
    expect(policyRefusal("+15551234567", policy({ allowOutbound: false }))).toBe(
      "outbound calls are disabled for this device",
    );
    expect(policyRefusal("+15551234567", policy({ blockedPrefixes: ["+1555"] }))).toBe(
      "destination is blocked",
    );
    expect(policyRefusal("+19005551234", policy({ blockPremiumRate: false }))).toBeUndefined();
  });

  it("emergency numbers are not E.164 and are let through by the callers before any policy", () => {
    for (const n of ["911", "112", "999"]) expect(EMERGENCY_NUMBERS.has(n)).toBe(true);
    expect(toE164("911", "US").ok).toBe(false);
    expect(isPremiumRate("+15551234567")).toBe(false);
  });
});
