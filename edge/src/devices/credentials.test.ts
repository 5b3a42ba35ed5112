// Pure credential helpers: generated SIP passwords and extension allocation.
import { describe, expect, it } from "vitest";
import {
  EMERGENCY_NUMBERS,
  extensionSchema,
  generateSipPassword,
  nextFreeExtension,
  SIP_PASSWORD_ALPHABET,
  SIP_PASSWORD_LENGTH,
} from "./credentials.ts";

describe("generateSipPassword", () => {
  it("is long, from the unambiguous alphabet, and different every time", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const pw = generateSipPassword();
      expect(pw).toHaveLength(SIP_PASSWORD_LENGTH);
      expect(pw.length).toBeGreaterThanOrEqual(20);
      expect(pw).toMatch(/^[^0O1lI]+$/);
      for (const ch of pw) expect(SIP_PASSWORD_ALPHABET).toContain(ch);
      seen.add(pw);
    }
    expect(seen.size).toBe(200);
  });

  it("uses the whole alphabet roughly evenly (no modulo bias)", () => {
    const counts = new Map<string, number>();
    const total = 2000 * SIP_PASSWORD_LENGTH;
    for (let i = 0; i < 2000; i++)
      for (const ch of generateSipPassword()) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(SIP_PASSWORD_ALPHABET.length);
    const expected = total / SIP_PASSWORD_ALPHABET.length;
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.2);
  });
});

describe("extensions", () => {
  it("picks the lowest free number from 101, skipping emergency numbers", () => {
    expect(nextFreeExtension([])).toBe("101");
    expect(nextFreeExtension(["101", "102", "104"])).toBe("103");
    const upTo110 = Array.from({ length: 9 }, (_, i) => String(101 + i));
    expect(nextFreeExtension(upTo110)).toBe("111"); // 110 is an emergency number
    const upTo111 = Array.from({ length: 11 }, (_, i) => String(101 + i));
    expect(nextFreeExtension(upTo111)).toBe("113"); // 112 too
  });

  it("accepts 2–6 digits, never an emergency number", () => {
    for (const ok of ["10", "101", "123456"]) expect(extensionSchema.safeParse(ok).success, ok).toBe(true);
    for (const bad of ["1", "1234567", "10a", "", ...EMERGENCY_NUMBERS]) {
      expect(extensionSchema.safeParse(bad).success, bad).toBe(false);
    }
  });
});
