/**
 * Account password hashing. scrypt from @noble/hashes: pure JS, audited, and it
 * runs unchanged on Node and on Workers (no native addon, no run-time WebAssembly
 * compile, no 100,000-iteration WebCrypto PBKDF2 cap).
 *
 * Stored form is a self-describing PHC-style string
 *   $scrypt$ln=15,r=8,p=1$<salt base64>$<hash base64>
 * so the cost can be raised later: `needsRehash` tells the login handler to
 * re-hash with the current parameters after a successful verification.
 */
import { z } from "@hono/zod-openapi";
import { scryptAsync } from "@noble/hashes/scrypt.js";

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;

/** Request schema for a new password (setup, password change, user creation). */
export const newPasswordSchema = z
  .string()
  .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
  .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`)
  .openapi({ example: "correct horse battery staple" });

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  r: number;
  p: number;
}

/**
 * Current cost: N=2^15, r=8, p=1 (32 MiB, ~100-120 ms per hash on the 2-core
 * reference machine), inside the ~150 ms budget for a login.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { ln: 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Refuse to even try stored strings that would ask for absurd work or memory.
const MAX_LN = 20;

/** Hash a password for storage. `params` is for tests that need a cheap hash. */
export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const key = await derive(password, salt, params, KEY_BYTES);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${toBase64(salt)}$${toBase64(key)}`;
}

/**
 * True when `password` matches `stored`. A malformed stored string verifies
 * as false (fail closed) rather than throwing.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed.params, parsed.hash.length);
  return timingSafeEqual(key, parsed.hash);
}

/** True when `stored` was made with weaker parameters than the current default. */
export function needsRehash(stored: string, current: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const parsed = parseHash(stored);
  if (!parsed) return true;
  const p = parsed.params;
  return p.ln < current.ln || p.r < current.r || p.p < current.p || parsed.hash.length < KEY_BYTES;
}

/**
 * A real hash of a random password, computed once: login verifies against it
 * when the email is unknown, so both answers take the same time.
 */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  return dummyHash;
}

function derive(
  password: string,
  salt: Uint8Array,
  params: ScryptParams,
  dkLen: number,
): Promise<Uint8Array> {
  // NFKC so the same password typed on different keyboards/OSes derives the same key.
  return scryptAsync(password.normalize("NFKC"), salt, {
    N: 2 ** params.ln,
    r: params.r,
    p: params.p,
    dkLen,
  });
}

interface ParsedHash {
  params: ScryptParams;
  salt: Uint8Array;
  hash: Uint8Array;
}

function parseHash(stored: string): ParsedHash | undefined {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(
    stored,
  );
  if (!m) return undefined;
  const [, ln, r, p, salt, hash] = m;
  const params = { ln: Number(ln), r: Number(r), p: Number(p) };
  if (params.ln < 1 || params.ln > MAX_LN || params.r < 1 || params.p < 1) return undefined;
  try {
    return { params, salt: fromBase64(salt ?? ""), hash: fromBase64(hash ?? "") };
  } catch {
    return undefined;
  }
}

/** Compare two byte strings in time that depends only on their lengths. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

// PHC strings use standard base64 without padding. btoa/atob exist on Node and Workers.
function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/=+$/, "");
}

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
