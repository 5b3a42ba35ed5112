// Requests that belong to an INVITE's transaction: the CANCEL (RFC 3261 §9.1) and the ACK for a non-2xx final
// (§17.1.1.3). Both repeat the INVITE's Request-URI, top Via, Route set, From, Call-ID and CSeq number.

import { SipHeaders } from "./headers.ts";
import type { SipRequest } from "./message.ts";
import { parseCSeq } from "./response.ts";

/**
 * The CANCEL or hop-by-hop ACK for `invite`. `to` replaces the INVITE's To (the ACK takes the response's To,
 * with its tag); `extraHeaders` are appended (e.g. Reason on a CANCEL).
 */
export function inviteSibling(
  invite: SipRequest,
  method: "ACK" | "CANCEL",
  opts: { to?: string | undefined; extraHeaders?: readonly [string, string][] | undefined } = {},
): SipRequest {
  const src = invite.headers;
  const h = new SipHeaders();
  const via = src.top("via");
  if (via !== undefined) h.append("Via", via);
  for (const route of src.getAll("route")) h.append("Route", route);
  h.append("Max-Forwards", "70");
  h.append("From", src.get("from") ?? "");
  h.append("To", opts.to ?? src.get("to") ?? "");
  h.append("Call-ID", src.get("call-id") ?? "");
  h.append("CSeq", `${parseCSeq(src.get("cseq") ?? "")?.seq ?? 1} ${method}`);
  for (const [name, value] of opts.extraHeaders ?? []) h.append(name, value);
  return { kind: "request", method, uri: invite.uri, version: "SIP/2.0", headers: h, body: Buffer.alloc(0) };
}
