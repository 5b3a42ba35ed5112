/**
 * Blocklist patterns: validation on write and matching against a caller.
 *
 * Exact and prefix patterns are phone numbers (normalized to E.164 form).
 * Regex patterns are untrusted input that runs on every inbound call, so they
 * are held to a small, phone-number-shaped subset of JavaScript regex syntax and
 * rejected when they could backtrack catastrophically: safe-regex2 (star height)
 * plus our own structural checks (nested quantifiers, overlapping alternatives
 * under repetition, empty-matching repeated groups, backreferences, lookarounds)
 * and an upper bound on how many ways the pattern can split a caller number.
 * (recheck, the more thorough checker, runs as a native binary or a worker
 * thread: neither exists on Workers. safe-regex2 is plain JS.)
 */
import { e164PrefixSchema, e164Schema, MAX_CALLER_REGEX_LENGTH } from "@gosip/drizzle";
import safeRegex from "safe-regex2";

export type BlockMatchType = "exact" | "prefix" | "regex";

/** Longest caller string a regex is run against; E.164 numbers have at most 16 characters. */
export const MAX_REGEX_INPUT_LENGTH = 32;

/** Largest count accepted in `{n}` / `{n,m}`; more than any phone number needs. */
export const MAX_REPEAT_COUNT = 64;

/**
 * Upper bound on the number of ways a valid pattern may split one input of
 * {@link MAX_REGEX_INPUT_LENGTH} characters. Each way costs at most one pass over
 * the input, so matching stays well under a millisecond.
 */
export const MAX_BACKTRACK_PATHS = 100_000;

export type PatternResult = { ok: true; pattern: string } | { ok: false; message: string };

/** Strips the formatting people paste with numbers ("+1 (555) 123-4567", "0044 20 …"). */
export function normalizePhoneNumber(input: string): string {
  const compact = input.trim().replace(/[\s().\-/]/g, "");
  return compact.startsWith("00") ? `+${compact.slice(2)}` : compact;
}

/**
 * Validates a pattern for its match type and returns the form to store:
 * E.164 for exact, an E.164 prefix for prefix, the regex source unchanged for regex.
 */
export function validateBlockPattern(matchType: BlockMatchType, input: string): PatternResult {
  switch (matchType) {
    case "exact": {
      const pattern = normalizePhoneNumber(input);
      return e164Schema.safeParse(pattern).success
        ? { ok: true, pattern }
        : { ok: false, message: "exact pattern must be an E.164 number like +15551234567" };
    }
    case "prefix": {
      const pattern = normalizePhoneNumber(input);
      return e164PrefixSchema.safeParse(pattern).success
        ? { ok: true, pattern }
        : { ok: false, message: "prefix pattern must be an E.164 prefix like +1900 or +44" };
    }
    case "regex": {
      const message = checkRegex(input);
      return message === undefined ? { ok: true, pattern: input } : { ok: false, message };
    }
  }
}

/** A compiled pattern: call it with the caller's number. */
export type CallerMatcher = (caller: string) => boolean;

/**
 * Compiles a stored (already validated) pattern into a matcher for the routing
 * evaluator. Throws when a regex no longer passes validation, so a corrupted row
 * surfaces as an error (the evaluator fails closed) instead of a slow match.
 * A regex is not run on callers longer than {@link MAX_REGEX_INPUT_LENGTH}:
 * such strings are not phone numbers and the evaluator rejects them earlier.
 */
export function compileBlockPattern(matchType: BlockMatchType, pattern: string): CallerMatcher {
  switch (matchType) {
    case "exact":
      return (caller) => normalizePhoneNumber(caller) === pattern;
    case "prefix":
      return (caller) => normalizePhoneNumber(caller).startsWith(pattern);
    case "regex": {
      const message = checkRegex(pattern);
      if (message !== undefined) throw new Error(`unsafe stored blocklist regex: ${message}`);
      const re = new RegExp(pattern);
      return (caller) => caller.length <= MAX_REGEX_INPUT_LENGTH && re.test(caller);
    }
  }
}

/** One-off convenience over {@link compileBlockPattern}. */
export function matchesBlockPattern(matchType: BlockMatchType, pattern: string, caller: string): boolean {
  return compileBlockPattern(matchType, pattern)(caller);
}

// --- regex checks --------------------------------------------------------------

