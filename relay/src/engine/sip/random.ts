// Seeded pseudo-random helpers shared by the two mutation generators (sip/fuzz.ts for the parser,
// relay/test/mutations.ts for the network robustness suite): same seed, same bytes, on every machine.

/** A source of numbers in [0, 1). */
export type Rand = () => number;

/** mulberry32: small, fast, seedable PRNG (not for security). */
export function prng(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** One of the items (undefined only for an empty list, which callers never pass). */
export const pick = <T>(r: Rand, items: readonly T[]): T => items[int(r, items.length)] as T;
