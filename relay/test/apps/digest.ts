// RFC 2617 / RFC 3261 §22 digest authentication (MD5, qop=auth) for the test registrar, done in the
// drachtio-srf app the way a real registrar would: stateless HMAC-signed nonces, HA1 stored, constant-time compare.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const NONCE_LIFETIME_MS = 5 * 60_000;

function md5(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

/** HA1 = MD5(username:realm:password): what a registrar stores instead of the password. */
export function ha1(username: string, realm: string, password: string): string {
  return md5(`${username}:${realm}:${password}`);
}

export interface DigestVerifier {
  /** Value for a WWW-Authenticate header with a fresh nonce. */
  challenge(): string;
  /** The authenticated username if the Authorization header answers one of our nonces correctly. */
  verify(method: string, authorization: string | undefined): string | undefined;
}

/** Parses `Digest k=v, k="v", ...` into a map (lower-cased keys); undefined when not a Digest header. */
export function parseDigest(header: string): Map<string, string> | undefined {
  const trimmed = header.trim();
  if (!/^digest\s/i.test(trimmed)) return undefined;
  const params = new Map<string, string>();
  const re = /([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (const m of trimmed.slice(6).matchAll(re)) {
    const key = m[1];
    if (key) params.set(key.toLowerCase(), m[2] ?? m[3] ?? "");
  }
  return params;
}

/** A digest verifier for one realm over a table of username -> HA1. */
export function digestVerifier(realm: string, users: ReadonlyMap<string, string>): DigestVerifier {
  const key = randomBytes(32);
  const sign = (ts: string): string => createHmac("sha256", key).update(ts).digest("base64url").slice(0, 22);
  const nonceValid = (nonce: string): boolean => {
    const dot = nonce.indexOf(".");
    if (dot <= 0) return false;
    const ts = nonce.slice(0, dot);
    const expected = Buffer.from(sign(ts));
    const got = Buffer.from(nonce.slice(dot + 1));
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return false;
    const age = Date.now() - Number.parseInt(ts, 36);
    return age >= 0 && age < NONCE_LIFETIME_MS;
  };
  return {
    challenge() {
      const ts = Date.now().toString(36);
      return `Digest realm="${realm}", nonce="${ts}.${sign(ts)}", algorithm=MD5, qop="auth"`;
    },
    verify(method, authorization) {
      if (!authorization) return undefined;
      const p = parseDigest(authorization);
      const username = p?.get("username");
      const nonce = p?.get("nonce");
      const uri = p?.get("uri");
      const response = p?.get("response");
      if (!p || !username || !nonce || !uri || !response || p.get("realm") !== realm) return undefined;
      const stored = users.get(username);
      if (!stored || !nonceValid(nonce)) return undefined;
      const ha2 = md5(`${method}:${uri}`);
      const qop = p.get("qop");
      const expected =
        qop === "auth"
          ? md5(`${stored}:${nonce}:${p.get("nc") ?? ""}:${p.get("cnonce") ?? ""}:auth:${ha2}`)
          : md5(`${stored}:${nonce}:${ha2}`);
      const a = Buffer.from(expected);
      const b = Buffer.from(response.toLowerCase());
      return a.length === b.length && timingSafeEqual(a, b) ? username : undefined;
    },
  };
}
