// The API-facing schemas derived from the tables: they accept what the table can
// store, refuse what it cannot, and never expose secrets.
import { describe, expect, expectTypeOf, it } from "vitest";
import type { z } from "zod";
import type { OutboundPolicy } from "./json/device.ts";
import type { Greeting } from "./json/did.ts";
import type { RoutingRule } from "./json/routing-rule.ts";
import {
  insertAutoReplySchema,
  insertBlocklistSchema,
  insertDeviceSchema,
  insertDidSchema,
  insertNotificationPreferenceSchema,
  insertRoutingRuleSchema,
  insertUserSchema,
  publicDeviceSchema,
  publicRelayTokenSchema,
  publicUserSchema,
  type selectDidSchema,
  selectRoutingRuleSchema,
  updateDeviceSchema,
} from "./zod.ts";

const device = {
  userId: "u1",
  name: "Desk phone",
  extension: "101",
  sipUsername: "desk101",
  ha1Md5: "0".repeat(32),
  ha1Sha256: "0".repeat(64),
};

describe("derived schemas", () => {
  it("users: email is trimmed and lowercased as the table requires; bad emails are refused", () => {
    const parsed = insertUserSchema.parse({ email: "  Ann@Example.COM ", name: "Ann", passwordHash: "h" });
    expect(parsed.email).toBe("ann@example.com");
    expect(
      insertUserSchema.safeParse({ email: "not-an-email", name: "Ann", passwordHash: "h" }).success,
    ).toBe(false);
    expect(
      insertUserSchema.safeParse({ email: "a@b.co", name: "Ann", passwordHash: "h", role: "root" }).success,
    ).toBe(false);
  });

  it("public schemas drop password hashes, HA1 and token hashes", () => {
    expect(Object.keys(publicUserSchema.shape)).not.toContain("passwordHash");
    expect(Object.keys(publicDeviceSchema.shape)).not.toContain("ha1Md5");
    expect(Object.keys(publicDeviceSchema.shape)).not.toContain("ha1Sha256");
    expect(Object.keys(publicRelayTokenSchema.shape)).not.toContain("tokenHash");
    const shown = publicDeviceSchema.parse({
      ...device,
      id: "d1",
      enabled: true,
      recordAlways: false,
      outboundPolicy: {
        v: 1,
        allowOutbound: true,
        allowedPrefixes: ["+1"],
        blockedPrefixes: [],
        blockPremiumRate: true,
      },
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    expect(shown).not.toHaveProperty("ha1Md5");
  });

  it("devices: extension digits, SIP username characters, and the outbound policy document", () => {
    expect(insertDeviceSchema.safeParse(device).success).toBe(true);
    expect(insertDeviceSchema.safeParse({ ...device, extension: "1x" }).success).toBe(false);
    expect(insertDeviceSchema.safeParse({ ...device, sipUsername: "desk 101" }).success).toBe(false);
    const policy = updateDeviceSchema.safeParse({ outboundPolicy: { v: 1, allowedPrefixes: ["1900"] } });
    expect(policy.success).toBe(false);
    const ok = updateDeviceSchema.parse({ outboundPolicy: { v: 1 } });
    expect(ok.outboundPolicy?.blockPremiumRate).toBe(true);
  });

  it("DIDs must be E.164 with valid targets", () => {
    expect(insertDidSchema.safeParse({ e164: "+15551234567" }).success).toBe(true);
    expect(insertDidSchema.safeParse({ e164: "5551234567" }).success).toBe(false);
    expect(
      insertDidSchema.safeParse({ e164: "+15551234567", defaultTargets: { v: 1, deviceIds: "d1" } }).success,
    ).toBe(false);
  });

  it("routing rules are validated by the rule schema on write and typed on read", () => {
    const rule = {
      v: 1,
      conditions: [{ type: "default" }],
      action: { type: "ring", deviceIds: ["d1"], timeoutSeconds: 3 },
    };
    const refused = insertRoutingRuleSchema.safeParse({ name: "Too short", rule });
    expect(refused.success).toBe(false);
    if (!refused.success) expect(refused.error.issues[0]?.path).toEqual(["rule", "action", "timeoutSeconds"]);
    const accepted = insertRoutingRuleSchema.parse({
      name: "OK",
      rule: { ...rule, action: { type: "voicemail" } },
    });
    expect(accepted.rule.record).toBe(false);
    expect(Object.keys(selectRoutingRuleSchema.shape)).toContain("rule");
  });

  it("blocklist patterns are checked against their match type", () => {
    expect(insertBlocklistSchema.safeParse({ pattern: "+15550001111", matchType: "exact" }).success).toBe(
      true,
    );
    expect(insertBlocklistSchema.safeParse({ pattern: "+1900", matchType: "prefix" }).success).toBe(true);
    expect(insertBlocklistSchema.safeParse({ pattern: "^\\+1(900|976)", matchType: "regex" }).success).toBe(
      true,
    );
    expect(insertBlocklistSchema.safeParse({ pattern: "+1900", matchType: "exact" }).success).toBe(true);
    expect(insertBlocklistSchema.safeParse({ pattern: "1900", matchType: "prefix" }).success).toBe(false);
    expect(insertBlocklistSchema.safeParse({ pattern: "(+1", matchType: "regex" }).success).toBe(false);
    expect(
      insertBlocklistSchema.safeParse({ pattern: "x", matchType: "exact", action: "explode" }).success,
    ).toBe(false);
  });

  it("keyword auto-replies need a keyword; quiet hours come in pairs", () => {
    expect(insertAutoReplySchema.safeParse({ didId: "d", trigger: "keyword", text: "Hi" }).success).toBe(
      false,
    );
    expect(
      insertAutoReplySchema.safeParse({ didId: "d", trigger: "keyword", keyword: "HOURS", text: "9-5" })
        .success,
    ).toBe(true);
    expect(insertAutoReplySchema.safeParse({ didId: "d", trigger: "always", text: "" }).success).toBe(false);
    const pref = { userId: "u", eventType: "voicemail" };
    expect(insertNotificationPreferenceSchema.safeParse({ ...pref, quietHoursStart: "22:00" }).success).toBe(
      false,
    );
    expect(
      insertNotificationPreferenceSchema.safeParse({
        ...pref,
        quietHoursStart: "22:00",
        quietHoursEnd: "07:00",
      }).success,
    ).toBe(true);
    expect(
      insertNotificationPreferenceSchema.safeParse({
        ...pref,
        quietHoursStart: "22:00",
        quietHoursEnd: "7:00",
      }).success,
    ).toBe(false);
  });

  it("types of JSON columns are the document types (checked by tsc)", () => {
    expectTypeOf<z.infer<typeof selectRoutingRuleSchema>["rule"]>().toEqualTypeOf<RoutingRule>();
    expectTypeOf<z.infer<typeof insertRoutingRuleSchema>["rule"]>().toEqualTypeOf<RoutingRule>();
    expectTypeOf<z.infer<typeof selectDidSchema>["greeting"]>().toEqualTypeOf<Greeting | null>();
    expectTypeOf<z.infer<typeof insertDeviceSchema>["outboundPolicy"]>().toEqualTypeOf<
      OutboundPolicy | undefined
    >();
    expect(selectRoutingRuleSchema.shape.rule).toBeDefined();
  });
});
