// Messages shaped like what deployed phones and Twilio send (headers, parameter styles and quirks as commonly
// seen; addresses and ids made up). The parser must accept every one of them: a false rejection means a phone that
// cannot register or a call that cannot be set up.

import { describe, expect, it } from "vitest";
import { parseMessage, parseNameAddr, parseUri, parseVia, serializeMessage } from "./message.ts";

function wire(lines: string[], body = ""): Buffer {
  return Buffer.from(`${lines.join("\r\n")}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

const SDP =
  "v=0\r\no=- 1 1 IN IP4 192.168.1.50\r\ns=-\r\nc=IN IP4 192.168.1.50\r\nt=0 0\r\nm=audio 11780 RTP/AVP 0 101\r\n";

const DEVICES: Record<string, Buffer> = {
  "desk phone REGISTER (instance id, reg-id, Allow-Events)": wire([
    "REGISTER sip:pbx.example.com:5060 SIP/2.0",
    "Via: SIP/2.0/UDP 192.168.1.50:5062;branch=z9hG4bK1375634861;rport",
    'From: "201" <sip:201@pbx.example.com:5060>;tag=1436451373',
    'To: "201" <sip:201@pbx.example.com:5060>',
    "Call-ID: 1062596155@192.168.1.50",
    "CSeq: 1 REGISTER",
    'Contact: <sip:201@192.168.1.50:5062>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-1000-8000-001565a1b2c3>"',
    "Max-Forwards: 70",
    "User-Agent: Yealink SIP-T46S 66.86.0.15",
    "Expires: 3600",
    "Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, UPDATE, MESSAGE",
    "Allow-Events: talk,hold,conference,refer,check-sync",
  ]),
  "softphone REGISTER with digest answer and rinstance": wire([
    "REGISTER sip:pbx.example.com;transport=UDP SIP/2.0",
    "Via: SIP/2.0/UDP 10.0.0.23:52740;branch=z9hG4bK-524287-1---a1b2c3d4e5f60718;rport",
    "Max-Forwards: 70",
    "Contact: <sip:202@10.0.0.23:52740;rinstance=0f5b2b1c9d8e7f6a;transport=UDP>",
    "To: <sip:202@pbx.example.com;transport=UDP>",
    "From: <sip:202@pbx.example.com;transport=UDP>;tag=d4c3b2a1",
    "Call-ID: ZmFkYjk3YWJjMDA4ZjQ5NzQ1NzY2ZWZhMGI0NWY3Mzc.",
    "CSeq: 2 REGISTER",
    "Expires: 60",
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE",
    "Supported: replaces, norefersub, extended-refer, timer, sec-agree, outbound, path, X-cisco-serviceuri",
    "User-Agent: Z 5.6.1 v2.10.19.9",
    'Authorization: Digest username="202",realm="gosip",nonce="5f0c1d2e3f4a",uri="sip:pbx.example.com;transport=UDP",response="0a4f113b2b3c4d5e6f708192a3b4c5d6",cnonce="a1b2",nc=00000001,qop=auth,algorithm=MD5',
    "Allow-Events: presence, kpml, talk",
  ]),
  "open-source softphone REGISTER (addr-spec contact with instance, feature tags, outbound)": wire([
    "REGISTER sip:pbx.example.com SIP/2.0",
    "Via: SIP/2.0/TCP 192.168.1.77:40321;alias;branch=z9hG4bK.Xyz9AbCdE;rport",
    "From: <sip:203@pbx.example.com>;tag=Ab3dEf7Gh",
    "To: sip:203@pbx.example.com",
    "CSeq: 20 REGISTER",
    "Call-ID: 3UTn1Qx~Mz",
    "Max-Forwards: 70",
    "Supported: replaces, outbound, gruu, path",
    'Contact: sip:203@192.168.1.77:40321;transport=tcp;+org.linphone.specs="ephemeral/1.1,groupchat/1.1,lime";+sip.instance="<urn:uuid:7c3e2d1a-0b9f-4e8d-a7c6-5b4a39281706>"',
    "Expires: 600",
    "User-Agent: Linphone-Desktop/5.2.0 (belle-sip/5.2.0)",
  ]),
  "conference phone INVITE (methods list in a quoted Contact param, Remote-Party-ID, P-Preferred-Identity)":
    wire(
      [
        "INVITE sip:7000@pbx.example.com;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.60;branch=z9hG4bK8f7a6b5c4d3e2f1a;rport",
        'From: "Conference Room" <sip:204@pbx.example.com>;tag=B1C2D3E4-F5A6B7C8',
        "To: <sip:7000@pbx.example.com;user=phone>",
        "CSeq: 1 INVITE",
        "Call-ID: 9a8b7c6d-5e4f3a2b-1c0d9e8f@192.168.1.60",
        'Contact: <sip:204@192.168.1.60>;methods="INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, UPDATE, REFER"',
        "User-Agent: PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094",
        "Accept-Language: en",
        'Remote-Party-ID: "Conference Room" <sip:204@pbx.example.com>;party=calling;screen=no;privacy=off',
        "P-Preferred-Identity: <sip:204@pbx.example.com>",
        "Supported: 100rel,replaces",
        "Allow-Events: conference,talk,hold",
        "Max-Forwards: 70",
        "Content-Type: application/sdp",
      ],
      SDP,
    ),
  "Twilio inbound INVITE (Record-Route with twnat, Identity, X-Twilio headers, Diversion)": wire(
    [
      "INVITE sip:+15005550006@relay.example.net:5060 SIP/2.0",
      "Record-Route: <sip:54.172.60.1:5060;lr;r2=on;twnat=sip:203.0.113.10:5060>",
      "Record-Route: <sip:172.25.10.211:5060;lr;r2=on>",
      "Via: SIP/2.0/UDP 54.172.60.1:5060;branch=z9hG4bK0d3f.1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d.0",
      "Via: SIP/2.0/UDP 172.25.10.211:5060;rport=5060;branch=z9hG4bK8Fmp1Qr2St3Uv",
      "Max-Forwards: 67",
      'From: "+15005550001" <sip:+15005550001@twilio.com>;tag=51672180_6772d868_a1b2c3d4-e5f6-7a8b-9c0d-1e2f3a4b5c6d',
      "To: <sip:+15005550006@relay.example.net>",
      "Call-ID: 8c4b9a0d3f1e2a5b6c7d8e9f0a1b2c3d@0.0.0.0",
      "CSeq: 1 INVITE",
      "Contact: <sip:+15005550001@54.172.60.1:5060;transport=udp>",
      "Allow: INVITE,ACK,CANCEL,OPTIONS,BYE",
      "Diversion: <sip:+15005550009@twilio.com>;reason=unconditional;counter=1",
      "Identity: eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0In0.eyJhdHRlc3QiOiJBIn0.c2lnbmF0dXJl;info=<https://cert.example.org/cert.pem>;alg=ES256;ppt=shaken",
      "X-Twilio-AccountSid: AC00000000000000000000000000000000",
      "X-Twilio-CallSid: CA00000000000000000000000000000000",
      "User-Agent: Twilio Gateway",
      "Content-Type: application/sdp",
    ],
    SDP,
  ),
  "Twilio 407 challenge to an outbound INVITE": wire([
    "SIP/2.0 407 Proxy Authentication required",
    "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKnashds8;rport=5060;received=203.0.113.10",
    "From: <sip:+15005550006@example.sip.twilio.com>;tag=fromtag1",
    "To: <sip:+15005550001@example.sip.twilio.com>;tag=ab12cd34",
    "Call-ID: out-call-1@203.0.113.10",
    "CSeq: 1 INVITE",
    'Proxy-Authenticate: Digest realm="sip.twilio.com",nonce="aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",opaque="1a2b3c",qop="auth"',
    "Server: Twilio Gateway",
  ]),
  "ATA REGISTER over TCP with IPv6 Via and received/rport already set": wire([
    "REGISTER sip:[2001:db8::10] SIP/2.0",
    "Via: SIP/2.0/TCP [2001:db8::50]:5060;branch=z9hG4bK-d8754z-c2a1;rport=40000;received=2001:db8::50",
    "Max-Forwards: 70",
    "Contact: <sip:205@[2001:db8::50]:5060;transport=tcp>;expires=300",
    "To: <sip:205@[2001:db8::10]>",
    "From: <sip:205@[2001:db8::10]>;tag=7e1a",
    "Call-ID: 4e2a9c1b@2001:db8::50",
    "CSeq: 77 REGISTER",
    "User-Agent: Cisco/SPA112-1.4.1(SR5)",
  ]),
};

describe("messages from deployed devices", () => {
  it.each(Object.entries(DEVICES))("accepts: %s", (_name, data) => {
    const r = parseMessage(data);
    if (!r.ok) throw new Error(`rejected: ${r.reason}`);
    const m = r.message;
    for (const v of m.headers.getAll("via")) expect(parseVia(v), v).toBeDefined();
    for (const c of m.headers.getAll("contact")) {
      const na = parseNameAddr(c);
      expect(na, c).toBeDefined();
      expect(parseUri(na?.uri ?? ""), c).toBeDefined();
    }
    for (const h of ["from", "to"])
      expect(parseUri(parseNameAddr(m.headers.get(h) ?? "")?.uri ?? "")).toBeDefined();
    if (m.kind === "request") expect(parseUri(m.uri)).toBeDefined();
    expect(parseMessage(serializeMessage(m)).ok).toBe(true);
  });

  it("reads the values a registrar needs from them", () => {
    const r = parseMessage(
      DEVICES["open-source softphone REGISTER (addr-spec contact with instance, feature tags, outbound)"] ??
        "",
    );
    if (!r.ok) throw new Error(r.reason);
    const contact = parseNameAddr(r.message.headers.top("contact") ?? "");
    // addr-spec form: every ';' parameter is a header parameter (RFC 3261 §20.10), transport included.
    expect(contact?.uri).toBe("sip:203@192.168.1.77:40321");
    expect(contact?.params.get("transport")).toBe("tcp");
    expect(contact?.params.get("+sip.instance")).toBe('"<urn:uuid:7c3e2d1a-0b9f-4e8d-a7c6-5b4a39281706>"');
    const via = parseVia(r.message.headers.top("via") ?? "");
    expect(via).toMatchObject({ transport: "TCP", host: "192.168.1.77", port: 40321, rport: true });
    expect(via?.params.get("alias")).toBeNull();
    const ipv6 = parseMessage(
      DEVICES["ATA REGISTER over TCP with IPv6 Via and received/rport already set"] ?? "",
    );
    if (!ipv6.ok) throw new Error(ipv6.reason);
    expect(parseVia(ipv6.message.headers.top("via") ?? "")).toMatchObject({
      host: "[2001:db8::50]",
      port: 5060,
      rport: 40000,
      received: "2001:db8::50",
    });
    expect(ipv6.message.kind === "request" && parseUri(ipv6.message.uri)?.host).toBe("[2001:db8::10]");
  });
});
