// The CANCEL and non-2xx ACK built from an INVITE carry what RFC 3261 §9.1 / §17.1.1.3 require.
import { describe, expect, it } from "vitest";
import { parseMessage, type SipRequest } from "./message.ts";
import { inviteSibling } from "./request.ts";

const INVITE = [
  "INVITE sip:bob@127.0.0.1:5070 SIP/2.0",
  "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtop",
  "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKlower",
  "Route: <sip:127.0.0.1:5090;lr>",
  "Max-Forwards: 69",
  "From: <sip:alice@127.0.0.1>;tag=a1",
  "To: <sip:bob@127.0.0.1>",
  "Call-ID: sibling-1",
  "CSeq: 42 INVITE",
  "Content-Type: application/sdp",
  "Content-Length: 3",
  "",
  "v=0",
].join("\r\n");

function invite(): SipRequest {
  const parsed = parseMessage(INVITE);
  if (!parsed.ok || parsed.message.kind !== "request") throw new Error("bad fixture");
  return parsed.message;
}

describe("inviteSibling", () => {
  it("CANCEL: same Request-URI, top Via only, Route, From, To, Call-ID, CSeq number; no body", () => {
    const c = inviteSibling(invite(), "CANCEL", { extraHeaders: [["Reason", "SIP;cause=487"]] });
    expect(c.method).toBe("CANCEL");
    expect(c.uri).toBe("sip:bob@127.0.0.1:5070");
    expect(c.headers.getAll("via")).toEqual(["SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtop"]);
    expect(c.headers.getAll("route")).toEqual(["<sip:127.0.0.1:5090;lr>"]);
    expect(c.headers.get("to")).toBe("<sip:bob@127.0.0.1>");
    expect(c.headers.get("cseq")).toBe("42 CANCEL");
    expect(c.headers.get("reason")).toBe("SIP;cause=487");
    expect(c.body.length).toBe(0);
  });

  it("ACK takes the response's To (with its tag)", () => {
    const a = inviteSibling(invite(), "ACK", { to: "<sip:bob@127.0.0.1>;tag=b9" });
    expect(a.headers.get("to")).toBe("<sip:bob@127.0.0.1>;tag=b9");
    expect(a.headers.get("cseq")).toBe("42 ACK");
    expect(a.headers.get("call-id")).toBe("sibling-1");
  });
});
