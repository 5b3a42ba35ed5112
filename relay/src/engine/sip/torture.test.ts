// RFC 4475 torture messages (fixtures/torture/*.txt): every valid message parses with the values the RFC calls
// out; every invalid one is rejected (with a respondable request when the RFC expects a 400/505 answer) or, where
// the RFC allows it, accepted tolerantly. The per-message decision and its reason is TORTURE_EXPECTED in
// fixtures/torture.ts. parseMessage never throws on any of them.

import { describe, expect, it } from "vitest";
import { TORTURE_EXPECTED, tortureMessage, tortureNames } from "./fixtures/torture.ts";
import {
  type ParseResult,
  parseCSeq,
  parseMessage,
  parseNameAddr,
  parseUri,
  parseVia,
  type SipMessage,
  type SipRequest,
  type SipResponse,
  serializeMessage,
} from "./message.ts";

function parsed(name: string): SipMessage {
  const r = parseMessage(tortureMessage(name));
  if (!r.ok) throw new Error(`${name} should parse but failed: ${r.reason}`);
  return r.message;
}

function request(name: string): SipRequest {
  const m = parsed(name);
  if (m.kind !== "request") throw new Error(`${name} is not a request`);
  return m;
}

function response(name: string): SipResponse {
  const m = parsed(name);
  if (m.kind !== "response") throw new Error(`${name} is not a response`);
  return m;
}

function rejected(name: string): Extract<ParseResult, { ok: false }> {
  const r = parseMessage(tortureMessage(name));
  if (r.ok) throw new Error(`${name} should be rejected`);
  return r;
}

const byOutcome = (o: string) =>
  Object.entries(TORTURE_EXPECTED)
    .filter(([, e]) => e.outcome === o)
    .map(([name, e]) => [name, e] as const);

describe("RFC 4475 torture corpus", () => {
  it("has an expectation for every fixture", () => {
    expect(Object.keys(TORTURE_EXPECTED).sort()).toEqual(tortureNames());
  });

  it.each(byOutcome("accept"))("%s is accepted and survives a serialize/parse round trip", (name) => {
    const m = parsed(name);
    const again = parseMessage(serializeMessage(m));
    expect(again.ok).toBe(true);
    if (!again.ok) return;
    // The serializer always writes a Content-Length matching the body (inv2543 arrived without one).
    const withoutLength = (msg: SipMessage) =>
      [...msg.headers.entries()].filter(([n]) => !/^(content-length|l)$/i.test(n));
    expect(withoutLength(again.message)).toEqual(withoutLength(m));
    expect(again.message.headers.get("content-length")).toBe(String(m.body.length));
    expect(again.message.body.equals(m.body)).toBe(true);
  });

  it.each(byOutcome("respond"))("%s is rejected with a respondable request", (name, want) => {
    const r = rejected(name);
    expect(r.reason).toMatch(want.reason ?? /./);
    expect(r.status).toBe(want.status);
    expect(r.respondable?.kind).toBe("request");
    // The stack copies these into its error response (insuf has no Call-ID: its Via names it).
    const h = r.respondable?.headers;
    expect(h?.get("call-id") ?? h?.top("via")).toContain(name);
    expect(r.respondable?.headers.getAll("via").length).toBeGreaterThan(0);
  });

  it.each(byOutcome("drop"))("%s is rejected without a respondable request", (name, want) => {
    const r = rejected(name);
    expect(r.reason).toMatch(want.reason ?? /./);
    expect(r.respondable).toBeUndefined();
  });
});

