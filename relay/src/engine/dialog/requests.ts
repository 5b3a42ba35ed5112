// Building requests inside a dialog (RFC 3261 §12.2.1.1) from the stub an app sends (e.g. `BYE sip:placeholder
// SIP/2.0` with the dialog id): Request-URI = remote target, Route = route set, From/To/Call-ID from the dialog,
// CSeq incremented (ACK reuses the INVITE's number), the app's extra headers and body kept.
import { headerKey, SipHeaders, type SipRequest } from "../sip/message.ts";
import type { Peer, SipStack } from "../stack/index.ts";
import { type Dialog, uriOf } from "./dialog.ts";

/** Headers the engine sets itself in requests it builds; an app's values for them are ignored. */
const ENGINE_OWNED = new Set(["via", "from", "to", "call-id", "cseq", "content-length", "route"]);

/** `host:port` for use in a SIP URI (IPv6 in brackets). */
export function uriHostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** A Contact value for our address as seen by `dest`. */
export function contactFor(local: Peer): string {
  const hp = uriHostPort(local.address, local.port);
  return local.transport === "tcp" ? `<sip:${hp};transport=tcp>` : `<sip:${hp}>`;
}

/**
 * Headers whose `@localhost` drachtio-server replaces by its SIP address (drachtio.cpp makeTags), in every request
 * and response an app sends. Canonical keys (compact forms m/f/t map to these).
 */
export const LOCALHOST_HEADERS: ReadonlySet<string> = new Set([
  "from",
  "to",
  "contact",
  "p-asserted-identity",
]);

/** Rewrite `@localhost` in the LOCALHOST_HEADERS of an app's message, in place. */
export function rewriteLocalhostHeaders(headers: SipHeaders, local: Peer): void {
  for (const name of LOCALHOST_HEADERS) {
    const values = headers.getAll(name);
    if (!values.some((v) => v.includes("@localhost"))) continue;
    headers.set(name, values.map((v) => rewriteLocalhost(v, local)).join(", "));
  }
}

/** Replace `@localhost[:port]` (what srf writes for callingNumber) by our advertised address. */
export function rewriteLocalhost(value: string, local: Peer): string {
  const i = value.indexOf("@localhost");
  if (i === -1) return value;
  let end = i + "@localhost".length;
  if (value.charCodeAt(end) === 58 /* : */) {
    end++;
    while (end < value.length && value.charCodeAt(end) >= 48 && value.charCodeAt(end) <= 57) end++;
  }
  return `${value.slice(0, i)}@${uriHostPort(local.address, local.port)}${value.slice(end)}`;
}

/** Content-Type drachtio-server infers for a body without one (SDP), else undefined. */
export function inferContentType(body: Buffer): string | undefined {
  return body.length >= 3 && body[0] === 0x76 && body[1] === 0x3d && body[2] === 0x30
    ? "application/sdp"
    : undefined;
}

/**
 * The request to send for an app's in-dialog stub (or an engine-generated one, e.g. a BYE with a Reason header).
 * Mutates the dialog's CSeq bookkeeping: every request but ACK takes the next local CSeq; ACK reuses the INVITE's.
 */
export function buildInDialogRequest(d: Dialog, stub: SipRequest): SipRequest {
  const method = stub.method;
  let seq: number;
  if (method === "ACK") seq = d.inviteSeq;
  else {
    d.localSeq++;
    seq = d.localSeq;
    if (method === "INVITE") d.inviteSeq = seq;
  }
  const uri = method === "ACK" || stub.uri.includes("placeholder") ? d.remoteTarget : stub.uri;
  const h = new SipHeaders();
  if (!stub.headers.has("max-forwards")) h.append("Max-Forwards", "70");
  h.append("From", d.localHeader);
  h.append("To", d.remoteHeader);
  h.append("Call-ID", d.callId);
  h.append("CSeq", `${seq} ${method}`);
  for (const r of d.routeSet) h.append("Route", r);
  for (const [name, value] of stub.headers.entries()) {
    if (ENGINE_OWNED.has(headerKey(name))) continue; // compact forms (f, t, i, v, l) too
    h.append(name, value);
  }
  if (
    (method === "INVITE" || method === "SUBSCRIBE" || method === "REFER" || method === "UPDATE") &&
    !h.has("contact")
  ) {
    h.append("Contact", d.localContact);
  }
  if (stub.body.length > 0 && !h.has("content-type")) {
    const ct = inferContentType(stub.body);
    if (ct) h.append("Content-Type", ct);
  }
  return { kind: "request", method, uri, version: "SIP/2.0", headers: h, body: stub.body };
}

/**
 * Next hop for a request in the dialog: the first route (resolved when the dialog was created; a numeric one is
 * resolved here), else, or while a route's host name is still being resolved, the address the peer's messages
 * came from (which also reaches a peer behind NAT).
 */
export function dialogDestination(d: Dialog, stack: SipStack): Peer {
  if (d.routeSet.length === 0) return d.peer;
  if (d.routeHop !== undefined) return d.routeHop;
  const uri = uriOf(d.routeSet[0]);
  if (uri === undefined) return d.peer;
  try {
    d.routeHop = stack.resolve(uri);
    return d.routeHop;
  } catch {
    return d.peer;
  }
}
