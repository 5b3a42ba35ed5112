// Unit tests of the SIP message model: header collection, parser, serializer and the header/URI helpers,
// driven through the public entry points of message.ts.

import { describe, expect, it } from "vitest";
import {
  createResponse,
  formatNameAddr,
  formatUri,
  formatVia,
  newBranch,
  newCallId,
  newTag,
  parseCSeq,
  parseMessage,
  parseNameAddr,
  parseUri,
  parseVia,
  SipHeaderError,
  SipHeaders,
  type SipRequest,
  serializeMessage,
  tagOf,
} from "./message.ts";

const CRLF = "\r\n";
function msg(...lines: string[]): string {
  return lines.join(CRLF);
}

const REGISTER = msg(
  "REGISTER sip:example.com SIP/2.0",
  "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
  "Max-Forwards: 70",
  "To: Bob <sip:bob@example.com>",
  "From: Bob <sip:bob@example.com>;tag=456248",
  "Call-ID: 843817637684230@998sdasdh09",
  "CSeq: 1826 REGISTER",
  "Contact: <sip:bob@10.0.0.1:5060>",
  "Expires: 7200",
  "Content-Length: 0",
  "",
  "",
);

function req(text: string | Buffer): SipRequest {
  const r = parseMessage(text);
  if (!r.ok) throw new Error(`expected a valid message: ${r.reason}`);
  if (r.message.kind !== "request") throw new Error("expected a request");
  return r.message;
}

function failure(text: string | Buffer) {
  const r = parseMessage(text);
  if (r.ok) throw new Error("expected a parse failure");
  return r;
}

