// The compiled blocklist: exact before the longest prefix before the first regex,
// the regex prefix index never changes which entry matches (checked against a
// plain first-match scan over thousands of random entries), and a stored regex
// that no longer validates throws when a caller reaches it (fail closed).
import { describe, expect, it } from "vitest";
import { compileBlockPattern } from "../blocklist/pattern.ts";
import { BlocklistError, compileBlocklist, literalRegexPrefix } from "./blocklist.ts";
import type { BlocklistEntry } from "./types.ts";

let counter = 0;
function entry(
  matchType: BlocklistEntry["matchType"],
  pattern: string,
  action: BlocklistEntry["action"] = "reject",
) {
  counter += 1;
  return { id: `b${counter}`, pattern, matchType, action } satisfies BlocklistEntry;
}

describe("compileBlocklist", () => {
  it("matches exact numbers, also when the caller is formatted", () => {
    const spam = entry("exact", "+15550001111");
    const m = compileBlocklist([spam]);
    expect(m.size).toBe(1);
    expect(m.match("+15550001111")).toBe(spam);
    expect(m.match("+1 (555) 000-1111")).toBe(spam);
    expect(m.match("+15550001112")).toBeNull();
    expect(m.match("")).toBeNull();
    expect(m.match("anonymous")).toBeNull();
  });

  it("takes the longest matching prefix", () => {
    const country = entry("prefix", "+1900", "reject");
    const longer = entry("prefix", "+1900555", "voicemail");
    const other = entry("prefix", "+44");
    const m = compileBlocklist([country, longer, other]);
    expect(m.match("+19005550100")).toBe(longer);
    expect(m.match("+19001230100")).toBe(country);
    expect(m.match("+442079460958")).toBe(other);
    expect(m.match("+1900")).toBe(country);
    expect(m.match("+190")).toBeNull();
  });

  it("prefers exact over prefix over regex, whatever the entry order", () => {
    const re = entry("regex", "^\\+1900\\d{7}$");
    const prefix = entry("prefix", "+1900");
    const exact = entry("exact", "+19005550100", "voicemail");
    const m = compileBlocklist([re, prefix, exact]);
    expect(m.match("+19005550100")).toBe(exact);
    expect(m.match("+19005550101")).toBe(prefix);
    expect(compileBlocklist([re]).match("+19005550101")).toBe(re);
  });

  it("answers the first matching regex in entry order, indexed or not", () => {
    const broad = entry("regex", "0000$"); // unanchored: tested for every caller
    const narrow = entry("regex", "^\\+1555\\d{3}0000$"); // indexed under +1555
    const m1 = compileBlocklist([broad, narrow]);
    const m2 = compileBlocklist([narrow, broad]);
    expect(m1.match("+15551230000")).toBe(broad);
    expect(m2.match("+15551230000")).toBe(narrow);
    expect(m2.match("+15561230000")).toBe(broad);
    expect(m2.match("+15561230001")).toBeNull();
  });

  it("does not run regexes on callers longer than a phone number", () => {
    const any = entry("regex", "^.{0,64}$");
    expect(compileBlocklist([any]).match("1".repeat(40))).toBeNull();
    expect(compileBlocklist([any]).match("+15550001111")).toBe(any);
  });

  it("throws for a stored regex that no longer validates, only when a caller reaches it", () => {
    const exact = entry("exact", "+15550001111");
    const broken = entry("regex", "(a+)+$");
    const m = compileBlocklist([exact, broken]);
    expect(m.match("+15550001111")).toBe(exact);
    expect(() => m.match("+15550002222")).toThrow(BlocklistError);
    expect(() => m.match("+15550002222")).toThrow(broken.id);
  });

  it("agrees with a plain first-match scan over 3,000 random entries", () => {
    // Deterministic pseudo-random numbers (xorshift), so a failure reproduces.
    let seed = 0x2545f491;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return Math.abs(seed) % n;
    };
    const digits = (n: number) => Array.from({ length: n }, () => String(rand(10))).join("");
    const entries: BlocklistEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      const kind = rand(3);
      if (kind === 0) entries.push(entry("exact", `+1555${digits(7)}`));
      else if (kind === 1) entries.push(entry("prefix", `+1555${digits(rand(5))}`));
      else {
        const shapes = [
          `^\\+1555${digits(3)}\\d{4}$`,
          `^\\+155${digits(1)}?${digits(2)}`,
          `${digits(3)}$`,
          `^\\+1(555|556)${digits(2)}`,
          `^\\+1+5${digits(2)}`,
        ];
        entries.push(entry("regex", shapes[rand(shapes.length)] ?? "^x$"));
      }
    }
    const exact = entries.filter((e) => e.matchType === "exact");
    const prefixes = entries
      .filter((e) => e.matchType === "prefix")
      .map((e, i) => ({ e, i }))
      .sort((a, b) => b.e.pattern.length - a.e.pattern.length || a.i - b.i)
      .map((x) => x.e);
    const compiled = (list: BlocklistEntry[]) =>
      list.map((e) => ({ e, test: compileBlockPattern(e.matchType, e.pattern) }));
    const ordered = [
      ...compiled(exact),
      ...compiled(prefixes),
      ...compiled(entries.filter((e) => e.matchType === "regex")),
    ];
    const scan = (caller: string): BlocklistEntry | null => ordered.find((c) => c.test(caller))?.e ?? null;

    const m = compileBlocklist(entries);
    let matched = 0;
    for (let i = 0; i < 2000; i++) {
      const caller = i % 4 === 0 ? (exact[rand(exact.length)]?.pattern ?? "") : `+155${digits(8)}`;
      const expected = scan(caller);
      if (expected) matched += 1;
      expect(m.match(caller), caller).toBe(expected);
    }
    expect(matched).toBeGreaterThan(500); // the comparison exercised matches, not just misses
  });
});

describe("literalRegexPrefix", () => {
  it.each([
    ["^\\+1900\\d{7}$", "+1900"],
    ["^\\+44", "+44"],
    ["^\\+1?555", "+"],
    ["^\\+15?55", "+1"],
    ["^\\+1+5", "+1"],
    ["^\\+1{1,2}5", "+"],
    ["^\\+1(555|556)", ""],
    ["^\\+1555|^\\+44", ""],
    ["\\+1555", ""],
    ["^[+]1555", ""],
    ["^\\d{3}", ""],
    ["^1555.*", "1555"],
  ])("%s → %j", (source, prefix) => {
    expect(literalRegexPrefix(source)).toBe(prefix);
  });
});
