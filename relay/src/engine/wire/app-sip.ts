// Reading the SIP text an application sends inside a `sip` frame. drachtio-srf writes these itself (start line,
// lower-cased header names, a Content-Length that counts characters, not bytes), so they are not wire messages:
// the body is simply everything after the blank line, and Via/Content-Length are left for the engine to set.
import { SipHeaders, type SipRequest, type SipResponse } from "../sip/message.ts";

const CRLFCRLF = Buffer.from("\r\n\r\n");

export class AppSipError extends Error {
  override readonly name = "AppSipError";
}

/**
 * The header name as drachtio-server puts an app's header on the wire (drachtio.cpp capitalizeAfterDash): the
 * first letter and every letter after a dash upper-cased, except for `X-` headers, which keep the app's spelling.
 * Headers the SIP model knows are written in their canonical form anyway (SipHeaders' display names).
 */
export function wireHeaderName(name: string): string {
  const c0 = name.charCodeAt(0);
  if ((c0 === 0x58 || c0 === 0x78) && name.charCodeAt(1) === 0x2d) return name; // X- / x-
  let out = "";
  let upper = true;
  for (const ch of name) {
    out += upper ? ch.toUpperCase() : ch;
    upper = ch === "-";
  }
  return out;
}

/** Parse an app-supplied request or response; throws AppSipError when the start line is not SIP. */
export function parseAppSip(buf: Buffer): SipRequest | SipResponse {
  let end = buf.indexOf(CRLFCRLF);
  let body: Buffer;
  if (end === -1) {
    end = buf.length;
    body = Buffer.alloc(0);
  } else {
    body = buf.subarray(end + 4);
  }
  const head = buf.toString("utf8", 0, end);
  const lines = head.split("\r\n");
  const start = lines[0] ?? "";
  const headers = new SipHeaders();
  let lastName = "";
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.length === 0) continue;
    const c = line.charCodeAt(0);
    if ((c === 32 || c === 9) && lastName !== "") {
      // folded continuation line: join to the previous header's value
      const prev = headers.getAll(lastName);
      headers.remove(lastName);
      for (let k = 0; k < prev.length - 1; k++) headers.append(lastName, prev[k] as string);
      headers.append(lastName, `${prev[prev.length - 1] ?? ""} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new AppSipError(`malformed header line from app: ${line.slice(0, 40)}`);
    const name = wireHeaderName(line.slice(0, colon).trim());
    const key = name.toLowerCase();
    if (key === "content-length" || key === "l") continue;
    headers.append(name, line.slice(colon + 1).trim());
    lastName = name;
  }
  if (start.startsWith("SIP/")) {
    const sp1 = start.indexOf(" ");
    const sp2 = start.indexOf(" ", sp1 + 1);
    const status = Number.parseInt(start.slice(sp1 + 1, sp2 === -1 ? undefined : sp2), 10);
    if (!(status >= 100 && status <= 699)) throw new AppSipError(`invalid status line from app: ${start}`);
    const reason = sp2 === -1 ? "" : start.slice(sp2 + 1);
    return { kind: "response", status, reason, version: "SIP/2.0", headers, body };
  }
  const sp1 = start.indexOf(" ");
  const sp2 = start.lastIndexOf(" ");
  if (sp1 <= 0 || sp2 <= sp1 || !start.slice(sp2 + 1).startsWith("SIP/")) {
    throw new AppSipError(`invalid request line from app: ${start.slice(0, 80)}`);
  }
  const method = start.slice(0, sp1).toUpperCase();
  const uri = start.slice(sp1 + 1, sp2);
  return { kind: "request", method, uri, version: "SIP/2.0", headers, body };
}