describe("SipHeaders", () => {
  it("looks names up case-insensitively and maps compact forms to long names", () => {
    const h = new SipHeaders([
      ["v", "SIP/2.0/UDP a;branch=z9hG4bK1"],
      ["VIA", "SIP/2.0/UDP b;branch=z9hG4bK2"],
      ["f", "<sip:a@b>;tag=1"],
      ["i", "abc"],
      ["l", "0"],
    ]);
    expect(h.getAll("Via")).toEqual(["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b;branch=z9hG4bK2"]);
    expect(h.get("from")).toBe("<sip:a@b>;tag=1");
    expect(h.get("Call-Id")).toBe("abc");
    expect(h.has("content-LENGTH")).toBe(true);
    expect(h.get("x-missing")).toBeUndefined();
  });

  it("splits list headers on top-level commas only, never auth or unknown headers", () => {
    const h = new SipHeaders([
      ["Contact", '"Doe, John" <sip:j@x;a=1,2>;q=0.5, <sip:k@y> , (comment, here) <sip:z@w>'],
      ["WWW-Authenticate", 'Digest realm="a,b", nonce="n", qop="auth,auth-int"'],
      ["Date", "Sat, 13 Nov 2010 23:29:00 GMT"],
      ["X-Custom", "a, b"],
      ["Allow", "INVITE,ACK , BYE"],
    ]);
    expect(h.getAll("contact")).toEqual([
      '"Doe, John" <sip:j@x;a=1,2>;q=0.5',
      "<sip:k@y>",
      "(comment, here) <sip:z@w>",
    ]);
    expect(h.getAll("www-authenticate")).toHaveLength(1);
    expect(h.getAll("date")).toEqual(["Sat, 13 Nov 2010 23:29:00 GMT"]);
    expect(h.getAll("x-custom")).toEqual(["a, b"]);
    expect(h.getAll("allow")).toEqual(["INVITE", "ACK", "BYE"]);
    expect(h.top("contact")).toBe('"Doe, John" <sip:j@x;a=1,2>;q=0.5');
  });

  it("set replaces every line in place, append/prepend/remove keep order", () => {
    const h = new SipHeaders([
      ["From", "a"],
      ["Via", "v1"],
      ["Route", "r1"],
      ["via", "v2"],
    ]);
    h.prepend("Via", "v0");
    expect([...h.entries()].map(([n, v]) => `${n}:${v}`)).toEqual([
      "From:a",
      "Via:v0",
      "Via:v1",
      "Route:r1",
      "Via:v2",
    ]);
    h.set("VIA", "only");
    expect([...h.entries()].map(([n, v]) => `${n}:${v}`)).toEqual(["From:a", "Via:only", "Route:r1"]);
    h.append("record-route", "<sip:p>");
    expect([...h.entries()].at(-1)).toEqual(["Record-Route", "<sip:p>"]);
    h.remove("route");
    expect(h.has("Route")).toBe(false);
    expect(h.size).toBe(3);
    h.prepend("Max-Forwards", "70");
    expect([...h.entries()][0]).toEqual(["Max-Forwards", "70"]);
  });

  it("removeFirst pops one element of a comma-separated line, or the whole line", () => {
    const h = new SipHeaders([
      ["Via", "SIP/2.0/UDP ours;branch=z9hG4bKa, SIP/2.0/UDP theirs;branch=z9hG4bKb"],
      ["Via", "SIP/2.0/UDP last;branch=z9hG4bKc"],
      ["Authorization", "Digest a=1, b=2"],
    ]);
    expect(h.removeFirst("via")).toBe("SIP/2.0/UDP ours;branch=z9hG4bKa");
    expect(h.getAll("via")).toEqual([
      "SIP/2.0/UDP theirs;branch=z9hG4bKb",
      "SIP/2.0/UDP last;branch=z9hG4bKc",
    ]);
    expect(h.removeFirst("via")).toBe("SIP/2.0/UDP theirs;branch=z9hG4bKb");
    expect(h.count("via")).toBe(1);
    expect(h.removeFirst("authorization")).toBe("Digest a=1, b=2");
    expect(h.removeFirst("authorization")).toBeUndefined();
  });

  it("refuses header injection: invalid names throw, line breaks in values become spaces", () => {
    const h = new SipHeaders();
    expect(() => h.append("X-Bad Name", "v")).toThrow(SipHeaderError);
    expect(() => h.set("X-Bad:", "v")).toThrow(SipHeaderError);
    expect(() => h.prepend("", "v")).toThrow(SipHeaderError);
    h.append("Subject", "hello\r\nVia: SIP/2.0/UDP evil");
    h.set("X-A", "a\nb");
    h.prepend("X-B", "c\r\rd");
    expect(h.get("subject")).toBe("hello Via: SIP/2.0/UDP evil");
    expect(h.get("x-a")).toBe("a b");
    expect(h.get("x-b")).toBe("c d");
    const m = req(REGISTER);
    m.headers.append("X-Note", "a\r\nContent-Length: 99");
    const res = createResponse(m, 200, "OK\r\nX-Injected: 1");
    const text = serializeMessage(res).toString();
    expect(text.startsWith("SIP/2.0 200 OK X-Injected: 1\r\n")).toBe(true);
    const again = parseMessage(serializeMessage(m));
    expect(again.ok && again.message.headers.get("x-note")).toBe("a Content-Length: 99");
    expect(again.ok && again.message.headers.count("content-length")).toBe(1);
  });

  it("clone is independent", () => {
    const h = new SipHeaders([["To", "a"]]);
    const c = h.clone();
    c.set("To", "b");
    expect(h.get("to")).toBe("a");
  });
});