describe("RFC 4475 valid messages carry the expected values", () => {
  it("wsinv: folding, LWS, compact forms, mixed case, leading zeros", () => {
    const m = request("wsinv");
    expect(m.method).toBe("INVITE");
    expect(m.uri).toBe("sip:vivekg@chair-dnrc.example.com;unknownparam");
    const h = m.headers;
    const to = parseNameAddr(h.get("To") ?? "");
    expect(to?.uri).toBe("sip:vivekg@chair-dnrc.example.com");
    expect(to?.params.get("tag")).toBe("1918181833n");
    const from = parseNameAddr(h.get("f") ?? "");
    expect(from?.displayName).toBe('J Rosenberg \\"');
    expect(from?.params.get("tag")).toBe("98asjd8");
    expect(Number(h.get("max-forwards"))).toBe(68);
    expect(parseCSeq(h.get("CSEQ") ?? "")).toEqual({ seq: 9, method: "INVITE" });
    expect(h.get("subject")).toBe("");
    expect(h.get("NewFangledHeader")).toBe("newfangled value continued newfangled value");
    expect(h.get("unknownheaderwithunusualvalue")).toBe(";;,,;;,;");
    const vias = h.getAll("via").map((v) => parseVia(v));
    expect(vias.map((v) => [v?.transport, v?.host, v?.branch])).toEqual([
      ["UDP", "192.0.2.2", "390skdjuw"],
      ["TCP", "spindle.example.com", "z9hG4bK9ikj8"],
      ["UDP", "192.168.255.111", "z9hG4bK30239"],
    ]);
    const contact = parseNameAddr(h.getAll("contact")[0] ?? "");
    expect(contact?.displayName).toBe('Quoted string ""');
    expect(contact?.params.get("newparam")).toBe("newvalue");
    expect(contact?.params.get("secondparam")).toBeNull();
    expect(contact?.params.get("q")).toBe("0.33");
    expect(parseNameAddr(h.get("route") ?? "")?.uri).toBe(
      "sip:services.example.com;lr;unknownwith=value;unknown-no-value",
    );
    expect(m.body.length).toBe(150);
  });

  it("intmeth: unusual token characters, quoted-pair NUL, UTF-8 values", () => {
    const m = request("intmeth");
    expect(m.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    const uri = parseUri(m.uri);
    expect(uri?.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    expect(uri?.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    expect(uri?.host).toBe("example.com");
    expect(parseNameAddr(m.headers.get("to") ?? "")?.displayName).toBe("BEL:\x07 NUL:\x00 DEL:\x7f");
    const from = parseNameAddr(m.headers.get("from") ?? "");
    expect(from?.displayName).toBe("token1~` token2'+_ token3*%!.-");
    expect(from?.params.get("tag")).toBe("_token~1'+`*%!-.");
    expect(from?.params.get("fromparam''~+*_!.-%")).toBe('"работающий"');
    expect(m.headers.get("call-id")).toBe("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    expect(parseVia(m.headers.get("via") ?? "")?.branch).toBe("z9hG4bK-.!%66*_+`'~");
    expect(m.headers.get("extensionHeader-!.%*+_`'~")).toBe("\uFEFF大停電");
  });

  it("esc01 / escnull / esc02: %-escapes only where the grammar has them", () => {
    const esc01 = request("esc01");
    expect(parseUri(esc01.uri)?.user).toBe("sips:user@example.com");
    expect(parseUri(parseNameAddr(esc01.headers.get("to") ?? "")?.uri ?? "")?.user).toBe("user");
    expect(parseUri(parseNameAddr(esc01.headers.get("from") ?? "")?.uri ?? "")?.user).toBe("I have spaces");
    const c = parseUri(parseNameAddr(esc01.headers.get("contact") ?? "")?.uri ?? "");
    expect(c?.user).toBe("caller");
    expect(c?.params.get("lr")).toBeNull();
    // Unescaping is not recursive: "v%61lue%25%34%31" is "value%41", not "valueA".
    expect(c?.params.get("name")).toBe("value%41");

    const escnull = request("escnull");
    expect(parseUri(parseNameAddr(escnull.headers.get("to") ?? "")?.uri ?? "")?.user).toBe("null-\0-null");
    const contacts = escnull.headers
      .getAll("contact")
      .map((v) => parseUri(parseNameAddr(v)?.uri ?? "")?.user);
    expect(contacts).toEqual(["\0", "\0\0"]);
    expect(escnull.headers.get("content-length")).toBe("0");

    const esc02 = request("esc02");
    expect(esc02.method).toBe("RE%47IST%45R");
    expect(parseNameAddr(esc02.headers.get("to") ?? "")?.displayName).toBe("%Z%45");
    expect(esc02.headers.getAll("contact")).toEqual([
      "<sip:alias1@host1.example.com>",
      "<sip:alias3@host3.example.com>",
    ]);
    expect(esc02.headers.get("C%6Fntact")).toBe("<sip:alias2@host2.example.com>");
    expect(parseVia(esc02.headers.get("via") ?? "")?.branch).toBe("z9hG4bK209%fzsnel234");
  });

  it("lwsdisp: display name directly followed by '<'", () => {
    const from = parseNameAddr(request("lwsdisp").headers.get("from") ?? "");
    expect(from).toMatchObject({ displayName: "caller", uri: "sip:caller@example.com" });
    expect(from?.params.get("tag")).toBe("323");
  });

  it("longreq: long values and 34 Via values in every name spelling", () => {
    const m = request("longreq");
    const vias = m.headers.getAll("via").map((v) => parseVia(v));
    expect(vias).toHaveLength(34);
    expect(vias[0]?.host).toBe("sip33.example.com");
    expect(vias[32]?.host).toBe("sip1.example.com");
    expect(vias[33]?.received).toBe("192.0.2.5");
    expect(vias[33]?.branch).toBe(`very${"long".repeat(50)}branchvalue`);
    expect(parseNameAddr(m.headers.get("from") ?? "")?.params.get("tag")).toBe(`12${"982".repeat(50)}424`);
    expect(parseUri(parseNameAddr(m.headers.get("to") ?? "")?.uri ?? "")?.port).toBe(6000);
    expect(m.headers.get("call-id")).toBe(`longreq.one${"really".repeat(20)}longcallid`);
    expect(m.body.length).toBe(150);
  });

  it("dblreq: bytes after Content-Length in a datagram are ignored", () => {
    const m = request("dblreq");
    expect(m.method).toBe("REGISTER");
    expect(m.body.length).toBe(0);
    expect(m.headers.get("call-id")).toBe("dblreq.0ha0isndaksdj99sdfafnl3lk233412");
  });

  it("semiuri: ';' in the user part, folded Accept list", () => {
    const m = request("semiuri");
    expect(parseUri(m.uri)).toMatchObject({ user: "user;par=u@example.net", host: "example.com" });
    expect(parseUri(m.uri)?.params.size).toBe(0);
    expect(m.headers.getAll("accept")).toHaveLength(6);
  });

  it("transports: every Via transport token", () => {
    const t = request("transports")
      .headers.getAll("via")
      .map((v) => parseVia(v)?.transport);
    expect(t).toEqual(["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
  });

  it("mpart01: binary multipart body is framed and kept byte-exact", () => {
    const raw = tortureMessage("mpart01");
    const m = request("mpart01");
    expect(m.body.length).toBe(Number(m.headers.get("content-length")));
    expect(m.body.equals(raw.subarray(raw.length - m.body.length))).toBe(true);
    expect(m.body.includes(Buffer.from([0, 1, 2, 3]))).toBe(true);
    const out = serializeMessage(m);
    expect(out.subarray(out.length - m.body.length).equals(m.body)).toBe(true);
  });

  it("unreason / noreason: UTF-8 and empty reason phrases", () => {
    const u = response("unreason");
    expect(u.status).toBe(200);
    expect(u.reason).toBe("= 2**3 * 5**2 но сто девяносто девять - простое");
    const n = response("noreason");
    expect(n.status).toBe(100);
    expect(n.reason).toBe("");
  });

  it("transaction-layer oddities parse (TU decides): unknown schemes, bad branch, Max-Forwards 0", () => {
    expect(request("unkscm").uri).toBe("nobodyKnowsThisScheme:totallyopaquecontent");
    expect(parseUri(request("unkscm").uri)).toBeUndefined();
    expect(request("novelsc").uri).toBe("soap.beep://192.0.2.103:3002");
    expect(parseVia(request("badbranch").headers.get("via") ?? "")?.branch).toBe("z9hG4bK");
    expect(request("zeromf").headers.get("max-forwards")).toBe("0");
    expect(parseNameAddr(request("unksm2").headers.get("to") ?? "")?.uri).toBe("isbn:2983792873");
    const cparam = parseNameAddr(request("cparam01").headers.get("contact") ?? "");
    // addr-spec form: the parameter belongs to the header, not the URI.
    expect(cparam?.uri).toBe("sip:+19725552222@gw1.example.net");
    expect(cparam?.params.has("unknownparam")).toBe(true);
    const regescrt = parseUri(parseNameAddr(request("regescrt").headers.get("m") ?? "")?.uri ?? "");
    expect(regescrt?.headers.get("Route")).toBe("<sip:sip.example.com>");
    expect(request("regaut01").headers.get("authorization")).toBe("NoOneKnowsThisScheme opaque-data=here");
    const inv2543 = request("inv2543");
    expect(parseVia(inv2543.headers.get("via") ?? "")?.branch).toBeUndefined();
    expect(inv2543.body.toString()).toContain("m=audio 49217 RTP/AVP 0");
    expect(response("bcast").headers.getAll("via")).toHaveLength(2);
    expect(request("bext01").headers.getAll("require")).toEqual([
      "nothingSupportsThis",
      "nothingSupportsThisEither",
    ]);
  });
});
