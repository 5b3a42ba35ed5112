// Dialog bookkeeping and in-dialog request construction (RFC 3261 §12.2.1.1) from app stubs.
import { describe, expect, it } from "vitest";
import { parseMessage, SipHeaders, type SipRequest } from "../sip/message.ts";
import type { AppSession } from "../wire/server.ts";
import { type Dialog, DialogTable, dialogIdFor, tagOf, uriOf } from "./dialog.ts";
import {
  buildInDialogRequest,
  contactFor,
  inferContentType,
  rewriteLocalhost,
  uriHostPort,
} from "./requests.ts";
import { parseSessionExpires } from "./session-timer.ts";

function app(): AppSession {
  return { dialogs: new Set<string>() } as unknown as AppSession;
}

function dialog(overrides: Partial<Dialog> = {}): Dialog {
  return {
    id: dialogIdFor("abc@host", "ft"),
    role: "uas",
    kind: "INVITE",
    callId: "abc@host",
    localTag: "lt",
    remoteTag: "ft",
    localHeader: "<sip:100@pbx.example>;tag=lt",
    remoteHeader: '"Alice" <sip:alice@10.0.0.5>;tag=ft',
    remoteTarget: "sip:alice@10.0.0.5:5062;transport=udp",
    routeSet: [],
    localSeq: 10,
    remoteSeq: 1,
    localContact: "<sip:192.0.2.1:5060>",
    peer: { transport: "udp", address: "198.51.100.7", port: 40000 },
    app: app(),
    inviteSeq: 0,
    acked: true,
    terminated: false,
    ...overrides,
  };
}

function stub(
  method: string,
  uri = "sip:placeholder",
  headers: [string, string][] = [],
  body = "",
): SipRequest {
  return {
    kind: "request",
    method,
    uri,
    version: "SIP/2.0",
    headers: new SipHeaders(headers),
    body: Buffer.from(body),
  };
}

describe("dialog ids and table", () => {
  it("uses drachtio's id format and finds dialogs by Call-ID + local tag", () => {
    const t = new DialogTable();
    const d = dialog();
    t.add(d);
    expect(d.id).toBe("abc@host;from-tag=ft");
    expect(t.get("abc@host;from-tag=ft")).toBe(d);
    expect(t.match("abc@host", "lt")).toBe(d);
    expect(t.match("abc@host", "ft")).toBeUndefined();
    expect(d.app.dialogs.has(d.id)).toBe(true);
    t.remove(d);
    expect(t.size).toBe(0);
    expect(d.terminated).toBe(true);
    expect(d.app.dialogs.size).toBe(0);
  });

  it("reads tags and URIs from name-addrs", () => {
    expect(tagOf('"A" <sip:a@b;tag=no>;tag=yes')).toBe("yes");
    expect(tagOf("<sip:a@b>")).toBeUndefined();
    expect(uriOf('"A" <sip:a@b:5060;transport=tcp>;expires=60')).toBe("sip:a@b:5060;transport=tcp");
  });
});