describe("parseMessage", () => {
  it("parses a request line, headers and an empty body", () => {
    const m = req(REGISTER);
    expect(m).toMatchObject({
      kind: "request",
      method: "REGISTER",
      uri: "sip:example.com",
      version: "SIP/2.0",
    });
    expect(m.headers.size).toBe(9);
    expect(m.headers.get("cseq")).toBe("1826 REGISTER");
    expect(m.body.length).toBe(0);
  });

  it("normalizes the version spelling of a request", () => {
    expect(req(REGISTER.replace("SIP/2.0\r\n", "sip/2.0\r\n")).version).toBe("SIP/2.0");
  });

  it("parses a status line with a multi-word reason", () => {
    const r = parseMessage(
      REGISTER.replace("REGISTER sip:example.com SIP/2.0", "SIP/2.0 401 Unauthorized Here"),
    );
    expect(r.ok && r.message.kind === "response" && [r.message.status, r.message.reason]).toEqual([
      401,
      "Unauthorized Here",
    ]);
  });

  it("unfolds continuation lines and tolerates whitespace around the colon, bare LF and leading CRLFs", () => {
    const text =
      `\r\n\r\n${REGISTER.replace("Expires: 7200", "Subject :\tfirst\r\n  second\r\n\tthird")}`.replace(
        /\r\n/g,
        "\n",
      );
    const m = req(text);
    expect(m.headers.get("subject")).toBe("first second third");
    expect(m.method).toBe("REGISTER");
  });

  it("takes the body from Content-Length, ignores extra datagram bytes, and rejects a short body", () => {
    const withBody = REGISTER.replace("Content-Length: 0", "Content-Type: text/plain\r\nContent-Length: 5");
    expect(req(`${withBody}hello`).body.toString()).toBe("hello");
    expect(req(`${withBody}hello world`).body.toString()).toBe("hello");
    const short = failure(`${withBody}hel`);
    expect(short.reason).toMatch(/shorter/);
    expect(short.respondable?.method).toBe("REGISTER");
  });

  it("without Content-Length the body is the rest of the datagram", () => {
    expect(req(`${REGISTER.replace("Content-Length: 0\r\n", "")}abc`).body.toString()).toBe("abc");
  });

  it("keeps binary bodies byte-exact", () => {
    const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const head = Buffer.from(REGISTER.replace("Content-Length: 0", "Content-Length: 256"));
    const m = req(Buffer.concat([head, body]));
    expect(m.body.equals(body)).toBe(true);
    const out = serializeMessage(m);
    expect(out.subarray(out.length - 256).equals(body)).toBe(true);
  });

  it("rejects malformed input with reasons and never throws", () => {
    expect(failure("").reason).toMatch(/empty/);
    expect(failure("\r\n\r\n").reason).toMatch(/empty/);
    expect(failure("garbage").ok).toBe(false);
    expect(failure(REGISTER.replace("Max-Forwards: 70", "Bad Name: x")).reason).toMatch(/header name/);
    expect(failure(REGISTER.replace("Max-Forwards: 70", "NoColonHere")).reason).toMatch(/malformed/);
    expect(failure(` ${REGISTER}`).ok).toBe(false);
    expect(failure(REGISTER.replace("\r\n\r\n", "\r\n")).reason).toMatch(/empty line/);
    expect(failure(REGISTER.replace("Content-Length: 0", "Content-Length: 1x")).reason).toMatch(
      /Content-Length/,
    );
    expect(failure(REGISTER.replace("Max-Forwards: 70", "Max-Forwards: ten")).reason).toMatch(/Max-Forwards/);
    expect(failure(REGISTER.replace("SIP/2.0\r\n", "SIP/2.0 \r\n")).ok).toBe(false);
    expect(failure(REGISTER.replace("sip:example.com", "sip:exa mple.com")).ok).toBe(false);
    expect(failure(Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0d, 0x0a, 0x0d, 0x0a])).ok).toBe(false);
    expect(failure(REGISTER.replace("Expires: 7200", "Subject: a\rX-Injected: b")).reason).toMatch(/bare CR/);
  });

  it("rejects invalid UTF-8 in headers and a Call-ID with non-ASCII or control bytes, accepts UTF-8 text", () => {
    const bytes = Buffer.from(REGISTER.replace("Expires: 7200", "Subject: caf\u00e9 XX"));
    const at = bytes.indexOf("XX");
    bytes[at] = 0xff;
    expect(failure(bytes).reason).toMatch(/UTF-8/);
    expect(req(REGISTER.replace("Expires: 7200", "Subject: caf\u00e9 \ufffd")).headers.get("subject")).toBe(
      "caf\u00e9 \ufffd",
    );
    expect(failure(REGISTER.replace("843817637684230@998sdasdh09", "caf\u00e9@host")).reason).toMatch(
      /Call-ID/,
    );
    expect(failure(REGISTER.replace("843817637684230@998sdasdh09", "a\u0001b")).reason).toMatch(/Call-ID/);
    // Tolerated although outside RFC 3261's word alphabet: seen from deployed UAs (base64 padding).
    expect(req(REGISTER.replace("843817637684230@998sdasdh09", "YmQ2ZmVk==@h")).headers.get("call-id")).toBe(
      "YmQ2ZmVk==@h",
    );
  });

  it("ends the headers at the first empty line, whatever the line ending", () => {
    const lf = REGISTER.replace(/\r\n/g, "\n").replace("Content-Length: 0", "Content-Length: 4");
    expect(req(`${lf}a\r\n\r\nb`).body.toString()).toBe("a\r\n\r");
  });

  it("gives a respondable request (never for ACK, never for responses) when it has a usable Via", () => {
    const bad = failure(REGISTER.replace("CSeq: 1826 REGISTER", "CSeq: 1826 INVITE"));
    expect(bad.respondable?.headers.get("call-id")).toBe("843817637684230@998sdasdh09");
    const ack = failure(
      REGISTER.replace("REGISTER sip", "ACK sip").replace("1826 REGISTER", "1826 ACK").replace("70", "x"),
    );
    expect(ack.respondable).toBeUndefined();
    const resp = failure(
      REGISTER.replace("REGISTER sip:example.com SIP/2.0", "SIP/2.0 200 OK").replace("70", "x"),
    );
    expect(resp.respondable).toBeUndefined();
    // without Call-ID (or CSeq) it is still answerable along its Via
    const noCallId = failure(REGISTER.replace("Call-ID: 843817637684230@998sdasdh09\r\n", ""));
    expect(noCallId.respondable?.method).toBe("REGISTER");
    expect(noCallId.respondable?.headers.get("call-id")).toBeUndefined();
    const noVia = failure(REGISTER.replace(/Via: [^\r]*\r\n/g, "").replace("CSeq: 1826 REGISTER\r\n", ""));
    expect(noVia.respondable).toBeUndefined();
  });

  it("answers a wrong SIP version with 505 and an oversized message with 513", () => {
    expect(failure(REGISTER.replace("SIP/2.0\r\n", "SIP/3.0\r\n")).status).toBe(505);
    const big = REGISTER.replace("Content-Length: 0", `Content-Length: 70000`) + "x".repeat(70_000);
    const r = failure(big);
    expect(r.status).toBe(513);
    expect(r.respondable?.method).toBe("REGISTER");
  });

  it("enforces header-count and line-length limits", () => {
    const many = REGISTER.replace(
      "Expires: 7200",
      Array.from({ length: 300 }, (_, i) => `X-H${i}: v`).join(CRLF),
    );
    expect(failure(many).reason).toMatch(/too many headers/);
    expect(req(many.replace(/X-H2\d\d: v\r\n/g, "")).headers.size).toBeLessThan(256);
    const long = REGISTER.replace("Expires: 7200", `X-Long: ${"a".repeat(20_000)}`);
    expect(failure(long).reason).toMatch(/too long/);
    expect(parseMessage(long, { maxLineLength: 30_000 }).ok).toBe(true);
    expect(parseMessage(REGISTER, { maxMessageSize: 100 }).ok).toBe(false);
  });

  it("rejects empty list elements and malformed Via/Route/Record-Route/Contact values", () => {
    const cases: Array<[string, string]> = [
      ["Contact: <sip:bob@10.0.0.1:5060>", "Contact: <sip:bob@10.0.0.1:5060>,"],
      ["Contact: <sip:bob@10.0.0.1:5060>", "Contact: ,<sip:bob@10.0.0.1:5060>"],
      ["Contact: <sip:bob@10.0.0.1:5060>", "Contact: <sip:a@b>,,<sip:c@d>"],
      ["Expires: 7200", "Record-Route: <sip:p1;lr>, "],
      ["Expires: 7200", "Route: sip:p1;lr"],
      ["Expires: 7200", "Route: <sip:p1;lr"],
      ["Via: SIP/2.0/UDP", "Via: SiP/2.0/UDP"],
      ["Via: SIP/2.0/UDP", "Via: SIP/2*0/UDP"],
      ["Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport", "Via:   "],
    ];
    for (const [from, to] of cases) {
      expect(parseMessage(REGISTER.replace(from, to)).ok, to).toBe(false);
    }
    const ok = req(
      REGISTER.replace("Expires: 7200", "Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3;lr>"),
    );
    expect(ok.headers.getAll("record-route")).toEqual(["<sip:p1;lr>", "<sip:p2;lr>"]);
  });

  it("rejects duplicated single-value headers and CSeq/method mismatches", () => {
    expect(failure(REGISTER.replace("Expires: 7200", "Call-ID: second")).reason).toMatch(/duplicated/);
    expect(failure(REGISTER.replace("Expires: 7200", "l: 0")).reason).toMatch(/duplicated/);
    expect(failure(REGISTER.replace("1826 REGISTER", "1826 register")).reason).toMatch(/CSeq method/);
  });
});

