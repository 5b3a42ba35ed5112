// Crypto-random identifiers for branches, tags and Call-IDs, drawn from a pooled randomBytes buffer so that
// generating one costs a few array reads instead of a syscall.

import { randomBytes } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
const POOL_SIZE = 8192;
let pool = randomBytes(POOL_SIZE);
let offset = 0;

/** n random characters from a 64-symbol alphabet (6 bits of entropy each). */
export function randomToken(n: number): string {
  if (n > POOL_SIZE) return randomToken(POOL_SIZE) + randomToken(n - POOL_SIZE);
  if (offset + n > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    offset = 0;
  }
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[(pool[offset + i] ?? 0) & 63];
  offset += n;
  return s;
}

/** RFC 3261 branch: magic cookie + 96 random bits. */
export function newBranch(): string {
  return `z9hG4bK${randomToken(16)}`;
}

/** From/To tag: 60 random bits. */
export function newTag(): string {
  return randomToken(10);
}

/** Call-ID: 120 random bits (no host part needed; it is globally unique by randomness). */
export function newCallId(): string {
  return randomToken(20);
}
