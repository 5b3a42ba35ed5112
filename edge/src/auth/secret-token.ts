/**
 * Bearer secrets the edge hands out once and never stores: session cookies and
 * relay tokens. A token is 32 random bytes in base64url (43 characters); the
 * database keeps only its SHA-256, so a leaked database holds no usable token.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/** The form of every token from {@link newSecretToken}: checked before any lookup. */
export const SECRET_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A fresh token: 32 random bytes as base64url without padding. */
export function newSecretToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** What the database stores for a token: its SHA-256 as lowercase hex. */
export function secretTokenDigest(token: string): string {
  return bytesToHex(sha256(utf8ToBytes(token)));
}
