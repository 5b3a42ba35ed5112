// SIP header collection: ordered, case-insensitive, compact forms mapped to long names (RFC 3261 §7.3.3).
// Values are kept as whole header-line strings; list splitting happens on demand (getAll/top), so the hot path
// (parse → look up a few headers) never splits or allocates more than it needs.

import { TOKEN } from "./chars.ts";

/** Compact form → canonical lower-case long name (RFC 3261 §7.3.3 and the IANA SIP header registry). */
const COMPACT: Record<string, string> = {
  a: "accept-contact",
  b: "referred-by",
  c: "content-type",
  d: "request-disposition",
  e: "content-encoding",
  f: "from",
  i: "call-id",
  j: "reject-contact",
  k: "supported",
  l: "content-length",
  m: "contact",
  n: "identity-info",
  o: "event",
  r: "refer-to",
  s: "subject",
  t: "to",
  u: "allow-events",
  v: "via",
  x: "session-expires",
  y: "identity",
};

/** Canonical spelling used when a header is added through the API with a well-known name. */
const DISPLAY: Record<string, string> = {
  via: "Via",
  from: "From",
  to: "To",
  "call-id": "Call-ID",
  cseq: "CSeq",
  contact: "Contact",
  "max-forwards": "Max-Forwards",
  "content-length": "Content-Length",
  "content-type": "Content-Type",
  "content-encoding": "Content-Encoding",
  "content-disposition": "Content-Disposition",
  route: "Route",
  "record-route": "Record-Route",
  expires: "Expires",
  "min-expires": "Min-Expires",
  "user-agent": "User-Agent",
  server: "Server",
  allow: "Allow",
  supported: "Supported",
  require: "Require",
  "proxy-require": "Proxy-Require",
  unsupported: "Unsupported",
  "www-authenticate": "WWW-Authenticate",
  authorization: "Authorization",
  "proxy-authenticate": "Proxy-Authenticate",
  "proxy-authorization": "Proxy-Authorization",
  "authentication-info": "Authentication-Info",
  event: "Event",
  "allow-events": "Allow-Events",
  "subscription-state": "Subscription-State",
  "refer-to": "Refer-To",
  "referred-by": "Referred-By",
  "session-expires": "Session-Expires",
  "min-se": "Min-SE",
  rseq: "RSeq",
  rack: "RAck",
  accept: "Accept",
  date: "Date",
  warning: "Warning",
  "retry-after": "Retry-After",
  reason: "Reason",
  path: "Path",
  "service-route": "Service-Route",
  "p-asserted-identity": "P-Asserted-Identity",
  "p-preferred-identity": "P-Preferred-Identity",
  privacy: "Privacy",
  subject: "Subject",
};

/**
 * Headers whose grammar is a comma-separated list (`#element` in RFC 3261 and extensions). Only these are split
 * by getAll(); everything else (Authorization, WWW-Authenticate, Date, From, unknown extension headers...) is one
 * value per line, because commas inside them are part of the value.
 */
const LIST_HEADERS = new Set([
  "via",
  "contact",
  "route",
  "record-route",
  "path",
  "service-route",
  "allow",
  "allow-events",
  "supported",
  "require",
  "proxy-require",
  "unsupported",
  "accept",
  "accept-encoding",
  "accept-language",
  "accept-contact",
  "reject-contact",
  "request-disposition",
  "content-encoding",
  "content-language",
  "alert-info",
  "call-info",
  "error-info",
  "in-reply-to",
  "warning",
  "reason",
  "p-asserted-identity",
  "p-preferred-identity",
  "p-associated-uri",
  "history-info",
  "security-client",
  "security-server",
  "security-verify",
  "privacy",
  "geolocation",
  "recv-info",
  "feature-caps",
]);

/** An invalid header name given through the SipHeaders API (a programming error, or untrusted input not checked). */
export class SipHeaderError extends TypeError {
  override readonly name = "SipHeaderError";
}

function isTokenName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** Names given through the API must be tokens: anything else could not be written as a header line. */
function checkedName(name: string): string {
  if (!isTokenName(name))
    throw new SipHeaderError(`invalid SIP header name ${JSON.stringify(name.slice(0, 40))}`);
  return name;
}

/** A header value cannot contain line breaks: CR/LF runs become one space (no header injection). */
function cleanValue(value: string): string {
  return value.indexOf("\r") === -1 && value.indexOf("\n") === -1 ? value : value.replace(/[\r\n]+/g, " ");
}

const keyCache = new Map<string, string>();
const KEY_CACHE_MAX = 4096;

