/**
 * The blocklist as the routing evaluator runs it (SPEC §2 step 1): compiled once
 * per snapshot into lookups that stay fast with 10,000 entries. Exact numbers
 * are one Map lookup; prefixes are one Map lookup per distinct prefix length
 * (longest first, at most 16 for E.164); regexes are compiled once and, when
 * they start with `^` and a literal number prefix, indexed by that prefix so a
 * caller only runs the regexes that could match it.
 *
 * Order of precedence: an exact entry, then the longest matching prefix, then
 * the first matching regex in entry order. Patterns were validated on write
 * (blocklist/pattern.ts); a stored regex that no longer validates is not
 * skipped: matching a caller that reaches it throws, so the call fails closed.
 */
import { type CallerMatcher, compileBlockPattern, normalizePhoneNumber } from "../blocklist/pattern.ts";
import type { BlocklistEntry, BlocklistMatcher } from "./types.ts";

/** A stored regex entry that cannot be run; raised when a caller reaches it. */
export class BlocklistError extends Error {
  override name = "BlocklistError";
  constructor(
    readonly entryId: string,
    message: string,
  ) {
    super(message);
  }
}

interface RegexEntry {
  /** Position in the entry list: the first matching regex (lowest index) wins. */
  index: number;
  entry: BlocklistEntry;
  test: CallerMatcher;
}

/**
 * Compiled regexes by source. Compiling means validating the pattern again
 * (parser, backtracking bounds), which costs tens of µs; the voice webhook
 * compiles the blocklist for every call, so the result is reused. The key is
 * the pattern itself, so there is nothing to invalidate; the bound only keeps
 * memory in check.
 */
const compiledRegexes = new Map<string, CallerMatcher | Error>();
const MAX_COMPILED_REGEXES = 20_000;

/**
 * A stored caller regex (blocklist entry or caller-ID rule condition) as a
 * matcher, compiled once per pattern; throws when the pattern no longer passes
 * validation, so the caller fails closed.
 */
export function callerRegex(pattern: string): CallerMatcher {
  const compiled = compiledRegex(pattern);
  if (compiled instanceof Error) throw compiled;
  return compiled;
}

function compiledRegex(pattern: string): CallerMatcher | Error {
  const cached = compiledRegexes.get(pattern);
  if (cached) return cached;
  let compiled: CallerMatcher | Error;
  try {
    compiled = compileBlockPattern("regex", pattern);
  } catch (err) {
    compiled = err instanceof Error ? err : new Error(String(err));
  }
  if (compiledRegexes.size >= MAX_COMPILED_REGEXES) compiledRegexes.clear();
  compiledRegexes.set(pattern, compiled);
  return compiled;
}

/**
 * The literal number a regex requires at the start of the caller, or "" when it
 * has none that can be used: `^\+1900\d{7}$` → "+1900". Conservative: any
 * alternation (`|`) anywhere means no prefix, and a quantified last character
 * is left out (`^\+1?` → "+").
 */
export function literalRegexPrefix(source: string): string {
  if (!source.startsWith("^") || source.includes("|")) return "";
  let prefix = "";
  let i = 1;
  while (i < source.length) {
    const ch = source[i];
    let literal: string | undefined;
    let width = 1;
    if (ch === "\\" && source[i + 1] === "+") {
      literal = "+";
      width = 2;
    } else if (ch !== undefined && ch >= "0" && ch <= "9") {
      literal = ch;
    }
    if (literal === undefined) break;
    const next = source[i + width];
    if (next === "?" || next === "*" || next === "{") break; // this character may be absent
    prefix += literal;
    i += width;
    if (next === "+") break; // repeated: the next characters may be this one again
  }
  return prefix;
}

/** Map keys of a prefix index, longest first, so a lookup tries each length once. */
function lengthsOf(map: ReadonlyMap<string, unknown>): number[] {
  return [...new Set([...map.keys()].map((k) => k.length))].sort((a, b) => b - a);
}

/** Compiles the blocklist for one snapshot; never throws (a broken regex throws when reached). */
export function compileBlocklist(entries: readonly BlocklistEntry[]): BlocklistMatcher {
  const exact = new Map<string, BlocklistEntry>();
  const prefixes = new Map<string, BlocklistEntry>();
  const regexByPrefix = new Map<string, RegexEntry[]>();
  const unindexedRegexes: RegexEntry[] = [];

  entries.forEach((entry, index) => {
    if (entry.matchType === "exact") {
      const key = normalizePhoneNumber(entry.pattern);
      if (!exact.has(key)) exact.set(key, entry);
    } else if (entry.matchType === "prefix") {
      const key = normalizePhoneNumber(entry.pattern);
      if (!prefixes.has(key)) prefixes.set(key, entry);
    } else {
      const compiled = compiledRegex(entry.pattern);
      const test: CallerMatcher =
        compiled instanceof Error
          ? () => {
              throw new BlocklistError(entry.id, `blocklist entry ${entry.id}: ${compiled.message}`);
            }
          : compiled;
      const item: RegexEntry = { index, entry, test };
      const literal = compiled instanceof Error ? "" : literalRegexPrefix(entry.pattern);
      if (literal) {
        const bucket = regexByPrefix.get(literal);
        if (bucket) bucket.push(item);
        else regexByPrefix.set(literal, [item]);
      } else {
        unindexedRegexes.push(item);
      }
    }
  });

  const prefixLengths = lengthsOf(prefixes);
  const regexPrefixLengths = lengthsOf(regexByPrefix);

  function regexCandidates(caller: string): readonly RegexEntry[] {
    let found: RegexEntry[] | undefined;
    for (const length of regexPrefixLengths) {
      if (length > caller.length) continue;
      const bucket = regexByPrefix.get(caller.slice(0, length));
      if (!bucket) continue;
      found = found ? found.concat(bucket) : bucket.slice();
    }
    if (!found) return unindexedRegexes;
    // Several sources: restore entry order so "first matching regex" means the same as without the index.
    return found.concat(unindexedRegexes).sort((a, b) => a.index - b.index);
  }

  return {
    size: entries.length,
    match(number: string): BlocklistEntry | null {
      const normalized = normalizePhoneNumber(number);
      const hit = exact.get(normalized);
      if (hit) return hit;
      for (const length of prefixLengths) {
        if (length > normalized.length) continue;
        const entry = prefixes.get(normalized.slice(0, length));
        if (entry) return entry;
      }
      for (const candidate of regexCandidates(number)) {
        if (candidate.test(number)) return candidate.entry;
      }
      return null;
    },
  };
}