describe("serializeMessage", () => {
  it("writes CRLF lines and a Content-Length matching the body (in place, compact kept, duplicates dropped)", () => {
    const m = req(REGISTER);
    m.body = Buffer.from("v=0\r\n");
    const out = serializeMessage(m).toString();
    expect(out.startsWith("REGISTER sip:example.com SIP/2.0\r\nVia: ")).toBe(true);
    expect(out).toContain("\r\nContent-Length: 5\r\n\r\nv=0\r\n");
    expect(out.split("\r\n").filter((l) => /^content-length/i.test(l))).toHaveLength(1);

    const compact = req(REGISTER.replace("Content-Length: 0", "l: 0"));
    compact.headers.append("Content-Length", "99");
    compact.body = Buffer.from("abc");
    const text = serializeMessage(compact).toString();
    expect(text).toContain("\r\nl: 3\r\n");
    expect(text).not.toContain(": 99");

    const none = req(REGISTER.replace("Content-Length: 0\r\n", ""));
    expect(serializeMessage(none).toString()).toContain("Content-Length: 0\r\n\r\n");
  });

  it("round-trips: parse(serialize(m)) equals m", () => {
    const m = req(REGISTER.replace("Expires: 7200", 'X-Uni: "Zoë ☎" <sip:z@x>'));
    const again = req(serializeMessage(m));
    expect(again.method).toBe(m.method);
    expect(again.uri).toBe(m.uri);
    expect([...again.headers.entries()]).toEqual([...m.headers.entries()]);
    expect(serializeMessage(again).equals(serializeMessage(m))).toBe(true);
  });
});