/**
 * Exact-spelling fast path for the names nearly every message carries: comparing against a few literals is cheaper
 * than hashing a freshly sliced string for the Map lookup.
 */
function commonKey(name: string): string | undefined {
  switch (name.length) {
    case 1:
      return COMPACT[name] ?? COMPACT[name.toLowerCase()];
    case 2:
      return name === "To" ? "to" : undefined;
    case 3:
      return name === "Via" ? "via" : undefined;
    case 4:
      return name === "From" ? "from" : name === "CSeq" ? "cseq" : undefined;
    case 5:
      return name === "Allow" ? "allow" : name === "Route" ? "route" : undefined;
    case 7:
      return name === "Call-ID"
        ? "call-id"
        : name === "Contact"
          ? "contact"
          : name === "Expires"
            ? "expires"
            : undefined;
    case 9:
      return name === "Supported" ? "supported" : undefined;
    case 10:
      return name === "User-Agent" ? "user-agent" : undefined;
    case 12:
      return name === "Max-Forwards" ? "max-forwards" : name === "Content-Type" ? "content-type" : undefined;
    case 13:
      return name === "Authorization"
        ? "authorization"
        : name === "Record-Route"
          ? "record-route"
          : undefined;
    case 14:
      return name === "Content-Length" ? "content-length" : undefined;
    default:
      return undefined;
  }
}

/** Canonical lookup key of a header name: lower-case long form. Cached because the same names recur. */
export function headerKey(name: string): string {
  const common = commonKey(name);
  if (common !== undefined) return common;
  const cached = keyCache.get(name);
  if (cached !== undefined) return cached;
  const lower = name.toLowerCase();
  const key = lower.length === 1 ? (COMPACT[lower] ?? lower) : lower;
  // Bounded so that a flood of random header names cannot grow memory.
  if (keyCache.size < KEY_CACHE_MAX) keyCache.set(name, key);
  return key;
}

/** Whether getAll() splits this header on commas. */
export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(headerKey(name));
}

function displayName(name: string): string {
  return DISPLAY[headerKey(name)] ?? name;
}

/** Trim SP, HTAB, CR and LF only (not U+FEFF and friends, which String.trim would also remove). */
function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b) {
    const c = s.charCodeAt(a);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
    a++;
  }
  while (b > a) {
    const c = s.charCodeAt(b - 1);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
    b--;
  }
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Split a list header value on commas that are outside quoted strings, angle brackets and parentheses (comments).
 * Empty elements (",,") are dropped; elements are trimmed.
 */
export function splitList(value: string): string[] {
  if (value.indexOf(",") === -1) return [value];
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let angle = 0;
  let paren = 0;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60 /* < */) angle++;
    else if (c === 62 /* > */) {
      if (angle > 0) angle--;
    } else if (c === 40 /* ( */) paren++;
    else if (c === 41 /* ) */) {
      if (paren > 0) paren--;
    } else if (c === 44 /* , */ && angle === 0 && paren === 0) {
      const part = trimLws(value.slice(start, i));
      if (part.length > 0) out.push(part);
      start = i + 1;
    }
  }
  const last = trimLws(value.slice(start));
  if (last.length > 0) out.push(last);
  return out;
}

/**
 * Strict list split for validation: like splitList, but an empty element (leading, trailing or doubled comma,
 * or an empty value) makes the whole value invalid (RFC 3261 list grammars have no empty elements).
 */
export function splitListStrict(value: string): string[] | undefined {
  const parts = splitList(value);
  if (parts.length === 0) return undefined;
  let commas = 0;
  if (parts.length === 1 && value.indexOf(",") === -1) return parts;
  // Count top-level commas the same way splitList does: n elements need exactly n - 1 separators.
  let inQuote = false;
  let angle = 0;
  let paren = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60) angle++;
    else if (c === 62) {
      if (angle > 0) angle--;
    } else if (c === 40) paren++;
    else if (c === 41) {
      if (paren > 0) paren--;
    } else if (c === 44 && angle === 0 && paren === 0) commas++;
  }
  return commas === parts.length - 1 ? parts : undefined;
}

