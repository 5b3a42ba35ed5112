/**
 * HTTP Range for audio downloads (RFC 9110 §14): one byte range, as browsers'
 * audio elements ask for when seeking. Several ranges are served whole (allowed:
 * a server may ignore Range), a malformed header is ignored, an unsatisfiable one
 * answers 416.
 */
import type { BlobRange } from "../blobs/store.ts";

export type RangeDecision =
  | { kind: "whole" }
  | { kind: "partial"; range: BlobRange }
  | { kind: "unsatisfiable" };

export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: "whole" };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return { kind: "whole" };
  const [, first = "", last = ""] = m;
  if (first === "" && last === "") return { kind: "whole" };
  if (first === "") {
    // Suffix: the last N bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: "unsatisfiable" };
    const length = Math.min(n, size);
    return { kind: "partial", range: { offset: size - length, length } };
  }
  const start = Number(first);
  if (start >= size) return { kind: "unsatisfiable" };
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return { kind: "unsatisfiable" };
  return { kind: "partial", range: { offset: start, length: end - start + 1 } };
}
