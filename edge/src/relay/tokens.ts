/**
 * Relay tokens: the secret the on-prem relay presents on its WebSocket. 32
 * random bytes (base64url), shown once; the database keeps only the SHA-256 hex.
 */
import { type Db, relayTokens } from "@gosip/drizzle";
import { hexToBytes } from "@noble/hashes/utils.js";
import { eq, isNull } from "drizzle-orm";
import { timingSafeEqual } from "../auth/password.ts";
import { newSecretToken, SECRET_TOKEN_PATTERN, secretTokenDigest } from "../auth/secret-token.ts";

/** A new relay token: 32 random bytes as base64url (43 characters). */
export const newRelayToken: () => string = newSecretToken;

/** What the database stores for a token (SHA-256 hex). */
export const relayTokenHash: (token: string) => string = secretTokenDigest;

export interface RelayIdentity {
  /** Relay token id: identifies which relay (installation link) is talking. */
  id: string;
  name: string;
}

/** The bearer token of an `Authorization: Bearer <token>` header, if well-formed. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer (\S+)$/.exec(header?.trim() ?? "");
  const token = m?.[1];
  return token !== undefined && SECRET_TOKEN_PATTERN.test(token) ? token : undefined;
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
