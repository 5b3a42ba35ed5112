// The frequency detector the media tests rely on: it must name a tone, including after G.711 coding.
import { describe, expect, it } from "vitest";
import { decodeG711, encodeG711 } from "../pbx/media/g711.ts";
import { dominantFrequency, tone } from "./rtp-audio.ts";

describe("dominantFrequency", () => {
  it("finds pure tones to within 2 Hz", () => {
    for (const hz of [300, 440, 1000, 1004, 2600, 3400]) {
      expect(Math.abs((dominantFrequency(tone(hz, 8000)) ?? 0) - hz)).toBeLessThanOrEqual(2);
    }
  });

  it("finds a tone after µ-law and A-law coding, and the louder of two tones", () => {
    for (const codec of ["PCMU", "PCMA"] as const) {
      const back = decodeG711(codec, encodeG711(codec, tone(440, 4000)));
      expect(dominantFrequency(back)).toBeCloseTo(440, -1);
    }
    const loud = tone(1000, 8000, 9000);
    const mix = tone(440, 8000, 3000).map((v, i) => v + (loud[i] ?? 0));
    expect(Math.abs((dominantFrequency(mix) ?? 0) - 1000)).toBeLessThanOrEqual(2);
  });

  it("reports silence and too-short input as no frequency", () => {
    expect(dominantFrequency(new Int16Array(8000))).toBeUndefined();
    expect(dominantFrequency(tone(440, 40))).toBeUndefined();
  });
});
