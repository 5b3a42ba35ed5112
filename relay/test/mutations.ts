// Deterministic generator of mutated SIP messages for the engine's network robustness suite: valid
// requests and responses (fresh Call-ID/branch/tags each, so each is a new transaction), then broken by
// seeded operators: byte flips/inserts/deletes, truncation, header duplication/removal/huge values, bad
// Content-Length, line-ending games, bad start lines, CSeq, Via, URIs, folding, NULs, glued messages.
// Every host in the templates is 127.0.0.1 and no operator writes digits or "maddr", so whatever the engine
// answers goes to loopback only.

import { int, pick, prng, type Rand } from "../src/engine/sip/random.ts";

const token = (r: Rand, n = 10): string => {
  const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let s = "";
  for (let i = 0; i < n; i++) s += chars[int(r, chars.length)];
  return s;
};

const SDP =
  "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

/** A valid message (request or response) with fresh identifiers. `target` is the engine's host:port. */
export function validMessage(r: Rand, target: string, kind?: number): string {
  const branch = `z9hG4bK${token(r, 16)}`;
  const callId = `${token(r, 12)}@127.0.0.1`;
  const ftag = token(r, 8);
  const via = `Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=${branch}`;
  const common = `From: "Fuzz" <sip:fuzz@127.0.0.1>;tag=${ftag}\r\nCall-ID: ${callId}\r\nMax-Forwards: 70\r\n`;
  const k = kind ?? int(r, 9);
  switch (k) {
    case 0:
      return `OPTIONS sip:ping@${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:ping@${target}>\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n`;
    case 1:
      return `REGISTER sip:${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:alice@gosip.test>\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5999>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n`;
    case 2:
      return `REGISTER sip:${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:alice@gosip.test>\r\nCSeq: 2 REGISTER\r\nContact: <sip:alice@127.0.0.1:5999>;expires=60\r\nAuthorization: Digest username="alice", realm="gosip.test", nonce="abc.def", uri="sip:${target}", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"\r\nContent-Length: 0\r\n\r\n`;
    case 3:
    case 4:
      return `INVITE sip:busy@${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:busy@${target}>\r\nCSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.1:5999>\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`;
    case 5:
      return `BYE sip:fuzz@${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:busy@${target}>;tag=${token(r, 6)}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`;
    case 6:
      return `ACK sip:busy@${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:busy@${target}>;tag=${token(r, 6)}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`;
    case 7:
      return `CANCEL sip:busy@${target} SIP/2.0\r\n${via}\r\n${common}To: <sip:busy@${target}>\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n`;
    default:
      return `SIP/2.0 200 OK\r\n${via}\r\n${common}To: <sip:busy@${target}>;tag=${token(r, 6)}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n`;
  }
}

// Bytes an operator may write: no digits and no '.', so an address can never be rewritten into another one.
const NOISE = Buffer.from("\0\r\n\t :;,<>\"'\\/@=?&%#~!*()[]{}|^`$-_+aZqQ\x7f\x80\xc3\xa9\xff\xfe");

function lines(msg: string): { head: string[]; body: string } {
  const end = msg.indexOf("\r\n\r\n");
  const head = (end < 0 ? msg : msg.slice(0, end)).split("\r\n");
  return { head, body: end < 0 ? "" : msg.slice(end + 4) };
}

function join(head: string[], body: string): string {
  return `${head.join("\r\n")}\r\n\r\n${body}`;
}

type Op = (r: Rand, msg: Buffer, target: string) => Buffer;

const textOp =
  (f: (r: Rand, head: string[], body: string, target: string) => string): Op =>
  (r, msg, target) => {
    const { head, body } = lines(msg.toString("latin1"));
    return Buffer.from(f(r, head, body, target), "latin1");
  };

