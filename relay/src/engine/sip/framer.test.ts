// StreamFramer: cuts a TCP byte stream into SIP messages by Content-Length, reports RFC 5626 CRLF pings, and
// reports framing errors (after which it ignores input, as the transport closes the connection).

import { describe, expect, it } from "vitest";
import { parseMessage, StreamFramer } from "./message.ts";

function message(callId: string, body = ""): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([
    Buffer.from(
      [
        "OPTIONS sip:ping@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-frame",
        "From: <sip:a@127.0.0.1>;tag=1",
        "To: <sip:b@127.0.0.1>",
        `Call-ID: ${callId}`,
        "CSeq: 1 OPTIONS",
        `Content-Length: ${b.length}`,
        "",
        "",
      ].join("\r\n"),
    ),
    b,
  ]);
}

function collect(limits?: { maxMessageSize: number }) {
  const out = { messages: [] as Buffer[], keepalives: 0, errors: [] as string[] };
  const framer = new StreamFramer(
    (raw) => out.messages.push(Buffer.from(raw)),
    () => out.keepalives++,
    (reason) => out.errors.push(reason),
    limits,
  );
  return { framer, out };
}

function callIds(ms: Buffer[]): string[] {
  return ms.map((m) => {
    const r = parseMessage(m);
    return r.ok ? (r.message.headers.get("call-id") ?? "") : `bad: ${r.reason}`;
  });
}

