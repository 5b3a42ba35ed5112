// Unit tests of the drachtio frame codec: split and joined TCP chunks, multi-byte UTF-8, bad input.
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "./framing.ts";

function collect(): { frames: string[]; errors: string[]; decoder: FrameDecoder } {
  const frames: string[] = [];
  const errors: string[] = [];
  const decoder = new FrameDecoder(
    (p) => frames.push(p.toString("utf8")),
    (e) => errors.push(e.message),
  );
  return { frames, errors, decoder };
}

describe("FrameDecoder", () => {
  it("decodes frames joined in one chunk and split byte by byte", () => {
    const wire = Buffer.concat([
      encodeFrame("a|ping"),
      encodeFrame("b|route|invite"),
      encodeFrame("c|sip|x", "héllo ☎"),
    ]);
    const joined = collect();
    joined.decoder.push(wire);
    expect(joined.frames).toEqual(["a|ping", "b|route|invite", "c|sip|xhéllo ☎"]);
    const split = collect();
    for (let i = 0; i < wire.length; i++) split.decoder.push(wire.subarray(i, i + 1));
    expect(split.frames).toEqual(joined.frames);
    expect(split.errors).toEqual([]);
  });

  it("counts the length in bytes, not characters", () => {
    const f = encodeFrame("id|sip||\r\n", "☎☎");
    expect(f.toString("latin1").startsWith("16#")).toBe(true);
  });

  it("rejects a non-numeric or oversized length and stops", () => {
    const bad = collect();
    bad.decoder.push(Buffer.from("12x#hello"));
    bad.decoder.push(encodeFrame("a|ping"));
    expect(bad.errors).toHaveLength(1);
    expect(bad.frames).toEqual([]);
    const big = collect();
    big.decoder.push(Buffer.from("999999999#"));
    expect(big.errors).toHaveLength(1);
    const zero = collect();
    zero.decoder.push(Buffer.from("0#"));
    expect(zero.errors).toHaveLength(1);
  });

  it("waits for the rest of a large frame split over many chunks", () => {
    const body = "x".repeat(200_000);
    const wire = encodeFrame("id|sip||\r\n", body);
    const c = collect();
    for (let i = 0; i < wire.length; i += 1000) c.decoder.push(wire.subarray(i, i + 1000));
    expect(c.frames).toHaveLength(1);
    expect(c.frames[0]?.length).toBe(200_000 + 10);
  });
});