describe("parseVia / formatVia", () => {
  it("parses protocol, transport, host, port and the RFC 3581 parameters", () => {
    const v = parseVia("SIP/2.0/udp 10.0.0.1:5062;branch=z9hG4bKabc;rport;received=192.0.2.1");
    expect(v).toMatchObject({
      protocol: "SIP/2.0",
      transport: "UDP",
      host: "10.0.0.1",
      port: 5062,
      branch: "z9hG4bKabc",
      rport: true,
      received: "192.0.2.1",
    });
    expect(parseVia("SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKx;rport=5071")).toMatchObject({
      host: "[2001:db8::1]",
      port: 5070,
      rport: 5071,
    });
    expect(parseVia("SIP/2.0/UDP [2001:db8::1];received=2001:db8::9;branch=z9hG4bKy")?.received).toBe(
      "2001:db8::9",
    );
  });

  it("rejects malformed values", () => {
    for (const bad of [
      "",
      "SIP/2.0 UDP host",
      "SIP/2.0/UDP",
      "SIP/2.0/UDP host:99999",
      "SIP/2.0/UDP host;branch=",
      'SIP/2.0/UDP host;branch="z9hG4bK1"',
      "SIP/2.0/UDP host;rport=abc",
      "SIP/2.0/UDP [::1",
      "SIP/2.0/UDP host;;",
    ]) {
      expect(parseVia(bad), bad).toBeUndefined();
    }
  });

  it("formats back, with branch/received/rport fields overriding params", () => {
    const v = parseVia("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport;x=1");
    if (v === undefined) throw new Error("parse failed");
    v.rport = 40000;
    v.received = "203.0.113.7";
    expect(formatVia(v)).toBe(
      "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport=40000;x=1;received=203.0.113.7",
    );
    const ipv6 = parseVia("SIP/2.0/TCP [::1]:5060;branch=z9hG4bKq");
    expect(ipv6 && formatVia(ipv6)).toBe("SIP/2.0/TCP [::1]:5060;branch=z9hG4bKq");
  });
});

