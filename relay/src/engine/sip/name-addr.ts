// name-addr / addr-spec header values (From, To, Contact, Route, Record-Route, Refer-To...), RFC 3261 §20.10:
// `"Display \"Name\"" <uri;uri-params>;header-params` or `uri;header-params` (then the params belong to the header).

import { TOKEN } from "./chars.ts";
import type { NameAddr, Params } from "./message.ts";

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/**
 * Parse generic header parameters `;a=b;c;d="x;y"` starting at s[i] (which must be ';' or the end, with optional
 * whitespace). Names are lower-cased; values kept as written (quoted strings keep their quotes).
 * Returns false on syntax errors. With `params` null it only validates (no allocation).
 */
export function parseHeaderParams(s: string, i: number, params: Params | null): boolean {
  // Local alias: an imported binding is re-checked on every access in the hot loops below.
  const tok = TOKEN;
  const n = s.length;
  for (;;) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n) return true;
    if (s.charCodeAt(i) !== 59 /* ; */) return false;
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const nameStart = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c > 127 || tok[c] !== 1) break;
      i++;
    }
    if (i === nameStart) return false;
    const nameEnd = i;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) === 61 /* = */) {
      i++;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      const valStart = i;
      if (i < n && s.charCodeAt(i) === 34 /* " */) {
        i++;
        for (;;) {
          if (i >= n) return false;
          const c = s.charCodeAt(i);
          if (c === 92) i += 2;
          else if (c === 34) {
            i++;
            break;
          } else i++;
        }
      } else if (i < n && s.charCodeAt(i) === 91 /* [ */) {
        // IPv6 reference as a value (received=[::1]).
        const close = s.indexOf("]", i);
        if (close === -1) return false;
        i = close + 1;
      } else {
        while (i < n) {
          const c = s.charCodeAt(i);
          if (c > 127 || (tok[c] !== 1 && c !== 58) /* : */) break;
          i++;
        }
      }
      if (i === valStart) return false;
      if (params !== null) params.set(s.slice(nameStart, nameEnd).toLowerCase(), s.slice(valStart, i));
    } else if (params !== null) params.set(s.slice(nameStart, nameEnd).toLowerCase(), null);
  }
}

/** Unquote a quoted-string body (between the quotes), resolving backslash escapes. */
function unquote(s: string): string {
  if (s.indexOf("\\") === -1) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && i + 1 < s.length) {
      out += s[i + 1];
      i++;
    } else out += c;
  }
  return out;
}

/** Parse a name-addr or addr-spec value. "*" (Contact: *) and malformed values give undefined. */
export function parseNameAddr(value: string): NameAddr | undefined {
  const out: NameAddr = { uri: "", params: new Map() };
  return scanNameAddr(value, out) ? out : undefined;
}

/** Syntax check only, without building the result (used by the parser on every message). */
export function isValidNameAddr(value: string): boolean {
  return scanNameAddr(value, null);
}

/** Scan a name-addr/addr-spec; fills `out` when given. */
function scanNameAddr(s: string, out: NameAddr | null): boolean {
  const n = s.length;
  let i = 0;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i >= n) return false;
  const c0 = s.charCodeAt(i);
  if (c0 === 34 /* " */) {
    const start = i + 1;
    i++;
    for (;;) {
      if (i >= n) return false;
      const c = s.charCodeAt(i);
      if (c === 92) i += 2;
      else if (c === 34) break;
      else i++;
    }
    if (out !== null) out.displayName = unquote(s.slice(start, i));
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n || s.charCodeAt(i) !== 60 /* < */) return false;
  } else if (c0 !== 60) {
    // Either "token token <uri>" or a bare addr-spec. A display name never contains ':' (not a token character),
    // so a leading "scheme:" means addr-spec, even when a quoted parameter later contains '<'
    // (sip:a@b;+sip.instance="<urn:uuid:...>").
    const lt = startsWithScheme(s, i) ? -1 : s.indexOf("<", i);
    if (lt !== -1) {
      // Unquoted display name: tokens separated by whitespace only.
      let end = lt;
      while (end > i && isWs(s.charCodeAt(end - 1))) end--;
      for (let k = i; k < end; k++) {
        const c = s.charCodeAt(k);
        if (!isWs(c) && (c > 127 || TOKEN[c] !== 1)) return false;
      }
      if (out !== null && end > i) out.displayName = s.slice(i, end).replace(/\s+/g, " ");
      i = lt;
    } else {
      // addr-spec: URI runs to the first ';' or whitespace; params belong to the header.
      const start = i;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (c === 59 || isWs(c)) break;
        // §20.10: a URI with ',', '?' or ';' must be in name-addr form; '>' or '"' means broken syntax.
        if (c === 62 || c === 34 || c === 44 || c === 63) return false;
        i++;
      }
      if (!hasScheme(s, start, i)) return false;
      if (out !== null) out.uri = s.slice(start, i);
      return parseHeaderParams(s, i, out === null ? null : out.params);
    }
  }
  // s[i] === '<'. No whitespace inside the brackets (RFC 4475 badaspec): "< sip:a@b >" is rejected.
  const gt = s.indexOf(">", i + 1);
  if (gt === -1) return false;
  for (let k = i + 1; k < gt; k++) {
    const c = s.charCodeAt(k);
    if (c === 60 || isWs(c)) return false;
  }
  if (!hasScheme(s, i + 1, gt)) return false;
  if (out !== null) out.uri = s.slice(i + 1, gt);
  return parseHeaderParams(s, gt + 1, out === null ? null : out.params);
}

/** s[from...] starts with `scheme ":"` (scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")). */
function startsWithScheme(s: string, from: number): boolean {
  return hasScheme(s, from, s.length);
}

/** s[from, to) starts with an URI scheme followed by ':' (ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")). */
function hasScheme(s: string, from: number, to: number): boolean {
  const c0 = s.charCodeAt(from);
  if (from >= to || !((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122))) return false;
  for (let k = from + 1; k < to; k++) {
    const c = s.charCodeAt(k);
    if (c === 58) return true;
    const ok =
      (c >= 65 && c <= 90) ||
      (c >= 97 && c <= 122) ||
      (c >= 48 && c <= 57) ||
      c === 43 ||
      c === 45 ||
      c === 46;
    if (!ok) return false;
  }
  return false;
}

function quoteDisplay(name: string): string {
  let out = '"';
  for (const ch of name) out += ch === '"' || ch === "\\" ? `\\${ch}` : ch;
  return `${out}"`;
}

/** Format params as `;a=b;c`. */
export function formatParams(params: Params): string {
  let s = "";
  for (const [k, v] of params) s += v === null ? `;${k}` : `;${k}=${v}`;
  return s;
}

/** Format as name-addr (always with angle brackets, so URI params and header params stay apart). */
export function formatNameAddr(na: NameAddr): string {
  const dn =
    na.displayName !== undefined && na.displayName.length > 0 ? `${quoteDisplay(na.displayName)} ` : "";
  return `${dn}<${na.uri}>${formatParams(na.params)}`;
}