describe("buildInDialogRequest", () => {
  it("BYE from a stub: remote target, dialog From/To/Call-ID, CSeq incremented, Route set, app headers kept", () => {
    const d = dialog({ routeSet: ["<sip:proxy1.example;lr>", "<sip:proxy2.example;lr>"] });
    const req = buildInDialogRequest(
      d,
      stub("BYE", "sip:placeholder", [
        ["X-Reason", "hangup"],
        ["Via", "bogus"],
      ]),
    );
    expect(req.uri).toBe("sip:alice@10.0.0.5:5062;transport=udp");
    expect(req.headers.get("from")).toBe("<sip:100@pbx.example>;tag=lt");
    expect(req.headers.get("to")).toBe('"Alice" <sip:alice@10.0.0.5>;tag=ft');
    expect(req.headers.get("call-id")).toBe("abc@host");
    expect(req.headers.get("cseq")).toBe("11 BYE");
    expect(req.headers.getAll("route")).toEqual(["<sip:proxy1.example;lr>", "<sip:proxy2.example;lr>"]);
    expect(req.headers.get("x-reason")).toBe("hangup");
    expect(req.headers.has("via")).toBe(false);
    expect(req.headers.get("max-forwards")).toBe("70");
    expect(d.localSeq).toBe(11);
  });

  it("compact-form From/To/Call-ID/Via in a parsed stub do not override or duplicate the dialog's", () => {
    // the parser keeps header names as written (f, t, i, v), unlike SipHeaders built from pairs
    const parsed = parseMessage(
      "INFO sip:placeholder SIP/2.0\r\nv: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx\r\nf: <sip:evil@x>;tag=1\r\n" +
        "t: <sip:evil@x>\r\ni: other-call\r\nCSeq: 1 INFO\r\nl: 0\r\n\r\n",
    );
    if (!parsed.ok || parsed.message.kind !== "request") throw new Error("fixture does not parse");
    const req = buildInDialogRequest(dialog(), parsed.message);
    expect(req.headers.getAll("from")).toEqual(["<sip:100@pbx.example>;tag=lt"]);
    expect(req.headers.getAll("to")).toEqual(['"Alice" <sip:alice@10.0.0.5>;tag=ft']);
    expect(req.headers.getAll("call-id")).toEqual(["abc@host"]);
    expect(req.headers.has("via")).toBe(false);
  });

  it("re-INVITE gets our Contact and SDP content type; its ACK reuses the INVITE's CSeq", () => {
    const d = dialog();
    const inv = buildInDialogRequest(
      d,
      stub("INVITE", "sip:placeholder", [], "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\n"),
    );
    expect(inv.headers.get("cseq")).toBe("11 INVITE");
    expect(inv.headers.get("contact")).toBe("<sip:192.0.2.1:5060>");
    expect(inv.headers.get("content-type")).toBe("application/sdp");
    const info = buildInDialogRequest(d, stub("INFO"));
    expect(info.headers.get("cseq")).toBe("12 INFO");
    const ack = buildInDialogRequest(d, stub("ACK"));
    expect(ack.headers.get("cseq")).toBe("11 ACK");
    expect(ack.uri).toBe(d.remoteTarget);
  });

  it("keeps an explicit Request-URI that is not the placeholder", () => {
    const req = buildInDialogRequest(dialog(), stub("REFER", "sip:alice@10.0.0.5:5062"));
    expect(req.uri).toBe("sip:alice@10.0.0.5:5062");
    expect(req.headers.get("contact")).toBe("<sip:192.0.2.1:5060>");
  });
});

describe("address helpers", () => {
  const local = { transport: "udp" as const, address: "192.0.2.1", port: 5060 };
  it("rewrites @localhost to our advertised address", () => {
    expect(rewriteLocalhost("<sip:100@localhost>;tag=x", local)).toBe("<sip:100@192.0.2.1:5060>;tag=x");
    expect(rewriteLocalhost("sip:100@localhost:5080", local)).toBe("sip:100@192.0.2.1:5060");
    expect(rewriteLocalhost("<sip:100@example.com>", local)).toBe("<sip:100@example.com>");
  });
  it("formats contacts and IPv6 host:port", () => {
    expect(contactFor(local)).toBe("<sip:192.0.2.1:5060>");
    expect(contactFor({ ...local, transport: "tcp" })).toBe("<sip:192.0.2.1:5060;transport=tcp>");
    expect(uriHostPort("2001:db8::1", 5060)).toBe("[2001:db8::1]:5060");
  });
  it("infers SDP only for bodies that start with v=0", () => {
    expect(inferContentType(Buffer.from("v=0\r\n"))).toBe("application/sdp");
    expect(inferContentType(Buffer.from("Signal=1"))).toBeUndefined();
  });
});

describe("parseSessionExpires", () => {
  it("reads the interval and the refresher, whatever the spacing and case", () => {
    expect(parseSessionExpires("1800;refresher=uac")).toEqual({ seconds: 1800, refresher: "uac" });
    expect(parseSessionExpires("90 ; Refresher = UAS")).toEqual({ seconds: 90, refresher: "uas" });
    expect(parseSessionExpires("600")).toEqual({ seconds: 600 });
    expect(parseSessionExpires("soon")).toBeUndefined();
    expect(parseSessionExpires(undefined)).toBeUndefined();
  });
});
