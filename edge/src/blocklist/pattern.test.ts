// Blocklist pattern validation and matching: evil regexes are refused with a
// reason, ordinary phone-number patterns pass and match what they should.
import { describe, expect, it } from "vitest";
import {
  checkRegex,
  compileBlockPattern,
  MAX_REGEX_INPUT_LENGTH,
  matchesBlockPattern,
  normalizePhoneNumber,
  validateBlockPattern,
} from "./pattern.ts";

describe("exact and prefix patterns", () => {
  it("normalizes formatted numbers to E.164", () => {
    expect(validateBlockPattern("exact", " +1 (555) 123-4567 ")).toEqual({
      ok: true,
      pattern: "+15551234567",
    });
    expect(validateBlockPattern("exact", "0044 20 7946 0958")).toEqual({
      ok: true,
      pattern: "+442079460958",
    });
    expect(validateBlockPattern("prefix", "+1 900")).toEqual({ ok: true, pattern: "+1900" });
    expect(normalizePhoneNumber("+1.555.123.4567")).toBe("+15551234567");
  });

  it("rejects what is not a number", () => {
    for (const bad of ["", "5551234567", "+0123", "+1555abc", "+1234567890123456", "anonymous"]) {
      const r = validateBlockPattern("exact", bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.message).toContain("E.164");
    }
    expect(validateBlockPattern("prefix", "1900").ok).toBe(false);
    expect(validateBlockPattern("prefix", "+").ok).toBe(false);
  });

  it("matches exact and prefix against an E.164 caller", () => {
    expect(matchesBlockPattern("exact", "+15551234567", "+15551234567")).toBe(true);
    expect(matchesBlockPattern("exact", "+15551234567", "+155512345678")).toBe(false);
    expect(matchesBlockPattern("prefix", "+1900", "+19005550100")).toBe(true);
    expect(matchesBlockPattern("prefix", "+1900", "+18005550100")).toBe(false);
  });
});

describe("regex patterns", () => {
  const evil = [
    "(a+)+",
    "(a|a)*",
    "(.*a){20}",
    "(\\d+)*$",
    "^(\\d+)+$",
    "(\\d|\\d\\d)+",
    "(a|ab)*c",
    "(a?){20}a{20}",
    "(\\d*)*",
    "([0-9]+)+x",
    "(?:\\+|\\d)+(?:1|\\d)+",
    "\\d*\\d*\\d*\\d*x",
    ".*.*.*.*=",
  ];
  it.each(evil)("rejects %s as catastrophic backtracking", (source) => {
    const message = checkRegex(source);
    expect(message).toMatch(/backtrack catastrophically/);
  });

  const refused: [string, RegExp][] = [
    ["(a)\\1", /backreferences/],
    ["(?<n>1)\\k<n>", /named groups|backreferences/],
    ["^(?=\\+1)\\d+", /lookahead/],
    ["(?<!1)2", /lookahead and lookbehind/],
    ["(?!1)2", /lookahead/],
    ["[", /not closed/],
    ["(1", /not closed/],
    ["1)", /unbalanced/],
    ["*1", /nothing to repeat/],
    ["\\", /lone backslash/],
    ["\\u0041", /unsupported escape/],
    ["1{2,1}", /out of order/],
    ["1{1000}", /at most/],
    ["", /empty/],
    ["1".repeat(201), /too long/],
  ];
  it.each(refused)("refuses %s with a clear reason", (source, reason) => {
    expect(checkRegex(source)).toMatch(reason);
    expect(validateBlockPattern("regex", source).ok).toBe(false);
  });

  const normal: [string, string[], string[]][] = [
    ["^\\+1800", ["+18005550100"], ["+18885550100", "+441800000000"]],
    ["^\\+44(20|21)\\d{8}$", ["+442079460958", "+442112345678"], ["+44207946095", "+442279460958"]],
    ["^\\+1(900|976)", ["+19005550100", "+19765550100"], ["+18005550100"]],
    ["555", ["+15551234567"], ["+14441234567"]],
    ["^\\+1[2-9]\\d{2}555\\d{4}$", ["+12125550100"], ["+11125550100"]],
    ["^\\+(?:86|91)\\d+$", ["+8613800000000", "+919876543210"], ["+4413800000000"]],
    [".*0000$", ["+15550000"], ["+15550001"]],
    ["^\\+1\\d{3}(\\d\\d\\d)?\\d{4}$", ["+15551234", "+15551234567"], ["+155512345"]],
  ];
  it.each(normal)("accepts %s and matches like RegExp", (source, yes, no) => {
    expect(validateBlockPattern("regex", source)).toEqual({ ok: true, pattern: source });
    const match = compileBlockPattern("regex", source);
    for (const caller of yes) expect(match(caller), caller).toBe(true);
    for (const caller of no) expect(match(caller), caller).toBe(false);
  });

  it("does not run a regex on an input longer than any phone number", () => {
    const match = compileBlockPattern("regex", "1");
    expect(match("+1".padEnd(MAX_REGEX_INPUT_LENGTH, "0"))).toBe(true);
    expect(match("+1".padEnd(MAX_REGEX_INPUT_LENGTH + 1, "0"))).toBe(false);
  });

  it("refuses to compile a stored regex that is unsafe", () => {
    expect(() => compileBlockPattern("regex", "(a+)+")).toThrow(/unsafe/);
  });

  it("every accepted random pattern matches adversarial callers quickly", () => {
    // Random patterns over a phone-number alphabet: whatever the validator lets
    // through must stay fast on the inputs that hurt backtracking engines most.
    const pieces = ["\\d", "1", "\\+", ".", "[0-9]", "(", ")", "|", "*", "+", "?", "{2,5}", "^", "$", "(?:"];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const inputs = [
      `+${"1".repeat(MAX_REGEX_INPUT_LENGTH - 2)}x`,
      "1".repeat(MAX_REGEX_INPUT_LENGTH),
      `+${"12".repeat(15)}!`,
    ];
    let accepted = 0;
    let worstMs = 0;
    for (let i = 0; i < 3000; i++) {
      const len = 3 + rand(14);
      let source = "";
      for (let j = 0; j < len; j++) source += pieces[rand(pieces.length)];
      if (checkRegex(source) !== undefined) continue;
      accepted++;
      const match = compileBlockPattern("regex", source);
      const started = performance.now();
      for (const input of inputs) match(input);
      worstMs = Math.max(worstMs, performance.now() - started);
    }
    expect(accepted).toBeGreaterThan(50);
    expect(worstMs).toBeLessThan(50);
  });
});