/** Returns why a regex source is not acceptable, or undefined when it is. */
export function checkRegex(source: string): string | undefined {
  if (source.length === 0) return "regex must not be empty";
  if (source.length > MAX_CALLER_REGEX_LENGTH) {
    return `regex is too long (${source.length} characters, at most ${MAX_CALLER_REGEX_LENGTH})`;
  }
  let ast: Alternation;
  try {
    ast = new RegexParser(source).parse();
  } catch (err) {
    if (err instanceof RegexSyntaxError) return err.message;
    throw err;
  }
  try {
    new RegExp(source);
  } catch {
    return "regex does not compile";
  }
  const structural = checkStructure(ast);
  if (structural !== undefined) return `regex could backtrack catastrophically: ${structural}`;
  if (!safeRegex(source)) return "regex could backtrack catastrophically: nested or too many quantifiers";
  const paths = countPaths(ast);
  const anchored = startsAnchored(ast);
  const total = anchored ? paths : paths * (MAX_REGEX_INPUT_LENGTH + 1);
  if (total > MAX_BACKTRACK_PATHS) {
    return "regex could backtrack catastrophically: too many variable-length parts (e.g. several .* or \\d+ in a row); anchor it with ^ and use fixed counts like \\d{8}";
  }
  return undefined;
}

class RegexSyntaxError extends Error {
  override name = "RegexSyntaxError";
}

// Character sets are bitmaps over ASCII plus one bucket for every other character,
// which is all the precision the overlap checks need.
const OTHER = 128;
type CharSet = boolean[];

const emptySet = (): CharSet => new Array<boolean>(OTHER + 1).fill(false);
const fullSet = (): CharSet => new Array<boolean>(OTHER + 1).fill(true);
function rangeSet(from: number, to: number): CharSet {
  const s = emptySet();
  for (let c = from; c <= to; c++) s[c] = true;
  return s;
}
function unionInto(target: CharSet, other: CharSet): void {
  for (let i = 0; i <= OTHER; i++) if (other[i]) target[i] = true;
}
function negate(s: CharSet): CharSet {
  return s.map((b) => !b);
}
function overlaps(a: CharSet, b: CharSet): boolean {
  for (let i = 0; i <= OTHER; i++) if (a[i] && b[i]) return true;
  return false;
}
const digitSet = (): CharSet => rangeSet(48, 57);
function wordSet(): CharSet {
  const s = rangeSet(48, 57);
  unionInto(s, rangeSet(65, 90));
  unionInto(s, rangeSet(97, 122));
  s[95] = true;
  return s;
}
function spaceSet(): CharSet {
  const s = emptySet();
  for (const c of [9, 10, 11, 12, 13, 32]) s[c] = true;
  s[OTHER] = true; // Unicode spaces
  return s;
}
function charSetOf(ch: string): CharSet {
  const s = emptySet();
  const code = ch.charCodeAt(0);
  s[Math.min(code, OTHER)] = true;
  return s;
}

interface Quantifier {
  min: number;
  max: number; // Infinity for * + {n,}
}
type Node =
  | { kind: "chars"; set: CharSet; quantifier?: Quantifier }
  | { kind: "group"; body: Alternation; quantifier?: Quantifier }
  | { kind: "assert"; which: "^" | "$" };
type Sequence = Node[];
type Alternation = Sequence[];

const META = new Set(["\\", "^", "$", ".", "|", "?", "*", "+", "(", ")", "[", "]", "{", "}"]);

/** Recursive-descent parser for the accepted subset; anything else is a clear syntax error. */
class RegexParser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Alternation {
    const alt = this.alternation();
    if (this.pos < this.src.length) throw new RegexSyntaxError(`unbalanced ")" at position ${this.pos + 1}`);
    return alt;
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  private alternation(): Alternation {
    const alts: Alternation = [this.sequence()];
    while (this.peek() === "|") {
      this.pos++;
      alts.push(this.sequence());
    }
    return alts;
  }

  private sequence(): Sequence {
    const seq: Sequence = [];
    for (;;) {
      const ch = this.peek();
      if (ch === undefined || ch === "|" || ch === ")") return seq;
      if (ch === "^" || ch === "$") {
        this.pos++;
        seq.push({ kind: "assert", which: ch });
        if (this.isQuantifierStart()) throw new RegexSyntaxError(`"${ch}" cannot be repeated`);
        continue;
      }
      const atom = this.atom();
      const quantifier = this.quantifier();
      if (quantifier) atom.quantifier = quantifier;
      seq.push(atom);
    }
  }

  private isQuantifierStart(): boolean {
    const ch = this.peek();
    return ch === "*" || ch === "+" || ch === "?" || ch === "{";
  }