describe("parseNameAddr / formatNameAddr", () => {
  it("handles quoted display names with escapes, unquoted names and URI vs header parameters", () => {
    const a = parseNameAddr(
      '"Alice \\"A\\" \\\\ B" <sip:alice@example.com;transport=tcp>;tag=abc;expires=60',
    );
    expect(a).toMatchObject({ displayName: 'Alice "A" \\ B', uri: "sip:alice@example.com;transport=tcp" });
    expect(a?.params.get("tag")).toBe("abc");
    expect(a?.params.get("expires")).toBe("60");
    const b = parseNameAddr("Bob Smith <sip:bob@example.com>");
    expect(b?.displayName).toBe("Bob Smith");
    const c = parseNameAddr("sip:carol@example.com;tag=xyz;lr");
    expect(c?.uri).toBe("sip:carol@example.com");
    expect(c?.params.get("tag")).toBe("xyz");
    expect(c?.params.get("lr")).toBeNull();
    const d = parseNameAddr('<sip:d@x>;+sip.instance="<urn:uuid:1;2>";reg-id=1');
    expect(d?.params.get("+sip.instance")).toBe('"<urn:uuid:1;2>"');
    // addr-spec form whose quoted parameter contains '<' (RFC 5626 instance id): params belong to the header.
    const e = parseNameAddr('sip:201@10.0.0.1:5062;+sip.instance="<urn:uuid:abc>";expires=60');
    expect(e?.uri).toBe("sip:201@10.0.0.1:5062");
    expect(e?.params.get("+sip.instance")).toBe('"<urn:uuid:abc>"');
    expect(e?.displayName).toBeUndefined();
  });

  it("rejects malformed values", () => {
    for (const bad of [
      "",
      "*",
      '"unterminated <sip:a@b>',
      "<sip:a@b",
      "Bad, Name <sip:a@b>",
      "< sip:a@b >",
      "nothing",
    ]) {
      expect(parseNameAddr(bad), bad).toBeUndefined();
    }
  });

  it("formats with quotes escaped and the tag as a header parameter", () => {
    const na = {
      displayName: 'Q "x"',
      uri: "sip:a@b;lr",
      params: new Map<string, string | null>([["tag", "1"]]),
    };
    const text = formatNameAddr(na);
    expect(text).toBe('"Q \\"x\\"" <sip:a@b;lr>;tag=1');
    expect(parseNameAddr(text)).toEqual(na);
    expect(tagOf(text)).toBe("1");
    expect(tagOf('"a;tag=no" <sip:a@b;tag=no>')).toBeUndefined();
    expect(tagOf("sip:a@b ; TAG = yes")).toBe("yes");
  });
});

describe("parseUri / formatUri", () => {
  it("parses sip, sips and tel URIs", () => {
    const u = parseUri(
      "SIP:Alice%20B:se%3Acret@[2001:DB8::1]:5070;transport=TCP;lr;maddr=1.2.3.4?Subject=hi%20there&X=1",
    );
    expect(u).toMatchObject({
      scheme: "sip",
      user: "Alice B",
      password: "se:cret",
      host: "[2001:db8::1]",
      port: 5070,
    });
    expect([...(u?.params ?? [])]).toEqual([
      ["transport", "TCP"],
      ["lr", null],
      ["maddr", "1.2.3.4"],
    ]);
    expect([...(u?.headers ?? [])]).toEqual([
      ["Subject", "hi there"],
      ["X", "1"],
    ]);
    expect(parseUri("sips:example.com")).toMatchObject({ scheme: "sips", host: "example.com" });
    expect(parseUri("sip:+1555@gw;user=phone")?.user).toBe("+1555");
    const tel = parseUri("tel:+1-201-555-0123;phone-context=example.com");
    expect(tel).toMatchObject({ scheme: "tel", user: "+1-201-555-0123", host: "" });
    expect(tel?.params.get("phone-context")).toBe("example.com");
  });

  it("rejects malformed URIs and unknown schemes", () => {
    for (const bad of [
      "",
      "example.com",
      "http://example.com",
      "sip:",
      "sip:user@",
      "sip:host:99999",
      "sip:host:12a",
      "sip:us er@host",
      "sip:user%zz@host",
      "sip:host;a b",
      "sip:[::1",
      "sip:host?noequals",
      "tel:+1 555",
    ]) {
      expect(parseUri(bad), bad).toBeUndefined();
    }
  });

  it("formats with escaping so that parse(format(u)) equals u", () => {
    const u = parseUri("sip:a%40b%3Bc@example.com:5060;x=a%20b?h=%3C1%3E");
    if (u === undefined) throw new Error("parse failed");
    expect(u.user).toBe("a@b;c");
    const text = formatUri(u);
    expect(text).toBe("sip:a%40b;c@example.com:5060;x=a%20b?h=%3C1%3E");
    expect(parseUri(text)).toEqual(u);
  });
});

