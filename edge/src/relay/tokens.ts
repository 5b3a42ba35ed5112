/**
 * Relay tokens: the secret the on-prem relay presents on its WebSocket. 32
 * random bytes (base64url), shown once; the database keeps only the SHA-256 hex.
 */
import { type Db, relayTokens } from "@gosip/drizzle";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { eq, isNull } from "drizzle-orm";
import { timingSafeEqual } from "../auth/password.ts";

/** A new relay token: 32 random bytes as base64url (43 characters). */
export function newRelayToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** What the database stores for a token. */
export function relayTokenHash(token: string): string {
  return bytesToHex(sha256(utf8ToBytes(token)));
}

export interface RelayIdentity {
  /** Relay token id: identifies which relay (installation link) is talking. */
  id: string;
  name: string;
}

/** The bearer token of an `Authorization: Bearer <token>` header, if well-formed. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer ([A-Za-z0-9_-]{43})$/.exec(header?.trim() ?? "");
  return m?.[1];
}

/**
 * The relay a token belongs to, or undefined for an unknown or revoked token.
 * Every live token's hash is compared in constant time (there are only a few),
 * so the answer time says nothing about how close a guess was. Marks the token used.
 */
export async function verifyRelayToken(db: Db, token: string, now: Date): Promise<RelayIdentity | undefined> {
  const presented = hexToBytes(relayTokenHash(token));
  const live = await db
    .select({ id: relayTokens.id, name: relayTokens.name, tokenHash: relayTokens.tokenHash })
    .from(relayTokens)
    .where(isNull(relayTokens.revokedAt));
  let match: RelayIdentity | undefined;
  for (const row of live) {
    let stored: Uint8Array;
    try {
      stored = hexToBytes(row.tokenHash);
    } catch {
      continue;
    }
    if (timingSafeEqual(stored, presented) && !match) match = { id: row.id, name: row.name };
  }
  if (match) await db.update(relayTokens).set({ lastUsedAt: now }).where(eq(relayTokens.id, match.id));
  return match;
}