  private atom(): Exclude<Node, { kind: "assert" }> {
    const ch = this.peek();
    const at = this.pos + 1;
    if (ch === undefined) throw new RegexSyntaxError("regex ends unexpectedly");
    if (ch === "(") return this.group();
    if (ch === "[") return { kind: "chars", set: this.charClass() };
    if (ch === ".") {
      this.pos++;
      const set = fullSet();
      set[10] = false;
      set[13] = false;
      return { kind: "chars", set };
    }
    if (ch === "\\") return { kind: "chars", set: this.escape(false) };
    if (ch === "*" || ch === "+" || ch === "?" || ch === "{") {
      throw new RegexSyntaxError(`nothing to repeat before "${ch}" at position ${at}`);
    }
    if (ch === "]" || ch === "}")
      throw new RegexSyntaxError(`unescaped "${ch}" at position ${at}; write \\${ch}`);
    this.pos++;
    return { kind: "chars", set: charSetOf(ch) };
  }

  private group(): Extract<Node, { kind: "group" }> {
    const at = this.pos + 1;
    this.pos++; // (
    if (this.peek() === "?") {
      const next = this.peek(1);
      if (next === ":") {
        this.pos += 2;
      } else if (
        next === "=" ||
        next === "!" ||
        (next === "<" && (this.peek(2) === "=" || this.peek(2) === "!"))
      ) {
        throw new RegexSyntaxError("lookahead and lookbehind assertions are not allowed");
      } else if (next === "<") {
        throw new RegexSyntaxError("named groups are not allowed; use (...) or (?:...)");
      } else {
        throw new RegexSyntaxError(`unsupported group syntax at position ${at}`);
      }
    }
    const body = this.alternation();
    if (this.peek() !== ")") throw new RegexSyntaxError(`group opened at position ${at} is not closed`);
    this.pos++;
    return { kind: "group", body };
  }

  private quantifier(): Quantifier | undefined {
    const ch = this.peek();
    let q: Quantifier | undefined;
    if (ch === "*") q = { min: 0, max: Number.POSITIVE_INFINITY };
    else if (ch === "+") q = { min: 1, max: Number.POSITIVE_INFINITY };
    else if (ch === "?") q = { min: 0, max: 1 };
    if (q) {
      this.pos++;
    } else if (ch === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
      if (!m)
        throw new RegexSyntaxError(
          `malformed repetition at position ${this.pos + 1}; use {n}, {n,} or {n,m}`,
        );
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] ? Number(m[3]) : Number.POSITIVE_INFINITY;
      if (min > MAX_REPEAT_COUNT || (Number.isFinite(max) && max > MAX_REPEAT_COUNT)) {
        throw new RegexSyntaxError(`repetition counts must be at most ${MAX_REPEAT_COUNT}`);
      }
      if (max < min) throw new RegexSyntaxError(`repetition {${min},${max}} has its numbers out of order`);
      this.pos += m[0].length;
      q = { min, max };
    } else {
      return undefined;
    }
    if (this.peek() === "?") this.pos++; // lazy: same worst case as greedy
    if (this.isQuantifierStart()) throw new RegexSyntaxError(`nothing to repeat at position ${this.pos + 1}`);
    return q;
  }

  /** Escape outside or inside a character class. */
  private escape(inClass: boolean): CharSet {
    this.pos++; // backslash
    const ch = this.peek();
    if (ch === undefined) throw new RegexSyntaxError("regex ends with a lone backslash");
    this.pos++;
    switch (ch) {
      case "d":
        return digitSet();
      case "D":
        return negate(digitSet());
      case "w":
        return wordSet();
      case "W":
        return negate(wordSet());
      case "s":
        return spaceSet();
      case "S":
        return negate(spaceSet());
    }
    if (/[1-9]/.test(ch) || ch === "k") throw new RegexSyntaxError("backreferences are not allowed");
    if (META.has(ch) || ch === "/" || (inClass && ch === "-")) return charSetOf(ch);
    throw new RegexSyntaxError(`unsupported escape "\\${ch}"`);
  }

  private charClass(): CharSet {
    const at = this.pos + 1;
    this.pos++; // [
    let negated = false;
    if (this.peek() === "^") {
      negated = true;
      this.pos++;
    }
    const set = emptySet();
    let first = true;
    for (;;) {
      const ch = this.peek();
      if (ch === undefined)
        throw new RegexSyntaxError(`character class opened at position ${at} is not closed`);
      if (ch === "]" && !first) break;
      if (ch === "]") throw new RegexSyntaxError(`empty character class at position ${at}`);
      first = false;
      const startCode = ch === "\\" ? undefined : ch.charCodeAt(0);
      let item: CharSet;
      if (ch === "\\") {
        item = this.escape(true);
      } else {
        this.pos++;
        item = charSetOf(ch);
      }
      const isSingle = item.filter(Boolean).length === 1;
      if (this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== undefined) {
        this.pos++; // -
        const endCh = this.peek();
        if (endCh === "\\" || endCh === "[" || endCh === undefined) {
          throw new RegexSyntaxError(`unsupported range in character class at position ${at}`);
        }
        this.pos++;
        const from = startCode ?? (isSingle ? item.indexOf(true) : -1);
        const to = endCh.charCodeAt(0);
        if (from < 0 || from >= OTHER || to >= OTHER) {
          throw new RegexSyntaxError(`ranges in character classes must be between ASCII characters`);
        }
        if (to < from) throw new RegexSyntaxError(`range out of order in character class at position ${at}`);
        unionInto(set, rangeSet(from, to));
      } else {
        unionInto(set, item);
      }
    }
    this.pos++; // ]
    return negated ? negate(set) : set;
  }
}

