// SIP message parser (RFC 3261 §7, §25): start line, headers (compact forms, folding, odd whitespace),
// Content-Length framing for datagrams, size limits. Never throws: every problem is a { ok: false } result, and a
// request with a usable Via (even without From, To, Call-ID or CSeq) comes back as `respondable` so the stack can
// answer 400.

import { isDigits, TOKEN } from "./chars.ts";
import { headerKey, SipHeaders, splitListStrict } from "./headers.ts";
import type { ParseLimits, ParseResult, SipRequest, SipResponse } from "./message.ts";
import { isValidNameAddr } from "./name-addr.ts";
import { parseCSeq } from "./response.ts";
import { parseUri, uriScheme } from "./uri.ts";
import { parseVia } from "./via.ts";

export const DEFAULT_LIMITS: Readonly<ParseLimits> = Object.freeze({
  maxMessageSize: 65536,
  maxHeaders: 256,
  maxLineLength: 16384,
});

const CRLFCRLF = Buffer.from("\r\n\r\n");
const LFLF = Buffer.from("\n\n");

function isToken(s: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/**
 * s[from, to) without leading/trailing SP and HTAB. Only those two: String.prototype.trim would also eat U+FEFF,
 * U+00A0 and other characters that are part of a UTF-8 header value.
 */
export function sliceTrim(s: string, from: number, to: number): string {
  while (from < to) {
    const c = s.charCodeAt(from);
    if (c !== 32 && c !== 9) break;
    from++;
  }
  while (to > from) {
    const c = s.charCodeAt(to - 1);
    if (c !== 32 && c !== 9) break;
    to--;
  }
  return s.slice(from, to);
}

/** Every element of every line of a list header is valid (no empty elements either). */
function allValid(headers: SipHeaders, name: string, valid: (element: string) => boolean): boolean {
  for (const line of headers.lines(name)) {
    const parts = splitListStrict(line);
    if (parts === undefined) return false;
    for (const p of parts) if (!valid(p)) return false;
  }
  return true;
}

function isValidVia(v: string): boolean {
  return parseVia(v) !== undefined;
}

function isValidContact(v: string): boolean {
  return v === "*" || isValidNameAddr(v);
}

/** route-param / rec-route = name-addr: the URI must be in angle brackets. */
function isValidRoute(v: string): boolean {
  return v.indexOf("<") !== -1 && isValidNameAddr(v);
}

/**
 * Call-ID: non-empty visible ASCII. RFC 3261 says word ["@" word], but deployed UAs also use '=' (base64) and
 * similar; what matters downstream is no whitespace, no control and no non-ASCII bytes.
 */
function isCallId(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 33 || c > 126) return false;
  }
  return true;
}

/** "SIP/2.0" style: name "/" 1*DIGIT "." 1*DIGIT. */
function isVersion(v: string): boolean {
  if (v.length < 7 || v.charCodeAt(3) !== 47) return false;
  if (v.slice(0, 3).toUpperCase() !== "SIP") return false;
  const dot = v.indexOf(".", 4);
  return dot > 4 && isDigits(v.slice(4, dot)) && isDigits(v.slice(dot + 1));
}

/** URI chars for the Request-URI: visible ASCII or UTF-8, no '<', '>', '"' or whitespace. */
function plausibleUri(uri: string): boolean {
  if (uri.length === 0) return false;
  for (let i = 0; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c <= 32 || c === 127 || c === 60 || c === 62 || c === 34) return false;
  }
  return uriScheme(uri) !== undefined;
}

// Parse state for the current (synchronous) parseMessage call: the first problem found wins, and parsing goes on
// so that a respondable request can still be built. Module-level so no closure is allocated per message.
let error: string | undefined;
let errorStatus: number | undefined;

function fail(reason: string, status?: number): void {
  if (error === undefined) {
    error = reason;
    errorStatus = status;
  }
}

/**
 * Parse one message from a datagram or a frame cut by StreamFramer. The body is a view on the input buffer (no
 * copy): keep the input unchanged while the message is in use. Without a Content-Length the body is the rest of the
 * input; with one, extra bytes are ignored and missing bytes are an error.
 */