const OPS: Op[] = [
  // byte flips
  (r, m) => {
    const out = Buffer.from(m);
    for (let i = 0, n = 1 + int(r, 8); i < n && out.length > 0; i++)
      out[int(r, out.length)] = pick(r, [...NOISE]);
    return out;
  },
  // insert noise
  (r, m) => {
    const at = int(r, m.length + 1);
    const noise = Buffer.from(Array.from({ length: 1 + int(r, 40) }, () => pick(r, [...NOISE])));
    return Buffer.concat([m.subarray(0, at), noise, m.subarray(at)]);
  },
  // delete a range
  (r, m) => {
    const at = int(r, m.length);
    return Buffer.concat([m.subarray(0, at), m.subarray(Math.min(m.length, at + 1 + int(r, 60)))]);
  },
  // truncate
  (r, m) => m.subarray(0, int(r, m.length)),
  // duplicate a header line many times
  textOp((r, head, body) => {
    const i = 1 + int(r, Math.max(1, head.length - 1));
    const line = head[i] ?? "Via: SIP/2.0/UDP 127.0.0.1:5999";
    const copies = Array.from({ length: pick(r, [2, 10, 100, 1000]) }, () => line);
    return join([...head.slice(0, i), ...copies, ...head.slice(i + 1)], body);
  }),
  // remove a header line (Via, CSeq, Call-ID, From, To included)
  textOp((r, head, body) => {
    const i = 1 + int(r, Math.max(1, head.length - 1));
    return join([...head.slice(0, i), ...head.slice(i + 1)], body);
  }),
  // huge header value
  textOp((r, head, body) => {
    const i = 1 + int(r, Math.max(1, head.length - 1));
    const line = head[i] ?? "X-Fuzz: a";
    const size = pick(r, [1024, 8192, 70_000]);
    head[i] = `${line}${pick(r, ["a", ";p=", ",", " "]).repeat(Math.ceil(size / 2))}`;
    return join(head, body);
  }),
  // wrong Content-Length
  textOp((r, head, body) => {
    const values = [
      "99999999",
      "-1",
      "abc",
      "",
      "4294967296",
      "1e3",
      " 5 5",
      String(body.length + 1 + int(r, 300)),
      "0",
    ];
    const v = pick(r, values);
    return join(
      head.map((h) => (/^(content-length|l)\s*:/i.test(h) ? `Content-Length: ${v}` : h)),
      body,
    );
  }),
  // line-ending games
  (r, m) => {
    const s = m.toString("latin1");
    const mode = int(r, 4);
    const out =
      mode === 0
        ? s.replace(/\r\n/g, "\n")
        : mode === 1
          ? s.replace(/\r\n/g, "\r")
          : mode === 2
            ? `\r\n\r\n${s}`
            : s.replace("\r\n\r\n", "\r\n \r\n\r\n");
    return Buffer.from(out, "latin1");
  },
  // broken start line
  textOp((r, head, body) => {
    head[0] = pick(r, [
      "INVITE",
      "invite sip:x@127.0.0.1 SIP/2.0",
      "OPTIONS sip:x@127.0.0.1 SIP/3.0",
      "OPTIONS  sip:x@127.0.0.1  SIP/2.0 ",
      "SIP/2.0 OK",
      "SIP/2.0 2000 OK",
      "SIP/2.0 099 Weird",
      "SIP/2.0",
      "",
      " OPTIONS sip:x@127.0.0.1 SIP/2.0",
      "NEWMETHOD sip:x@127.0.0.1 SIP/2.0",
      `${"A".repeat(5000)} sip:x@127.0.0.1 SIP/2.0`,
      "OPTIONS <sip:x@127.0.0.1> SIP/2.0",
      "OPTIONS sip:x@127.0.0.1;lr;;;=;=x SIP/2.0",
      "OPTIONS sip:%zz%00@127.0.0.1 SIP/2.0",
      "OPTIONS tel:+abc SIP/2.0",
      "OPTIONS sip:@ SIP/2.0",
    ]);
    return join(head, body);
  }),
  // bad CSeq
  textOp((r, head, body) => {
    const v = pick(r, [
      "",
      "abc INVITE",
      "99999999999999999999 INVITE",
      "1",
      "1 BYE",
      "-1 OPTIONS",
      "1  ",
      "1 INVITE extra",
    ]);
    return join(
      head.map((h) => (/^cseq\s*:/i.test(h) ? `CSeq: ${v}` : h)),
      body,
    );
  }),
  // bad Via
  textOp((r, head, body) => {
    const v = pick(r, [
      "SIP/2.0/UDP",
      "SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bKx",
      "SIP/2.0/UDP 127.0.0.1:5999",
      "SIP/2.0/UDP 127.0.0.1:5999;branch=",
      "SIP/2.0/XYZ 127.0.0.1:5999;branch=z9hG4bKx",
      "SIP/2.0/UDP [::1:5999;branch=z9hG4bKx",
      "SIP/2.0/UDP 127.0.0.1:5999;rport=abc;branch=z9hG4bKx",
      "SIP/2.0/UDP 127.0.0.1:-1;branch=z9hG4bKx",
      "garbage",
      "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx, ,,",
    ]);
    return join(
      head.map((h) => (/^(via|v)\s*:/i.test(h) ? `Via: ${v}` : h)),
      body,
    );
  }),
  // bad From/To/Contact
  textOp((r, head, body) => {
    const v = pick(r, [
      "<sip:x@127.0.0.1",
      '"unterminated <sip:x@127.0.0.1>',
      "sip:x@127.0.0.1;tag=a;tag=b",
      "<>",
      "*",
      "<sip:x@127.0.0.1>;tag",
      "\u00e9\u00e9 <sip:\u00e9@127.0.0.1>;tag=x",
      "<sip:x@127.0.0.1>;expires=abc",
    ]);
    const name = pick(r, ["From", "To", "Contact"]);
    const re = new RegExp(`^(${name}|${name[0]})\\s*:`, "i");
    return join(
      head.map((h) => (re.test(h) ? `${name}: ${v}` : h)),
      body,
    );
  }),
  // header folding and odd whitespace
  textOp((r, head, body) => {
    const i = 1 + int(r, Math.max(1, head.length - 1));
    const line = head[i] ?? "";
    const colon = line.indexOf(":");
    head[i] = colon > 0 ? `${line.slice(0, colon)} \t:\r\n  \t${line.slice(colon + 1)}` : `${line}\r\n\t`;
    return join(head, body);
  }),
  // unknown/compact headers and a header without colon
  textOp((r, head, body) => {
    head.splice(
      1 + int(r, head.length),
      0,
      pick(r, ["NoColonHeader", ": empty name", "X-\u00ff: \u00ff", "k: unknown", "Require: foo, bar"]),
    );
    return join(head, body);
  }),
  // binary/NUL body
  textOp((_r, head, body) => join(head, `${body}\0\0\xff\xfe`)),
  // two messages glued in one datagram / stream chunk
  (r, m, target) => Buffer.concat([m, Buffer.from(validMessage(r, target), "latin1")]),
];

/** Applies 1-3 random operators to a fresh valid message. */
export function mutate(r: Rand, target: string): Buffer {
  let msg: Buffer = Buffer.from(validMessage(r, target), "latin1");
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) msg = pick(r, OPS)(r, msg, target);
  return msg;
}

/** `count` deterministic mutations of valid messages addressed to `target` (host:port). */
export function* mutations(seed: number, count: number, target: string): Generator<Buffer> {
  const r = prng(seed);
  for (let i = 0; i < count; i++) yield mutate(r, target);
}
