// Message serializer: start line, headers in order with CRLF, a Content-Length that always matches the body
// (replacing any existing one, in place), blank line, body bytes.

import type { SipMessage } from "./message.ts";

/** Start-line parts set by code (e.g. a reason phrase from an app) must not break the line. */
function oneLine(s: string): string {
  return s.indexOf("\r") === -1 && s.indexOf("\n") === -1 ? s : s.replace(/[\r\n]+/g, " ");
}

/** Serialize to wire bytes. Does not modify the message. */
export function serializeMessage(msg: SipMessage): Buffer {
  let head =
    msg.kind === "request"
      ? `${oneLine(msg.method)} ${oneLine(msg.uri)} ${oneLine(msg.version)}\r\n`
      : `${oneLine(msg.version)} ${msg.status} ${oneLine(msg.reason)}\r\n`;
  const bodyLen = msg.body.length;
  let wroteLength = false;
  const { names, keys, values } = msg.headers.lineArrays();
  for (let i = 0; i < names.length; i++) {
    const name = names[i] ?? "";
    // Content-Length ("l" compact) is rewritten from the body; a second copy is dropped.
    if (keys[i] === "content-length") {
      if (!wroteLength) head += `${name}: ${bodyLen}\r\n`;
      wroteLength = true;
      continue;
    }
    head += `${name}: ${values[i] ?? ""}\r\n`;
  }
  if (!wroteLength) head += `Content-Length: ${bodyLen}\r\n`;
  head += "\r\n";
  if (bodyLen === 0) return Buffer.from(head, "utf8");
  const headLen = Buffer.byteLength(head, "utf8");
  const out = Buffer.allocUnsafe(headLen + bodyLen);
  out.write(head, 0, "utf8");
  msg.body.copy(out, headLen);
  return out;
}