export function parseMessage(data: Buffer | string, limits?: Partial<ParseLimits>): ParseResult {
  const maxSize = limits?.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize;
  const maxHeaders = limits?.maxHeaders ?? DEFAULT_LIMITS.maxHeaders;
  const maxLine = limits?.maxLineLength ?? DEFAULT_LIMITS.maxLineLength;
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const len = buf.length;

  error = undefined;
  errorStatus = undefined;

  // RFC 3261 §7.5: ignore CRLFs before the start line (keepalives, sloppy senders).
  let start = 0;
  while (start < len && (buf[start] === 13 || buf[start] === 10)) start++;
  if (start >= len) return { ok: false, reason: "empty message" };
  if (len > maxSize) fail("message too large", 513);

  // The first empty line ends the headers: CRLF CRLF normally, LF LF from senders using bare LF line ends.
  let headEnd = buf.indexOf(CRLFCRLF, start);
  let bodyStart = headEnd + 4;
  if (headEnd === -1) {
    headEnd = buf.indexOf(LFLF, start);
    bodyStart = headEnd + 2;
    if (headEnd === -1) {
      fail("no empty line after the headers");
      headEnd = len;
      bodyStart = len;
    }
  }
  if (headEnd - start > maxSize) return { ok: false, reason: "header section too large", status: 513 };

  let head = buf.toString("utf8", start, headEnd);
  // A bare-LF blank line before the CRLF CRLF found above ends the headers earlier (rare: mixed line ends).
  const lfBlank = head.indexOf("\n\n");
  if (lfBlank !== -1) {
    head = head.slice(0, lfBlank);
    headEnd = start + Buffer.byteLength(head, "utf8");
    bodyStart = headEnd + 2;
  }
  const hlen = head.length;
  // Header fields are UTF-8 text (RFC 3261 §25.1): undecodable bytes turned into U+FFFD, which would not
  // round-trip and which apps downstream cannot parse either.
  if (head.indexOf("\uFFFD") !== -1 && Buffer.byteLength(head, "utf8") !== headEnd - start) {
    fail("invalid UTF-8 in the header section");
  }

  // CR only appears in CRLF line ends (a lone CR could end a line for other parsers: header injection).
  for (let cr = head.indexOf("\r"); cr !== -1; cr = head.indexOf("\r", cr + 1)) {
    if (head.charCodeAt(cr + 1) !== 10 && cr !== hlen - 1) {
      fail("bare CR in the header section");
      break;
    }
  }

  // ---- start line
  let nl = head.indexOf("\n");
  if (nl === -1) nl = hlen;
  const lineEnd = nl > 0 && head.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
  const startLine = head.slice(0, lineEnd);
  if (startLine.length > maxLine) fail("start line too long", 414);

  let isRequest = true;
  let method = "";
  let uri = "";
  let version = "SIP/2.0";
  let status = 0;
  let reason = "";
  let methodOk = false;
  if (startLine.charCodeAt(0) === 83 && startLine.startsWith("SIP/")) {
    isRequest = false;
    const sp = startLine.indexOf(" ");
    version = sp === -1 ? startLine : startLine.slice(0, sp);
    if (!isVersion(version)) return { ok: false, reason: "bad status line" };
    if (version.toUpperCase() !== "SIP/2.0") return { ok: false, reason: "unsupported SIP version" };
    version = "SIP/2.0";
    const code = sp === -1 ? "" : startLine.slice(sp + 1, sp + 4);
    const after = startLine.charCodeAt(sp + 4);
    if (!isDigits(code) || code.length !== 3 || (sp + 4 < startLine.length && after !== 32)) {
      return { ok: false, reason: "bad status code" };
    }
    status = Number(code);
    if (status < 100 || status > 699) return { ok: false, reason: "bad status code" };
    reason = sp + 5 <= startLine.length ? startLine.slice(sp + 5) : "";
  } else {
    const sp1 = startLine.indexOf(" ");
    const sp2 = sp1 === -1 ? -1 : startLine.indexOf(" ", sp1 + 1);
    if (sp1 === -1 || sp2 === -1) return { ok: false, reason: "bad request line" };
    method = startLine.slice(0, sp1);
    methodOk = isToken(method, 0, method.length);
    if (!methodOk) return { ok: false, reason: "bad method" };
    uri = startLine.slice(sp1 + 1, sp2);
    version = startLine.slice(sp2 + 1);
    if (startLine.indexOf(" ", sp2 + 1) !== -1 || startLine.indexOf("\t") !== -1) {
      fail("extra whitespace in the request line");
    } else if (!plausibleUri(uri)) fail("bad Request-URI");
    else if (!isVersion(version)) fail("bad SIP version");
    else if (version.toUpperCase() !== "SIP/2.0") fail("unsupported SIP version", 505);
    else {
      const scheme = uriScheme(uri);
      if (scheme === "sip" || scheme === "sips") {
        const parsed = parseUri(uri);
        if (parsed === undefined) fail("bad Request-URI");
        // §19.1.1: headers are not allowed in a Request-URI.
        else if (parsed.headers.size > 0) fail("headers in the Request-URI");
      }
    }
    // Normalized spelling ("sip/2.0" is the same version); respondable requests always say SIP/2.0.
    version = "SIP/2.0";
  }

  // ---- headers
  const headers = new SipHeaders();
  let count = 0;
  let pos = nl + 1;
  let curName: string | undefined;
  let curKey = "";
  let curValue = "";
  let nVia = 0;
  let nFrom = 0;
  let nTo = 0;
  let nCallId = 0;
  let nCSeq = 0;
  let nCl = 0;
  let nContact = 0;
  let nRoute = 0;
  let nRecordRoute = 0;
  while (pos < hlen) {
    let e = head.indexOf("\n", pos);
    if (e === -1) e = hlen;
    const le = e > pos && head.charCodeAt(e - 1) === 13 ? e - 1 : e;
    const lineStart = pos;
    pos = e + 1;
    if (le === lineStart) {
      fail("empty header line");
      continue;
    }
    const c0 = head.charCodeAt(lineStart);
    if (c0 === 32 || c0 === 9) {
      // Folded continuation (LWS): equivalent to a single space.
      if (curName === undefined) {
        fail("continuation line before any header");
        continue;
      }
      const more = sliceTrim(head, lineStart, le);
      if (more.length > 0) curValue = curValue.length > 0 ? `${curValue} ${more}` : more;
      if (curValue.length > maxLine) fail("header line too long");
      continue;
    }
    if (curName !== undefined) {
      headers.addParsed(curName, curKey, curValue);
      curName = undefined;
    }
    const colon = head.indexOf(":", lineStart);
    if (colon === -1 || colon >= le) {
      fail("malformed header line");
      continue;
    }
    let ne = colon;
    while (ne > lineStart && (head.charCodeAt(ne - 1) === 32 || head.charCodeAt(ne - 1) === 9)) ne--;
    if (!isToken(head, lineStart, ne)) {
      fail("bad header name");
      continue;
    }
    curName = head.slice(lineStart, ne);
    curKey = headerKey(curName);
    // Content-Length is not counted: the serializer may add one, and parse(serialize(m)) must still succeed.
    if (curKey !== "content-length" && ++count > maxHeaders) {
      fail("too many headers");
      curName = undefined;
      break;
    }
    curValue = sliceTrim(head, colon + 1, le);
    // The limit applies to names and (unfolded) values, so reformatting a line never pushes it over.
    if (curValue.length > maxLine || ne - lineStart > maxLine) fail("header line too long");
    switch (curKey) {
      case "via":
        nVia++;
        break;
      case "from":
        nFrom++;
        break;
      case "to":
        nTo++;
        break;
      case "call-id":
        nCallId++;
        break;
      case "cseq":
        nCSeq++;
        break;
      case "content-length":
        nCl++;
        break;
      case "contact":
        nContact++;
        break;
      case "route":
        nRoute++;
        break;
      case "record-route":
        nRecordRoute++;
        break;
    }
  }
  if (curName !== undefined) headers.addParsed(curName, curKey, curValue);

  // ---- mandatory headers (§8.1.1) and their syntax
  const essentials = nVia > 0 && nFrom > 0 && nTo > 0 && nCallId > 0 && nCSeq > 0;
  if (!essentials) fail("missing mandatory header (Via, From, To, Call-ID or CSeq)");
  else if (nFrom > 1 || nTo > 1 || nCallId > 1 || nCSeq > 1 || nCl > 1)
    fail("duplicated single-value header");
  const viaOk = nVia > 0 && allValid(headers, "via", isValidVia);
  if (nVia > 0 && !viaOk) fail("bad Via");
  if (nContact > 0 && !allValid(headers, "contact", isValidContact)) fail("bad Contact");
  if (nRoute > 0 && !allValid(headers, "route", isValidRoute)) fail("bad Route");
  if (nRecordRoute > 0 && !allValid(headers, "record-route", isValidRoute)) fail("bad Record-Route");
  if (nFrom > 0 && !isValidNameAddr(headers.get("from") ?? "")) fail("bad From");
  if (nTo > 0 && !isValidNameAddr(headers.get("to") ?? "")) fail("bad To");
  if (nCallId > 0) {
    const cid = headers.get("call-id") ?? "";
    if (!isCallId(cid)) fail("bad Call-ID");
  }
  if (nCSeq > 0) {
    const cseq = parseCSeq(headers.get("cseq") ?? "");
    if (cseq === undefined) fail("bad CSeq");
    else if (isRequest && cseq.method !== method) fail("CSeq method does not match the request method");
  }
  const mf = headers.get("max-forwards");
  if (mf !== undefined && !isDigits(mf)) fail("bad Max-Forwards");

  // ---- body framing
  let body = buf.subarray(bodyStart, bodyStart);
  if (nCl > 0) {
    const clText = headers.get("content-length") ?? "";
    if (!isDigits(clText) || clText.length > 9) fail("bad Content-Length");
    else {
      const cl = Number(clText);
      if (cl > len - bodyStart) fail("body shorter than Content-Length");
      else body = buf.subarray(bodyStart, bodyStart + cl);
    }
  } else body = buf.subarray(bodyStart, len);

  if (error !== undefined) {
    const result: ParseResult = { ok: false, reason: error };
    if (errorStatus !== undefined) result.status = errorStatus;
    // a usable Via is all a 400 needs to find its way back (§18.2.2; it copies whatever else is there), and with
    // all the essentials present a bad Via is answered to the source address
    if (isRequest && methodOk && method !== "ACK" && (viaOk || essentials)) {
      result.respondable = { kind: "request", method, uri, version, headers, body };
    }
    return result;
  }
  if (isRequest) {
    const req: SipRequest = { kind: "request", method, uri, version, headers, body };
    return { ok: true, message: req };
  }
  const res: SipResponse = { kind: "response", status, reason, version, headers, body };
  return { ok: true, message: res };
}
