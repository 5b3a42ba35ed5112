// G.711 against the values ITU-T G.711 fixes, and a round trip within its quantisation error.
import { describe, expect, it } from "vitest";
import { alawToLinear, decodeG711, encodeG711, linearToAlaw, linearToUlaw, ulawToLinear } from "./g711.ts";

describe("µ-law", () => {
  it("maps the fixed points of the standard", () => {
    expect(linearToUlaw(0)).toBe(0xff);
    expect(ulawToLinear(0xff)).toBe(0);
    expect(ulawToLinear(0x7f)).toBe(0);
    expect(linearToUlaw(32767)).toBe(0x80);
    expect(ulawToLinear(0x80)).toBe(-32124 * -1);
    expect(ulawToLinear(0x00)).toBe(-32124);
    expect(linearToUlaw(-32768)).toBe(0x00);
  });

  it("round-trips every code and keeps the error within half a quantisation step", () => {
    for (let code = 0; code < 256; code++) {
      if (code === 0x7f) continue; // negative zero encodes back as positive zero
      expect(linearToUlaw(ulawToLinear(code))).toBe(code);
    }
    for (let s = -32000; s <= 32000; s += 7) {
      const back = ulawToLinear(linearToUlaw(s));
      // steps double per segment: 8 at the bottom, 1024 in the top segment
      expect(Math.abs(back - s)).toBeLessThanOrEqual(Math.max(8, Math.abs(s) / 16) + 1);
    }
  });
});

describe("A-law", () => {
  it("maps the fixed points of the standard", () => {
    expect(linearToAlaw(0)).toBe(0xd5);
    expect(alawToLinear(0xd5)).toBe(8);
    expect(alawToLinear(0x55)).toBe(-8);
    expect(alawToLinear(0xaa)).toBe(32256);
    expect(alawToLinear(0x2a)).toBe(-32256);
    expect(linearToAlaw(32767)).toBe(0xaa);
    expect(linearToAlaw(-32768)).toBe(0x2a);
  });

  it("round-trips every code and keeps the error within half a quantisation step", () => {
    for (let code = 0; code < 256; code++) expect(linearToAlaw(alawToLinear(code))).toBe(code);
    for (let s = -32000; s <= 32000; s += 7) {
      const back = alawToLinear(linearToAlaw(s));
      expect(Math.abs(back - s)).toBeLessThanOrEqual(Math.max(16, Math.abs(s) / 32) + 1);
    }
  });
});

describe("buffers", () => {
  it("encodes and decodes a block with both codecs", () => {
    const pcm = Int16Array.from([0, 1000, -1000, 20000, -20000]);
    for (const codec of ["PCMU", "PCMA"] as const) {
      const bytes = encodeG711(codec, pcm);
      expect(bytes.length).toBe(5);
      const back = decodeG711(codec, bytes);
      for (let i = 0; i < pcm.length; i++) expect(Math.abs((back[i] ?? 0) - (pcm[i] ?? 0))).toBeLessThan(700);
    }
  });
});
