// name-addr / addr-spec header values (From, To, Contact, Route, Record-Route, Refer-To...), RFC 3261 §20.10:
// `"Display \"Name\"" <uri;uri-params>;header-params` or `uri;header-params` (then the params belong to the header).

import { TOKEN } from "./chars.ts";
import type { NameAddr, Params } from "./message.ts";
import { uriScheme } from "./uri.ts";

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/**
 * Parse generic header parameters `;a=b;c;d="x;y"` starting at s[i] (which must be ';' or the end, with optional
 * whitespace). Names are lower-cased; values kept as written (quoted strings keep their quotes).
 * Returns false on syntax errors.
 */
export function parseHeaderParams(s: string, i: number, params: Params): boolean {
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
      if (c > 127 || TOKEN[c] !== 1) break;
      i++;
    }
    if (i === nameStart) return false;
    const name = s.slice(nameStart, i).toLowerCase();
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
          if (c > 127 || (TOKEN[c] !== 1 && c !== 58) /* : */) break;
          i++;
        }
      }
      if (i === valStart) return false;
      params.set(name, s.slice(valStart, i));
    } else params.set(name, null);
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
  const s = value;
  const n = s.length;
  let i = 0;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i >= n) return undefined;
  let displayName: string | undefined;
  const c0 = s.charCodeAt(i);
  if (c0 === 34 /* " */) {
    const start = i + 1;
    i++;
    for (;;) {
      if (i >= n) return undefined;
      const c = s.charCodeAt(i);
      if (c === 92) i += 2;
      else if (c === 34) break;
      else i++;
    }
    displayName = unquote(s.slice(start, i));
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n || s.charCodeAt(i) !== 60 /* < */) return undefined;
  } else if (c0 !== 60) {
    // Either "token token <uri>" or a bare addr-spec: look for '<'.
    const lt = s.indexOf("<", i);
    if (lt !== -1) {
      // Unquoted display name: tokens separated by whitespace only.
      let end = lt;
      while (end > i && isWs(s.charCodeAt(end - 1))) end--;
      for (let k = i; k < end; k++) {
        const c = s.charCodeAt(k);
        if (!isWs(c) && (c > 127 ? false : TOKEN[c] !== 1)) return undefined;
      }
      if (end > i) displayName = s.slice(i, end).replace(/\s+/g, " ");
      i = lt;
    } else {
      // addr-spec: URI runs to the first ';' or whitespace; params belong to the header.
      const start = i;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (c === 59 || isWs(c)) break;
        if (c === 62 || c === 34) return undefined;
        i++;
      }
      const uri = s.slice(start, i);
      if (uriScheme(uri) === undefined) return undefined;
      const params: Params = new Map();
      if (!parseHeaderParams(s, i, params)) return undefined;
      return { uri, params };
    }
  }
  // s[i] === '<'
  const gt = s.indexOf(">", i + 1);
  if (gt === -1) return undefined;
  const uri = s.slice(i + 1, gt).trim();
  if (uri.indexOf("<") !== -1 || uriScheme(uri) === undefined) return undefined;
  for (let k = 0; k < uri.length; k++) if (isWs(uri.charCodeAt(k))) return undefined;
  const params: Params = new Map();
  if (!parseHeaderParams(s, gt + 1, params)) return undefined;
  const out: NameAddr = { uri, params };
  if (displayName !== undefined) out.displayName = displayName;
  return out;
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