/** Ordered, case-insensitive SIP header collection. Header names keep the spelling they were received with. */
export class SipHeaders {
  /** Header names as received or given (output spelling). */
  private names: string[] = [];
  /** Canonical keys (lower-case long form), parallel to names. */
  private keys: string[] = [];
  private values: string[] = [];

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [n, v] of init) this.append(n, v);
  }

  /** Number of header lines. */
  get size(): number {
    return this.names.length;
  }

  /**
   * Parser fast path: add a line with an already computed key, keeping the received name spelling. No checks:
   * only for the parser, whose names are tokens and values free of CR/LF.
   */
  addParsed(name: string, key: string, value: string): void {
    this.names.push(name);
    this.keys.push(key);
    this.values.push(value);
  }

  /** First header line's whole value. */
  get(name: string): string | undefined {
    const key = headerKey(name);
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) return this.values[i];
    return undefined;
  }

  /** First element of the header: for list headers (Via, Contact, Route...) the first comma-separated value. */
  top(name: string): string | undefined {
    const key = headerKey(name);
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === key) {
        const v = this.values[i] ?? "";
        return LIST_HEADERS.has(key) ? splitList(v)[0] : v;
      }
    }
    return undefined;
  }

  /** Every value in order; list headers are split on top-level commas, other headers give one value per line. */
  getAll(name: string): string[] {
    const key = headerKey(name);
    const split = LIST_HEADERS.has(key);
    const out: string[] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== key) continue;
      const v = this.values[i] ?? "";
      if (split) for (const part of splitList(v)) out.push(part);
      else out.push(v);
    }
    return out;
  }

  /** Whole line values of this header, in order, never split. */
  lines(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) out.push(this.values[i] ?? "");
    return out;
  }

  /** Number of header lines with this name (not split). */
  count(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (const k of this.keys) if (k === key) n++;
    return n;
  }

  has(name: string): boolean {
    return this.keys.indexOf(headerKey(name)) !== -1;
  }

  /** Replace all lines of this header by one line (same name/value rules as append), at the position of the first existing one (else at the end). */
  set(name: string, value: string): void {
    const key = headerKey(checkedName(name));
    value = cleanValue(value);
    const first = this.keys.indexOf(key);
    if (first === -1) {
      this.addParsed(displayName(name), key, value);
      return;
    }
    this.values[first] = value;
    this.names[first] = displayName(name);
    for (let i = this.keys.length - 1; i > first; i--) if (this.keys[i] === key) this.removeAt(i);
  }

  /** Add a line at the end. Throws SipHeaderError if the name is not a token; CR/LF in the value become spaces. */
  append(name: string, value: string): void {
    this.addParsed(displayName(checkedName(name)), headerKey(name), cleanValue(value));
  }

  /** Insert before the first line of this header (e.g. a new top Via), or at the very top if there is none. */
  prepend(name: string, value: string): void {
    const key = headerKey(checkedName(name));
    let at = this.keys.indexOf(key);
    if (at === -1) at = 0;
    this.names.splice(at, 0, displayName(name));
    this.keys.splice(at, 0, key);
    this.values.splice(at, 0, cleanValue(value));
  }

  remove(name: string): void {
    const key = headerKey(name);
    for (let i = this.keys.length - 1; i >= 0; i--) if (this.keys[i] === key) this.removeAt(i);
  }

  /**
   * Remove and return the first element: for list headers only the first comma-separated value of the first
   * line (e.g. popping our Via from "Via: ours, theirs"), otherwise the first line.
   */
  removeFirst(name: string): string | undefined {
    const key = headerKey(name);
    const i = this.keys.indexOf(key);
    if (i === -1) return undefined;
    const v = this.values[i] ?? "";
    if (LIST_HEADERS.has(key) && v.indexOf(",") !== -1) {
      const parts = splitList(v);
      if (parts.length > 1) {
        this.values[i] = parts.slice(1).join(", ");
        return parts[0];
      }
    }
    this.removeAt(i);
    return v;
  }

  /** [name, value] per header line, in order, names as received/given. */
  *entries(): IterableIterator<[name: string, value: string]> {
    for (let i = 0; i < this.names.length; i++) yield [this.names[i] ?? "", this.values[i] ?? ""];
  }

  /**
   * Read-only views of the parallel name / canonical key / value arrays, for the serializer's hot loop (no
   * iterator or callback per line). Do not modify them.
   */
  lineArrays(): { names: readonly string[]; keys: readonly string[]; values: readonly string[] } {
    return { names: this.names, keys: this.keys, values: this.values };
  }

  /** Calls fn(name, key, value) per line, in order. */
  forEachLine(fn: (name: string, key: string, value: string) => void): void {
    const { names, keys, values } = this;
    for (let i = 0; i < names.length; i++) fn(names[i] ?? "", keys[i] ?? "", values[i] ?? "");
  }

  clone(): SipHeaders {
    const h = new SipHeaders();
    h.names = this.names.slice();
    h.keys = this.keys.slice();
    h.values = this.values.slice();
    return h;
  }

  private removeAt(i: number): void {
    this.names.splice(i, 1);
    this.keys.splice(i, 1);
    this.values.splice(i, 1);
  }
}
