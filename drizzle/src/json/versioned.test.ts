// The versioning mechanism every JSON column relies on, and the current-version
// schemas of the smaller documents (device policy, DID targets/greeting, settings, events).
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { e164Schema, isValidTimeZone } from "./common.ts";
import { defaultOutboundPolicy, parseOutboundPolicy } from "./device.ts";
import { parseDidTargets, parseGreeting } from "./did.ts";
import { parseEventData, parseJobPayload } from "./operations.ts";
import { parseSetting, settingDefault, settingKeys } from "./settings.ts";
import { defineVersionedJson, JsonSchemaError } from "./versioned.ts";

describe("defineVersionedJson", () => {
  // A document that went through two schema changes: v1 {name}, v2 {first,last}, v3 adds {tags}.
  const v1 = z.object({ v: z.literal(1), name: z.string() });
  const v2 = z.object({ v: z.literal(2), first: z.string(), last: z.string() });
  const v3 = z.object({ v: z.literal(3), first: z.string(), last: z.string(), tags: z.array(z.string()) });
  const person = defineVersionedJson({
    name: "person",
    version: 3,
    schema: v3,
    upgrades: {
      1: (doc) => {
        const old = v1.parse(doc);
        const [first = "", ...rest] = old.name.split(" ");
        return { v: 2, first, last: rest.join(" ") };
      },
      2: (doc) => ({ ...v2.parse(doc), v: 3, tags: [] }),
    },
  });

  it("upgrades a v1 document step by step to the current version", () => {
    expect(person.parse({ v: 1, name: "Ada King Lovelace" })).toEqual({
      v: 3,
      first: "Ada",
      last: "King Lovelace",
      tags: [],
    });
    expect(person.parse({ v: 2, first: "Ada", last: "Lovelace" })).toEqual({
      v: 3,
      first: "Ada",
      last: "Lovelace",
      tags: [],
    });
  });

  it("passes a current document through unchanged", () => {
    const doc = { v: 3, first: "A", last: "B", tags: ["x"] };
    expect(person.parse(doc)).toEqual(doc);
  });

  it("reports an invalid old document at its own field", () => {
    const result = person.safeParse({ v: 1, name: 42 });
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.issues.map((i) => i.path.join("."))).toContain("name");
  });

  it("refuses documents from a newer version, without a version, or without an upgrade path", () => {
    expect(() => person.parse({ v: 4, first: "A", last: "B", tags: [] })).toThrow(
      /newer than supported version 3/,
    );
    expect(() => person.parse({ first: "A" })).toThrow(JsonSchemaError);
    expect(() => person.parse(null)).toThrow(/missing or invalid version/);
    const gap = defineVersionedJson({ name: "gap", version: 2, schema: v2 });
    expect(() => gap.parse({ v: 1, name: "x" })).toThrow(/no upgrade from version 1/);
    const wrong = defineVersionedJson({
      name: "wrong",
      version: 3,
      schema: v3,
      upgrades: { 1: () => ({ v: 3 }) },
    });
    expect(() => wrong.parse({ v: 1, name: "x" })).toThrow(/did not produce 2/);
  });
});

describe("small documents", () => {
  it("E.164 numbers", () => {
    for (const ok of ["+15551234567", "+447700900123", "+12"])
      expect(e164Schema.safeParse(ok).success).toBe(true);
    for (const bad of ["15551234567", "+0123", "+1555123456789012", "+1 555 123", ""]) {
      expect(e164Schema.safeParse(bad).success).toBe(false);
    }
  });

  it("time zones known to the runtime", () => {
    expect(isValidTimeZone("Europe/Berlin")).toBe(true);
    expect(isValidTimeZone("UTC")).toBe(true);
    expect(isValidTimeZone("Europe/Atlantis")).toBe(false);
  });

  it("outbound policy: defaults and prefix validation", () => {
    expect(parseOutboundPolicy({ v: 1 })).toEqual(defaultOutboundPolicy);
    expect(() => parseOutboundPolicy({ v: 1, allowedPrefixes: ["44"] })).toThrow(/allowedPrefixes\.0/);
  });

  it("DID targets and greeting", () => {
    expect(parseDidTargets({ v: 1, deviceIds: ["a", "b"] })).toEqual({ v: 1, deviceIds: ["a", "b"] });
    expect(() => parseDidTargets({ v: 1, deviceIds: ["a", "a"] })).toThrow(/must not repeat/);
    expect(parseGreeting({ v: 1, source: { kind: "tts", text: " Hi " } })).toEqual({
      v: 1,
      source: { kind: "tts", text: "Hi" },
    });
    expect(() => parseGreeting({ v: 1, source: { kind: "audio" } })).toThrow(/source\.blobKey/);
  });

  it("job payloads and event data must be plain JSON", () => {
    expect(parseJobPayload({ v: 1, to: "+15550001111", attempts: [1, 2] })).toEqual({
      v: 1,
      to: "+15550001111",
      attempts: [1, 2],
    });
    expect(() => parseJobPayload({ v: 1, when: new Date() })).toThrow(JsonSchemaError);
    expect(parseEventData({ v: 1, message: "relay connected" }).message).toBe("relay connected");
  });
});

describe("settings", () => {
  it("every key except twilio has a usable default", () => {
    for (const key of settingKeys) {
      if (key === "twilio") continue;
      expect(settingDefault(key).v).toBe(1);
    }
    expect(settingDefault("callScreening")).toEqual({
      v: 1,
      rejectAnonymous: false,
      spamFilter: true,
      spamThreshold: 0.7,
    });
    expect(settingDefault("installation").timeZone).toBe("UTC");
    expect(settingDefault("sip")).toEqual({ v: 1, realm: "gosip" });
  });

  it("validates values per key", () => {
    expect(() => parseSetting("callScreening", { v: 1, spamThreshold: 1.5 })).toThrow(/spamThreshold/);
    expect(() => parseSetting("email", { v: 1, provider: "smtp", from: "pbx@example.com" })).toThrow(/smtp/);
    expect(() => parseSetting("gotify", { v: 1, enabled: true })).toThrow(/url and appToken/);
    expect(() => parseSetting("installation", { v: 1, timeZone: "Nowhere/Land" })).toThrow(/timeZone/);
    expect(() => parseSetting("sip", { v: 1, realm: "bad realm" })).toThrow(/realm/);
    expect(
      parseSetting("twilio", { v: 1, accountSid: `AC${"0".repeat(32)}`, authToken: "t" }).accountSid,
    ).toHaveLength(34);
    expect(
      parseSetting("businessHours", { v: 1, windows: [{ days: ["mon"], start: "09:00", end: "17:00" }] })
        .windows,
    ).toHaveLength(1);
  });
});
