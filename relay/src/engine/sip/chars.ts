// Character classes of the RFC 3261 grammar as lookup tables, so the parser scans with charCodeAt and table
// lookups instead of compiling or running regular expressions per header.

function table(chars: string, alnum: boolean): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) {
    for (let c = 48; c <= 57; c++) t[c] = 1;
    for (let c = 65; c <= 90; c++) t[c] = 1;
    for (let c = 97; c <= 122; c++) t[c] = 1;
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", true);
/** Characters allowed unescaped in the user part of a SIP URI (unreserved / user-unreserved). */
export const USER = table("-_.!~*'()&=+$,;?/", true);
/** Characters allowed unescaped in a password. */
export const PASSWORD = table("-_.!~*'()&=+$,", true);
/** paramchar: param-unreserved / unreserved. */
export const PARAM = table("[]/:&+$-_.!~*'()", true);
/** hname / hvalue characters: hnv-unreserved / unreserved. */
export const HNV = table("[]/?:+$-_.!~*'()", true);
/** Host name and IPv4 characters (hostname labels, dots; underscore tolerated as many devices use it). */
export const HOST = table("-._", true);
/** URI scheme characters after the first letter. */
export const SCHEME = table("+-.", true);
/** Characters of a telephone-subscriber (RFC 3966, loosely: visual separators, digits, hex, *, #). */
export const TEL = table("-.()+*#%", true);

/** True if every character of s[from, to) is in the table (non-ASCII never is). */
export function allIn(t: Uint8Array, s: string, from = 0, to = s.length): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || t[c] !== 1) return false;
  }
  return true;
}

/** Token check (non-empty). */
export function isToken(s: string): boolean {
  return allIn(TOKEN, s);
}

/** Decimal digits only, non-empty. */
export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * Validate s against a character table where "%HH" escapes are also allowed; returns false on bad escapes or
 * characters outside the table.
 */
export function validEscaped(t: Uint8Array, s: string, from = 0, to = s.length): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */) {
      if (i + 2 >= to) return false;
      if (hexVal(s.charCodeAt(i + 1)) < 0 || hexVal(s.charCodeAt(i + 2)) < 0) return false;
      i += 2;
    } else if (c > 127 || t[c] !== 1) return false;
  }
  return true;
}

/** Decode %HH escapes (UTF-8 when valid, byte-per-char otherwise). Strings without '%' are returned as is. */
export function pctDecode(s: string): string {
  if (s.indexOf("%") === -1) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 && i + 2 < s.length) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) {
        bytes.push(h * 16 + l);
        i += 2;
        continue;
      }
    }
    if (c < 128) bytes.push(c);
    else for (const b of Buffer.from(s[i] ?? "", "utf8")) bytes.push(b);
  }
  const buf = Buffer.from(bytes);
  const text = buf.toString("utf8");
  // Invalid UTF-8 (e.g. "%FF") would turn into U+FFFD; keep the bytes visible one per char instead.
  return text.indexOf("\uFFFD") === -1 ? text : buf.toString("latin1");
}

const HEX = "0123456789ABCDEF";

/** Percent-encode every character of s not in the table (UTF-8 bytes for non-ASCII). */
export function pctEncode(t: Uint8Array, s: string): string {
  let ok = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || t[c] !== 1) {
      ok = false;
      break;
    }
  }
  if (ok) return s;
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    if (b < 128 && t[b] === 1) out += String.fromCharCode(b);
    else out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}
