// SIP/SIPS/tel URI parsing and formatting (RFC 3261 §19.1, §25.1; RFC 3966 loosely). Total functions: bad input
// gives undefined, never an exception.

import {
  allIn,
  HNV,
  HOST,
  isDigits,
  PARAM,
  PASSWORD,
  pctDecode,
  pctEncode,
  SCHEME,
  TEL,
  USER,
  validEscaped,
} from "./chars.ts";
import type { Params, SipUri } from "./message.ts";

/** Scheme of an absolute URI ("sip", "tel", "soap.beep"...), lower-cased, or undefined if there is none. */
export function uriScheme(uri: string): string | undefined {
  const colon = uri.indexOf(":");
  if (colon < 1) return undefined;
  const c0 = uri.charCodeAt(0);
  if (!((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122))) return undefined;
  if (colon > 1 && !allIn(SCHEME, uri, 1, colon)) return undefined;
  return uri.slice(0, colon).toLowerCase();
}

/**
 * Parse "host[:port]" where host may be an IPv6 reference in brackets. Returns undefined on bad syntax.
 * Host is lower-cased.
 */
export function parseHostPort(s: string): { host: string; port?: number } | undefined {
  let host: string;
  let rest: string;
  if (s.charCodeAt(0) === 91 /* [ */) {
    const close = s.indexOf("]");
    if (close < 3) return undefined;
    host = s.slice(0, close + 1);
    for (let i = 1; i < close; i++) {
      const c = s.charCodeAt(i);
      const ok = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
      if (!ok) return undefined;
    }
    rest = s.slice(close + 1);
  } else {
    const colon = s.indexOf(":");
    host = colon === -1 ? s : s.slice(0, colon);
    rest = colon === -1 ? "" : s.slice(colon);
    if (!allIn(HOST, host)) return undefined;
  }
  host = host.toLowerCase();
  if (rest.length === 0) return { host };
  if (rest.charCodeAt(0) !== 58 /* : */) return undefined;
  const p = rest.slice(1);
  if (!isDigits(p) || p.length > 5) return undefined;
  const port = Number(p);
  if (port > 65535) return undefined;
  return { host, port };
}

function parseUriParams(s: string, params: Params): boolean {
  // s starts after the first ';'
  let start = 0;
  while (start <= s.length) {
    let end = s.indexOf(";", start);
    if (end === -1) end = s.length;
    const eq = s.indexOf("=", start);
    if (eq !== -1 && eq < end) {
      if (!validEscaped(PARAM, s, start, eq) || !validEscaped(PARAM, s, eq + 1, end)) return false;
      params.set(pctDecode(s.slice(start, eq)).toLowerCase(), pctDecode(s.slice(eq + 1, end)));
    } else {
      if (!validEscaped(PARAM, s, start, end)) return false;
      params.set(pctDecode(s.slice(start, end)).toLowerCase(), null);
    }
    start = end + 1;
  }
  return true;
}

function parseUriHeaders(s: string, headers: Map<string, string>): boolean {
  let start = 0;
  while (start <= s.length) {
    let end = s.indexOf("&", start);
    if (end === -1) end = s.length;
    const eq = s.indexOf("=", start);
    if (eq === -1 || eq >= end) return false;
    if (!validEscaped(HNV, s, start, eq)) return false;
    if (eq + 1 < end && !validEscaped(HNV, s, eq + 1, end)) return false;
    headers.set(pctDecode(s.slice(start, eq)), pctDecode(s.slice(eq + 1, end)));
    start = end + 1;
  }
  return true;
}

/** Parse a sip:, sips: or tel: URI. Other schemes, or bad syntax, give undefined. */
export function parseUri(uri: string): SipUri | undefined {
  const scheme = uriScheme(uri);
  if (scheme === undefined) return undefined;
  const params: Params = new Map();
  const headers = new Map<string, string>();
  if (scheme === "tel") {
    const semi = uri.indexOf(";", 4);
    const number = semi === -1 ? uri.slice(4) : uri.slice(4, semi);
    if (!allIn(TEL, number)) return undefined;
    if (semi !== -1 && !parseUriParams(uri.slice(semi + 1), params)) return undefined;
    return { scheme, user: number, host: "", params, headers };
  }
  if (scheme !== "sip" && scheme !== "sips") return undefined;
  let rest = uri.slice(scheme.length + 1);
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    const colon = rest.indexOf(":");
    const userEnd = colon !== -1 && colon < at ? colon : at;
    if (!validEscaped(USER, rest, 0, userEnd)) return undefined;
    user = pctDecode(rest.slice(0, userEnd));
    if (userEnd < at) {
      // An empty password (user:@host) is syntactically allowed.
      if (userEnd + 1 < at && !validEscaped(PASSWORD, rest, userEnd + 1, at)) return undefined;
      password = pctDecode(rest.slice(userEnd + 1, at));
    }
    rest = rest.slice(at + 1);
  }
  const q = rest.indexOf("?");
  const semi = rest.indexOf(";");
  const hpEnd = semi !== -1 && (q === -1 || semi < q) ? semi : q !== -1 ? q : rest.length;
  const hp = parseHostPort(rest.slice(0, hpEnd));
  if (hp === undefined) return undefined;
  if (semi !== -1 && semi === hpEnd) {
    const pEnd = q !== -1 && q > semi ? q : rest.length;
    if (!parseUriParams(rest.slice(semi + 1, pEnd), params)) return undefined;
  }
  if (q !== -1 && !parseUriHeaders(rest.slice(q + 1), headers)) return undefined;
  const out: SipUri = { scheme, host: hp.host, params, headers };
  if (user !== undefined) out.user = user;
  if (password !== undefined) out.password = password;
  if (hp.port !== undefined) out.port = hp.port;
  return out;
}

/** Format a URI; values are escaped where the grammar requires. */
export function formatUri(u: SipUri): string {
  let s = `${u.scheme}:`;
  if (u.scheme === "tel") s += u.user ?? "";
  else {
    if (u.user !== undefined) {
      s += pctEncode(USER, u.user);
      if (u.password !== undefined) s += `:${pctEncode(PASSWORD, u.password)}`;
      s += "@";
    }
    s += u.host;
    if (u.port !== undefined) s += `:${u.port}`;
  }
  for (const [k, v] of u.params)
    s += v === null ? `;${pctEncode(PARAM, k)}` : `;${pctEncode(PARAM, k)}=${pctEncode(PARAM, v)}`;
  let first = true;
  for (const [k, v] of u.headers) {
    s += `${first ? "?" : "&"}${pctEncode(HNV, k)}=${pctEncode(HNV, v)}`;
    first = false;
  }
  return s;
}