describe("parseCSeq", () => {
  it("parses number and method, rejecting out-of-range or malformed values", () => {
    expect(parseCSeq("0009 INVITE")).toEqual({ seq: 9, method: "INVITE" });
    expect(parseCSeq("4294967295\tBYE")).toEqual({ seq: 4294967295, method: "BYE" });
    for (const bad of ["4294967296 INVITE", "INVITE", "12", "-1 INVITE", "1 INV ITE", "1INVITE", ""]) {
      expect(parseCSeq(bad), bad).toBeUndefined();
    }
  });
});

describe("createResponse", () => {
  it("copies every Via in order, From, To, Call-ID and CSeq, and adds a To tag only when asked", () => {
    const m = req(
      REGISTER.replace(
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
        "Via: SIP/2.0/UDP p1;branch=z9hG4bK1, SIP/2.0/UDP p2;branch=z9hG4bK2\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK3",
      ),
    );
    const r = createResponse(m, 200, undefined, { toTag: "srv1" });
    expect(r).toMatchObject({ kind: "response", status: 200, reason: "OK", version: "SIP/2.0" });
    expect(r.headers.getAll("via")).toEqual([
      "SIP/2.0/UDP p1;branch=z9hG4bK1",
      "SIP/2.0/UDP p2;branch=z9hG4bK2",
      "SIP/2.0/UDP ua;branch=z9hG4bK3",
    ]);
    expect(r.headers.get("to")).toBe("Bob <sip:bob@example.com>;tag=srv1");
    expect(r.headers.get("from")).toBe(m.headers.get("from"));
    expect(r.headers.get("call-id")).toBe(m.headers.get("call-id"));
    expect(r.headers.get("cseq")).toBe("1826 REGISTER");
    expect(r.headers.has("contact")).toBe(false);
    expect(createResponse(m, 100).headers.get("to")).toBe("Bob <sip:bob@example.com>");
    expect(createResponse(m, 487).reason).toBe("Request Terminated");
    expect(createResponse(m, 299, "Custom").reason).toBe("Custom");

    const tagged = req(
      REGISTER.replace("To: Bob <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=old"),
    );
    expect(createResponse(tagged, 200, undefined, { toTag: "new" }).headers.get("to")).toBe(
      "<sip:bob@example.com>;tag=old",
    );
    const parsedBack = parseMessage(serializeMessage(r));
    expect(parsedBack.ok).toBe(true);
  });
});

describe("identifier generators", () => {
  it("produce unique, well-formed branches, tags and Call-IDs", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const b = newBranch();
      expect(b.startsWith("z9hG4bK")).toBe(true);
      seen.add(b);
      seen.add(newTag());
      seen.add(newCallId());
    }
    expect(seen.size).toBe(30_000);
    expect(newTag()).toMatch(/^[A-Za-z0-9_-]{10}$/);
    expect(newCallId()).toMatch(/^[A-Za-z0-9_-]{20}$/);
    expect(parseVia(`SIP/2.0/UDP h;branch=${newBranch()}`)).toBeDefined();
  });
});
