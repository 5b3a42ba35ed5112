// Range headers for audio playback: one range served, malformed ones ignored, outside the file 416.
import { expect, it } from "vitest";
import { decideRange } from "./range.ts";

it("serves one byte range, suffix and open-ended ranges, clamped to the file", () => {
  expect(decideRange(undefined, 100)).toEqual({ kind: "whole" });
  expect(decideRange("bytes=0-9", 100)).toEqual({ kind: "partial", range: { offset: 0, length: 10 } });
  expect(decideRange("bytes=90-", 100)).toEqual({ kind: "partial", range: { offset: 90, length: 10 } });
  expect(decideRange("bytes=-20", 100)).toEqual({ kind: "partial", range: { offset: 80, length: 20 } });
  expect(decideRange("bytes=-500", 100)).toEqual({ kind: "partial", range: { offset: 0, length: 100 } });
  expect(decideRange("bytes=50-5000", 100)).toEqual({ kind: "partial", range: { offset: 50, length: 50 } });
});

it("ignores what it does not understand and refuses ranges outside the file", () => {
  expect(decideRange("bytes=0-1,5-6", 100)).toEqual({ kind: "whole" });
  expect(decideRange("items=0-1", 100)).toEqual({ kind: "whole" });
  expect(decideRange("bytes=-", 100)).toEqual({ kind: "whole" });
  expect(decideRange("bytes=100-", 100)).toEqual({ kind: "unsatisfiable" });
  expect(decideRange("bytes=9-3", 100)).toEqual({ kind: "unsatisfiable" });
  expect(decideRange("bytes=-0", 100)).toEqual({ kind: "unsatisfiable" });
  expect(decideRange("bytes=0-", 0)).toEqual({ kind: "unsatisfiable" });
});