function nullableSeq(seq: Sequence): boolean {
  return seq.every(nullableNode);
}
function nullableNode(node: Node): boolean {
  if (node.kind === "assert") return true;
  if (node.quantifier && node.quantifier.min === 0) return true;
  if (node.kind === "chars") return false;
  return node.body.some(nullableSeq);
}

/** Characters a sequence can start with (zero-width parts skipped). */
function firstSet(seq: Sequence): CharSet {
  const set = emptySet();
  for (const node of seq) {
    if (node.kind === "assert") continue;
    if (node.kind === "chars") unionInto(set, node.set);
    else for (const alt of node.body) unionInto(set, firstSet(alt));
    if (!nullableNode(node)) break;
  }
  return set;
}

function hasQuantifier(alt: Alternation): boolean {
  return alt.some((seq) =>
    seq.some(
      (n) =>
        n.kind !== "assert" && (n.quantifier !== undefined || (n.kind === "group" && hasQuantifier(n.body))),
    ),
  );
}

/** An alternation whose branches could both match at the same place, at any depth. */
function findAmbiguousAlternation(alt: Alternation): string | undefined {
  if (alt.length > 1) {
    if (alt.some(nullableSeq)) return "a repeated group has an alternative that can match nothing";
    const firsts = alt.map(firstSet);
    for (let i = 0; i < firsts.length; i++) {
      for (let j = i + 1; j < firsts.length; j++) {
        const a = firsts[i];
        const b = firsts[j];
        if (a && b && overlaps(a, b)) {
          return "alternatives inside a repeated group can match the same character, as in (a|a)*";
        }
      }
    }
  }
  for (const seq of alt) {
    for (const node of seq) {
      if (node.kind === "group") {
        const inner = findAmbiguousAlternation(node.body);
        if (inner) return inner;
      }
    }
  }
  return undefined;
}

/** The exponential shapes: nested repetition, ambiguous or empty-matching repeated groups. */
function checkStructure(alt: Alternation): string | undefined {
  for (const seq of alt) {
    for (const node of seq) {
      if (node.kind !== "group") continue;
      const q = node.quantifier;
      if (q && q.max > 1) {
        if (hasQuantifier(node.body)) return "nested quantifiers, as in (a+)+ or (.*a){20}";
        if (node.body.some(nullableSeq)) return "a repeated group can match nothing, as in (a?)*";
        const ambiguous = findAmbiguousAlternation(node.body);
        if (ambiguous) return ambiguous;
      }
      const inner = checkStructure(node.body);
      if (inner) return inner;
    }
  }
  return undefined;
}

function choices(q: Quantifier | undefined): number {
  if (!q) return 1;
  const max = Math.min(q.max, MAX_REGEX_INPUT_LENGTH);
  return Math.max(1, max - Math.min(q.min, max) + 1);
}

/**
 * Upper bound on the ways a pattern (without nested repetition) can split an
 * input: a sequence multiplies its parts, an alternation adds its branches, a
 * quantifier offers one choice per possible count.
 */
function countPaths(alt: Alternation): number {
  let sum = 0;
  for (const seq of alt) {
    let product = 1;
    for (const node of seq) {
      if (node.kind === "assert") continue;
      if (node.kind === "chars") product *= choices(node.quantifier);
      else if (node.quantifier && node.quantifier.max > 1) product *= choices(node.quantifier);
      else product *= countPaths(node.body) + (node.quantifier ? 1 : 0);
      if (product > MAX_BACKTRACK_PATHS * 100) return product;
    }
    sum += product;
  }
  return sum;
}

/** True when every branch starts with ^, so the engine tries one start position only. */
function startsAnchored(alt: Alternation): boolean {
  return alt.every((seq) => {
    const first = seq[0];
    if (!first) return false;
    if (first.kind === "assert") return first.which === "^";
    return first.kind === "group" && !first.quantifier && startsAnchored(first.body);
  });
}
