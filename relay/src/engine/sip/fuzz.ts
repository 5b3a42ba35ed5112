// Deterministic mutation corpus for the SIP parser: valid base messages altered by byte flips, truncations,
// duplicated/removed/swapped lines, huge values, random header names, bad numbers, NULs, invalid UTF-8, odd
// whitespace and line endings. The same (seed, count) always yields the same byte strings, so the unit fuzz test and
// the verification engineer's network replay (UDP and TCP against the running engine) use one corpus.
import { int, pick, prng, type Rand } from "./random.ts";

/** One corpus entry. `ops` names the mutation operators applied, in order (for reproducing failures). */
export interface Mutation {
  index: number;
  base: string;
  ops: string[];
  data: Buffer;
}

const SDP = [
  "v=0",
  "o=- 20518 0 IN IP4 127.0.0.1",
  "s=-",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "m=audio 11796 RTP/AVP 0 8 101",
  "a=rtpmap:0 PCMU/8000",
  "a=rtpmap:101 telephone-event/8000",
  "a=sendrecv",
  "",
].join("\r\n");

function withBody(lines: string[], body: string | Buffer): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\nContent-Length: ${b.length}\r\n\r\n`), b]);
}

/** Valid messages the mutations start from (all parse with parseMessage). */
export const FUZZ_BASES: ReadonlyArray<{ name: string; data: Buffer }> = [
  {
    name: "register",
    data: withBody(
      [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz-1;rport",
        "Max-Forwards: 70",
        "From: <sip:201@127.0.0.1>;tag=fz1",
        "To: <sip:201@127.0.0.1>",
        "Call-ID: fuzz-register-1@127.0.0.1",
        "CSeq: 1 REGISTER",
        'Contact: <sip:201@127.0.0.1:5070;transport=udp>;+sip.instance="<urn:uuid:0-1>";expires=3600',
        "Expires: 3600",
        "User-Agent: fuzz/1.0",
      ],
      "",
    ),
  },
  {
    name: "register-auth",
    data: withBody(
      [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        "v: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-fuzz-2",
        'f: "Desk 201" <sip:201@127.0.0.1>;tag=fz2',
        "t: <sip:201@127.0.0.1>",
        "i: fuzz-register-2",
        "CSeq: 2 REGISTER",
        "m: <sip:201@127.0.0.1:5070>",
        'Authorization: Digest username="201", realm="gosip", nonce="abc,def", uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="x"',
      ],
      "",
    ),
  },
  {
    name: "invite",
    data: withBody(
      [
        "INVITE sip:+15551234567@127.0.0.1:5060;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz-3;rport",
        "Via: SIP/2.0/UDP [::1]:5080;branch=z9hG4bK-fuzz-3b;received=::1",
        "Max-Forwards: 70",
        'From: "Office \\"201\\"" <sip:201@127.0.0.1>;tag=fz3',
        "To: <sip:+15551234567@127.0.0.1>",
        "Call-ID: fuzz-invite-3@127.0.0.1",
        "CSeq: 10 INVITE",
        "Contact: <sip:201@127.0.0.1:5070>",
        "Record-Route: <sip:127.0.0.1:5090;lr>, <sip:[::1]:5091;lr>",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
        "Supported: replaces, timer",
        "Content-Type: application/sdp",
      ],
      SDP,
    ),
  },
  {
    name: "response-401",
    data: withBody(
      [
        "SIP/2.0 401 Unauthorized",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz-4;rport=5070;received=127.0.0.1",
        "From: <sip:201@127.0.0.1>;tag=fz4",
        "To: <sip:201@127.0.0.1>;tag=srv4",
        "Call-ID: fuzz-401-4",
        "CSeq: 1 REGISTER",
        'WWW-Authenticate: Digest realm="gosip", nonce="5f0c1d2e", algorithm=MD5, qop="auth"',
      ],
      "",
    ),
  },
  {
    name: "response-200-sdp",
    data: withBody(
      [
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz-5",
        "Record-Route: <sip:127.0.0.1:5090;lr>",
        "From: <sip:201@127.0.0.1>;tag=fz5",
        "To: <sip:202@127.0.0.1>;tag=srv5",
        "Call-ID: fuzz-200-5",
        "CSeq: 10 INVITE",
        "Contact: <sip:202@127.0.0.1:5072>",
        "Content-Type: application/sdp",
      ],
      SDP,
    ),
  },
  {
    name: "options",
    data: withBody(
      [
        "OPTIONS sip:ping@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz-6",
        "Max-Forwards: 70",
        "From: sip:fuzz@127.0.0.1;tag=fz6",
        "To: sip:ping@127.0.0.1",
        "Call-ID: fuzz-options-6",
        "CSeq: 6 OPTIONS",
        "Accept: application/sdp",
      ],
      "",
    ),
  },
  {
    name: "bye",
    data: withBody(
      [
        "BYE sip:202@127.0.0.1:5072 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz-7",
        "Max-Forwards: 70",
        "Route: <sip:127.0.0.1:5090;lr>",
        "From: <sip:201@127.0.0.1>;tag=fz7",
        "To: <sip:202@127.0.0.1>;tag=srv7",
        "Call-ID: fuzz-bye-7",
        "CSeq: 11 BYE",
      ],
      "",
    ),
  },
  {
    name: "message-binary",
    data: withBody(
      [
        "MESSAGE sip:202@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-fuzz-8",
        "Max-Forwards: 70",
        "From: <sip:201@127.0.0.1>;tag=fz8",
        "To: <sip:202@127.0.0.1>",
        "Call-ID: fuzz-message-8",
        "CSeq: 1 MESSAGE",
        "Content-Type: application/octet-stream",
      ],
      Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) & 255)),
    ),
  },
];

const INTERESTING_BYTES = [
  0x00, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x2c, 0x22, 0x3c, 0x3e, 0x25, 0x5c, 0x80, 0xc0,
];
const BAD_NUMBERS = [
  "-1",
  "0",
  "00000000000000000000000001",
  "4294967296",
  "36893488147419103232",
  "99999999999999999999999999999999",
  "1e5",
  "0x10",
  "",
  " 12 ",
  "NaN",
  "12abc",
  "+5",
  "65536",
  "1.5",
];
const BAD_UTF8 = [
  [0xc3, 0x28],
  [0xff],
  [0xc0, 0x80],
  [0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
];
const NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~ :;,\"<>@\t";

function lines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const i = b.indexOf(10, pos);
    if (i === -1) {
      out.push(b.subarray(pos));
      return out;
    }
    out.push(b.subarray(pos, i + 1));
    pos = i + 1;
  }
}

/** Header lines are those between the start line and the first empty line. */
function headerRange(ls: Buffer[]): [number, number] {
  let end = 1;
  while (end < ls.length && (ls[end]?.length ?? 0) > 2) end++;
  return [1, Math.max(1, end)];
}

/**
 * Rewrites one random header line with `edit` (which returns undefined to leave the message as it is).
 * The random draws happen in a fixed order, so the corpus stays the same for a seed.
 */
function editHeaderLine(b: Buffer, r: Rand, edit: (line: Buffer) => Buffer | undefined): Buffer {
  const ls = lines(b);
  const [s, e] = headerRange(ls);
  const i = s + int(r, e - s);
  const line = ls[i];
  const edited = line === undefined ? undefined : edit(line);
  if (edited === undefined) return b;
  ls[i] = edited;
  return Buffer.concat(ls);
}

function replaceInLine(line: Buffer, from: number, text: Buffer): Buffer {
  return Buffer.concat([
    line.subarray(0, from),
    text,
    line.subarray(line.length - (line.at(-2) === 13 ? 2 : 1)),
  ]);
}

const OPS: ReadonlyArray<[string, (b: Buffer, r: Rand) => Buffer]> = [
  [
    "flip-bit",
    (b, r) => {
      const c = Buffer.from(b);
      const i = int(r, c.length);
      c[i] = (c[i] ?? 0) ^ (1 << int(r, 8));
      return c;
    },
  ],
  [
    "set-byte",
    (b, r) => {
      const c = Buffer.from(b);
      c[int(r, c.length)] = r() < 0.7 ? pick(r, INTERESTING_BYTES) : int(r, 256);
      return c;
    },
  ],
  ["truncate", (b, r) => b.subarray(0, int(r, b.length))],
  [
    "duplicate-line",
    (b, r) => {
      const ls = lines(b);
      const i = int(r, ls.length);
      ls.splice(i, 0, ls[i] ?? Buffer.alloc(0));
      return Buffer.concat(ls);
    },
  ],
  [
    "remove-line",
    (b, r) => {
      const ls = lines(b);
      ls.splice(int(r, ls.length), 1);
      return Buffer.concat(ls);
    },
  ],
  [
    "swap-lines",
    (b, r) => {
      const ls = lines(b);
      const i = int(r, ls.length);
      const j = int(r, ls.length);
      const t = ls[i];
      ls[i] = ls[j] ?? Buffer.alloc(0);
      ls[j] = t ?? Buffer.alloc(0);
      return Buffer.concat(ls);
    },
  ],
  [
    "huge-value",
    (b, r) =>
      editHeaderLine(b, r, (line) => {
        const colon = line.indexOf(58);
        const size = pick(r, [1000, 8000, 16_385, 40_000, 70_000]);
        const filler = pick(r, ["a", ";", ",", '"', "<", " ", "%"]).repeat(size);
        return replaceInLine(line, colon === -1 ? 0 : colon + 1, Buffer.from(filler));
      }),
  ],
  [
    "random-header",
    (b, r) => {
      const ls = lines(b);
      const [s, e] = headerRange(ls);
      let name = "";
      const n = 1 + int(r, 20);
      for (let k = 0; k < n; k++) name += NAME_CHARS[int(r, NAME_CHARS.length)];
      ls.splice(s + int(r, e - s + 1), 0, Buffer.from(`${name}: ${r() < 0.5 ? "x" : ""}\r\n`));
      return Buffer.concat(ls);
    },
  ],
  [
    "bad-number",
    (b, r) => {
      const text = b.toString("latin1");
      const targets = [
        /(CSeq: *)(\d+)/i,
        /(Content-Length: *)(\d+)/i,
        /(Max-Forwards: *)(\d+)/i,
        /(SIP\/2\.0 )(\d{3})/,
        /(:)(50\d\d)/,
        /(rport=)(\d+)/,
        /(expires=)(\d+)/,
      ];
      const re = pick(r, targets);
      return Buffer.from(
        text.replace(re, (_m, p: string) => p + pick(r, BAD_NUMBERS)),
        "latin1",
      );
    },
  ],
  [
    "insert-nul",
    (b, r) => {
      const i = int(r, b.length + 1);
      return Buffer.concat([b.subarray(0, i), Buffer.alloc(1 + int(r, 3)), b.subarray(i)]);
    },
  ],
  [
    "invalid-utf8",
    (b, r) => {
      const i = int(r, b.length + 1);
      return Buffer.concat([b.subarray(0, i), Buffer.from(pick(r, BAD_UTF8)), b.subarray(i)]);
    },
  ],
  [
    "whitespace",
    (b, r) => {
      const i = int(r, b.length + 1);
      const ws = pick(r, [" ", "  ", "\t", "\r\n ", "\r\n\t", "\r\n", "\n", "\r", " \r\n"]);
      return Buffer.concat([b.subarray(0, i), Buffer.from(ws), b.subarray(i)]);
    },
  ],
  [
    "line-endings",
    (b, r) => {
      const text = b.toString("latin1");
      const to = pick(r, ["\n", "\r", "\n\r", "\r\r\n", ""]);
      return Buffer.from(r() < 0.5 ? text.replaceAll("\r\n", to) : text.replace("\r\n", to), "latin1");
    },
  ],
  [
    "many-headers",
    (b, r) => {
      const ls = lines(b);
      const [s] = headerRange(ls);
      const n = pick(r, [100, 255, 257, 1000]);
      const line = Buffer.from(
        pick(r, ["Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n", "X-A: b\r\n", "Route: <sip:a;lr>\r\n"]),
      );
      ls.splice(s, 0, ...Array.from({ length: n }, () => line));
      return Buffer.concat(ls);
    },
  ],
  [
    "special-char",
    (b, r) => {
      const i = int(r, b.length + 1);
      return Buffer.concat([
        b.subarray(0, i),
        Buffer.from(pick(r, ['"', "<", ">", "\\", ";", ",", "=", "@", ":", "[", "]", "%", "?"])),
        b.subarray(i),
      ]);
    },
  ],
  // Valid-preserving rewrites: they keep many mutants acceptable, so the round-trip property gets exercised too.
  [
    "name-case",
    (b, r) =>
      editHeaderLine(b, r, (line) => {
        const colon = line.indexOf(58);
        if (colon <= 0) return undefined;
        const name = line.subarray(0, colon).toString("latin1");
        const mixed = [...name].map((ch) => (r() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join("");
        return Buffer.concat([Buffer.from(mixed, "latin1"), line.subarray(colon)]);
      }),
  ],
  [
    "colon-space",
    (b, r) =>
      editHeaderLine(b, r, (line) => {
        const colon = line.indexOf(58);
        if (colon <= 0) return undefined;
        const ws = pick(r, [" ", "\t", "   ", ""]);
        return Buffer.concat([line.subarray(0, colon), Buffer.from(`${ws}:${ws}`), line.subarray(colon + 1)]);
      }),
  ],
  [
    "fold",
    // Fold a header value after a ';' or ',' (line continuation is equivalent to one space).
    (b, r) =>
      editHeaderLine(b, r, (line) => {
        const at = line.indexOf(pick(r, [59, 44]), line.indexOf(58) + 1);
        if (at === -1) return undefined;
        const fold = Buffer.from(pick(r, ["\r\n ", "\r\n\t"]));
        return Buffer.concat([line.subarray(0, at + 1), fold, line.subarray(at + 1)]);
      }),
  ],
  [
    "extra-header",
    (b, r) => {
      const ls = lines(b);
      const [s, e] = headerRange(ls);
      const extra = pick(r, [
        "Subject: fuzz, with commas; and semicolons\r\n",
        'X-Quoted: "a \\"b\\" c"\r\n',
        "Supported: replaces, timer , 100rel\r\n",
        "Record-Route: <sip:127.0.0.1:5099;lr>, <sip:[::1]:5098;lr;transport=tcp>\r\n",
        "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n",
        "X-Utf8: Zo\u00eb \u260e\r\n",
      ]);
      ls.splice(s + int(r, e - s + 1), 0, Buffer.from(extra, "utf8"));
      return Buffer.concat(ls);
    },
  ],
  ["leading-crlf", (b, r) => Buffer.concat([Buffer.from("\r\n".repeat(1 + int(r, 3))), b])],
  [
    "splice",
    (b, r) => {
      const other = pick(r, FUZZ_BASES).data;
      const i = int(r, b.length + 1);
      return Buffer.concat([b.subarray(0, i), other.subarray(int(r, other.length + 1))]);
    },
  ],
];

/** Names of the mutation operators (for reports). */
export const MUTATION_OPERATORS: readonly string[] = OPS.map(([n]) => n);

/**
 * `count` mutated messages from `seed`: each picks a base message and applies 1 to 4 random operators. Same
 * arguments → same bytes, on every machine and Node version.
 */
export function* mutations(seed: number, count: number): Generator<Mutation> {
  const r = prng(seed);
  for (let index = 0; index < count; index++) {
    const base = pick(r, FUZZ_BASES);
    let data = base.data;
    const ops: string[] = [];
    const n = 1 + int(r, 4);
    for (let k = 0; k < n; k++) {
      const [name, op] = pick(r, OPS);
      data = op(data, r);
      ops.push(name);
    }
    yield { index, base: base.name, ops, data };
  }
}