describe("StreamFramer", () => {
  it("delivers several messages from one chunk and one message split byte by byte", () => {
    const { framer, out } = collect();
    framer.push(Buffer.concat([message("a"), message("b", "hello"), message("c")]));
    expect(callIds(out.messages)).toEqual(["a", "b", "c"]);
    const d = message("d", "x\r\n\r\ny");
    for (let i = 0; i < d.length; i++) framer.push(d.subarray(i, i + 1));
    expect(callIds(out.messages)).toEqual(["a", "b", "c", "d"]);
    expect(
      parseMessage(out.messages[3] ?? Buffer.alloc(0)).ok &&
        out.messages[3]?.toString().endsWith("x\r\n\r\ny"),
    ).toBe(true);
    expect(framer.pending).toBe(0);
    expect(out.errors).toEqual([]);
  });

  it("keeps binary bodies containing CRLFCRLF intact", () => {
    const { framer, out } = collect();
    const body = Buffer.from([0, 13, 10, 13, 10, 255, 0, 1]);
    const m = Buffer.concat([message("bin", "").subarray(0, -4 - 1), Buffer.from("8\r\n\r\n"), body]);
    framer.push(Buffer.concat([m, message("after")]));
    expect(callIds(out.messages)).toEqual(["bin", "after"]);
    const r = parseMessage(out.messages[0] ?? Buffer.alloc(0));
    expect(r.ok && r.message.body.equals(body)).toBe(true);
  });

  it("reports double-CRLF pings (also split across reads), ignores single-CRLF pongs", () => {
    const { framer, out } = collect();
    framer.push(Buffer.from("\r\n\r\n"));
    expect(out.keepalives).toBe(1);
    framer.push(Buffer.from("\r\n"));
    framer.push(Buffer.from("\r\n"));
    expect(out.keepalives).toBe(2);
    framer.push(Buffer.concat([Buffer.from("\r\n\r\n"), message("x"), Buffer.from("\r\n\r\n\r\n\r\n")]));
    expect(out.keepalives).toBe(5);
    expect(callIds(out.messages)).toEqual(["x"]);
    // A lone CRLF (pong) before a message is skipped.
    framer.push(Buffer.concat([Buffer.from("\r\n"), message("y")]));
    expect(callIds(out.messages)).toEqual(["x", "y"]);
    expect(out.keepalives).toBe(5);
    expect(out.errors).toEqual([]);
  });

  it("requires Content-Length on the stream and rejects bad values", () => {
    const missing = collect();
    missing.framer.push(Buffer.from(message("m").toString().replace("Content-Length: 0\r\n", "")));
    expect(missing.out.errors).toEqual(["missing Content-Length on a stream transport"]);
    for (const bad of ["-1", "abc", "1 2", "9999999999", ""]) {
      const c = collect();
      c.framer.push(
        Buffer.from(message("m").toString().replace("Content-Length: 0", `Content-Length: ${bad}`)),
      );
      expect(c.out.errors, bad).toEqual(["bad Content-Length"]);
    }
    const conflicting = collect();
    conflicting.framer.push(
      Buffer.from(message("m").toString().replace("Content-Length: 0", "l: 0\r\nContent-Length: 3")),
    );
    expect(conflicting.out.errors).toEqual(["bad Content-Length"]);
    const compact = collect();
    compact.framer.push(Buffer.from(message("m").toString().replace("Content-Length: 0", "l  :  0")));
    expect(callIds(compact.out.messages)).toEqual(["m"]);
  });

  it("enforces the size limit on headers and on Content-Length, then ignores the rest of the stream", () => {
    const big = collect({ maxMessageSize: 1000 });
    big.framer.push(Buffer.from(`OPTIONS sip:a SIP/2.0\r\nX: ${"a".repeat(2000)}`));
    expect(big.out.errors).toEqual(["message too large"]);
    big.framer.push(message("ignored"));
    expect(big.out.messages).toEqual([]);

    const cl = collect({ maxMessageSize: 1000 });
    cl.framer.push(Buffer.from(message("m").toString().replace("Content-Length: 0", "Content-Length: 5000")));
    expect(cl.out.errors).toEqual(["message too large"]);

    const def = collect();
    def.framer.push(
      Buffer.from(message("m").toString().replace("Content-Length: 0", "Content-Length: 65537")),
    );
    expect(def.out.errors).toEqual(["message too large"]);
  });

  it("waits for the body, and frames bare-LF messages too", () => {
    const { framer, out } = collect();
    const m = message("w", "0123456789");
    framer.push(m.subarray(0, m.length - 5));
    expect(out.messages).toEqual([]);
    expect(framer.pending).toBe(m.length - 5);
    framer.push(m.subarray(m.length - 5));
    expect(callIds(out.messages)).toEqual(["w"]);
    framer.push(Buffer.from(message("lf").toString().replace(/\r\n/g, "\n")));
    expect(callIds(out.messages)).toEqual(["w", "lf"]);
  });

  it("stays linear when a peer trickles a large message byte by byte", () => {
    const { framer, out } = collect();
    const big = message("slow", "b".repeat(30_000))
      .toString()
      .replace("Call-ID: slow", `Call-ID: slow\r\nX-Pad: ${"p".repeat(15_000)}`);
    const bytes = Buffer.from(big);
    const started = performance.now();
    for (let i = 0; i < bytes.length; i++) framer.push(bytes.subarray(i, i + 1));
    const elapsed = performance.now() - started;
    expect(callIds(out.messages)).toEqual(["slow"]);
    expect(out.messages[0]?.equals(bytes)).toBe(true);
    // Quadratic buffering would copy ~1.8 GB here and take seconds.
    expect(elapsed).toBeLessThan(1500);
  });

  it("does not corrupt frames already delivered when later data arrives", () => {
    const frames: Buffer[] = [];
    const framer = new StreamFramer(
      (raw) => frames.push(raw),
      () => {},
      () => {},
    );
    const a = message("first", "A".repeat(100));
    const b = message("second", "B".repeat(100));
    // Deliver "first" from a framer-owned buffer (split across pushes), then keep pushing.
    framer.push(a.subarray(0, 50));
    framer.push(Buffer.concat([a.subarray(50), b.subarray(0, 10)]));
    for (let i = 10; i < b.length; i += 7) framer.push(b.subarray(i, i + 7));
    framer.push(message("third"));
    expect(frames[0]?.equals(a)).toBe(true);
    expect(frames[1]?.equals(b)).toBe(true);
    expect(callIds(frames)).toEqual(["first", "second", "third"]);
  });

  it("accepts data pushed from inside onMessage without duplicating or losing messages", () => {
    const seen: string[] = [];
    let pushedMore = false;
    const framer: StreamFramer = new StreamFramer(
      (raw) => {
        seen.push(callIds([raw])[0] ?? "");
        if (!pushedMore) {
          pushedMore = true;
          framer.push(message("re-entrant"));
        }
      },
      () => {},
      () => {},
    );
    framer.push(Buffer.concat([message("one"), message("two")]));
    expect(seen).toEqual(["one", "two", "re-entrant"]);
  });
});
