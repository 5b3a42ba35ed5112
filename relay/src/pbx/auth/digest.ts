// SIP digest authentication, server side (RFC 2617, RFC 7616, RFC 8760 for SHA-256 in SIP, RFC 3261 §22).
//
// - Challenges carry two headers, MD5 FIRST then SHA-256 (many phones only read the first), qop="auth", an
//   opaque value, and a nonce that is stateless: base64url(8-byte timestamp ‖ 8 random bytes ‖ 12-byte HMAC).
//   Nothing is stored per challenge, so a flood of unauthenticated requests costs no memory.
// - A nonce older than its lifetime but validly signed, answered with the right credentials, gives
//   `stale` (the client retries with the new nonce without asking the user).
// - Replays: the last accepted nonce count is kept per nonce (only for nonces that authenticated, bounded and
//   forgotten when the nonce expires); a repeated or lower nc is refused (answered like a stale nonce, so a
//   phone that reuses nc just retries; an attacker replaying a captured request gets nothing).
// - Unknown users are checked against a dummy HA1, so the work done, the answer and the time taken are the
//   same as for a wrong password; all comparisons are constant time.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { DigestAlgorithm } from "@gosip/drizzle";

export type { DigestAlgorithm };

/** Both HA1 forms of a credential (lowercase hex), and whatever the caller wants back when it matches. */
export interface DigestCredentials<S> {
  ha1Md5: string;
  ha1Sha256: string;
  subject: S;
}

export type DigestFailure =
  /** No usable Digest credentials in the header at all (not counted as a failed attempt). */
  | "missing"
  /** Required parameters absent or invalid (qop, nc, cnonce ...). */
  | "malformed"
  /** A nonce we did not issue (or issued by an earlier run with another key): challenge again. */
  | "bad_nonce"
  | "realm"
  | "uri"
  | "algorithm"
  | "unknown_user"
  | "wrong_password";

export type AuthOutcome<S> =
  | { ok: true; username: string; algorithm: DigestAlgorithm; subject: S }
  /** The credentials were right but the nonce expired or its nc was used: challenge with stale=true. */
  | { ok: false; stale: true; reason: "stale" | "replay"; username: string }
  | { ok: false; stale: false; reason: DigestFailure; username: string | undefined };

export interface DigestOptions {
  /** The realm every HA1 was computed with (read per request: it comes from the edge's settings). */
  realm: () => string;
  /** Nonce lifetime, ms (default 5 minutes). */
  nonceLifetimeMs?: number;
  /** HMAC key for nonces; random per process when omitted. */
  secret?: Buffer;
  now?: () => number;
  /** Most nonces whose nc is tracked at once (default 100,000); the oldest are forgotten first. */
  maxTrackedNonces?: number;
}

/** What the challenge needs from drachtio-srf's response object. */
export interface ChallengeTarget {
  send(status: number, opts: { headers: Record<string, string> }): void;
}

const PAYLOAD_BYTES = 16;
const SIG_BYTES = 12;
const NONCE_BYTES = PAYLOAD_BYTES + SIG_BYTES;
/** A nonce from the (near) future is forged or from a clock that jumped: accept only small skew. */
const FUTURE_SKEW_MS = 5_000;

const DUMMY_HA1 = { MD5: "0".repeat(32), "SHA-256": "0".repeat(64) } as const;

function hash(algorithm: DigestAlgorithm, text: string): string {
  return createHash(algorithm === "MD5" ? "md5" : "sha256")
    .update(text)
    .digest("hex");
}

function equalConstantTime(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  // lengths are public (32 or 64 hex digits), only the contents must not leak through timing
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Parses `Digest k=v, k="v", ...` (RFC 7616 §3.4) into lower-cased keys; undefined when not a Digest header.
 * Quoted values may contain commas and escaped quotes.
 */
export function parseDigestHeader(header: string): Map<string, string> | undefined {
  // a hand-written scanner: this runs for every authenticated request (a regex with matchAll cost several
  // times more)
  let i = 0;
  const n = header.length;
  while (i < n && (header.charCodeAt(i) === 32 || header.charCodeAt(i) === 9)) i++;
  if (header.slice(i, i + 6).toLowerCase() !== "digest") return undefined;
  i += 6;
  if (i >= n || (header.charCodeAt(i) !== 32 && header.charCodeAt(i) !== 9)) return undefined;
  const params = new Map<string, string>();
  while (i < n) {
    while (
      i < n &&
      (header[i] === " " ||
        header[i] === "\t" ||
        header[i] === "," ||
        header[i] === "\r" ||
        header[i] === "\n")
    )
      i++;
    const keyStart = i;
    while (i < n && header[i] !== "=" && header[i] !== "," && header[i] !== " ") i++;
    const key = header.slice(keyStart, i).toLowerCase();
    while (i < n && header[i] === " ") i++;
    if (header[i] !== "=") {
      while (i < n && header[i] !== ",") i++;
      continue;
    }
    i++;
    while (i < n && header[i] === " ") i++;
    let value = "";
    if (header[i] === '"') {
      i++;
      let start = i;
      while (i < n && header[i] !== '"') {
        if (header[i] === "\\") {
          value += header.slice(start, i);
          i++;
          start = i;
        }
        i++;
      }
      value += header.slice(start, i);
      i++; // closing quote
    } else {
      const start = i;
      while (i < n && header[i] !== "," && header[i] !== " " && header[i] !== "\t") i++;
      value = header.slice(start, i);
    }
    if (key !== "" && !params.has(key)) params.set(key, value); // a repeated parameter: the first counts
  }
  return params;
}

/** URIs compared the way a client may have re-written ours: exact, else case-insensitively. */
function sameUri(a: string, b: string): boolean {
  return a === b || a.toLowerCase() === b.toLowerCase();
}

export class DigestAuth {
  private readonly key: Buffer;
  private readonly lifetimeMs: number;
  private readonly now: () => number;
  private readonly realm: () => string;
  private readonly maxTracked: number;
  /** nonce → { highest accepted nc, when the nonce can be forgotten }. Insertion order = age. */
  private readonly counts = new Map<string, { nc: number; forgetAt: number }>();
  readonly opaque: string;

  constructor(options: DigestOptions) {
    this.key = options.secret ?? randomBytes(32);
    this.lifetimeMs = options.nonceLifetimeMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
    this.realm = options.realm;
    this.maxTracked = options.maxTrackedNonces ?? 100_000;
    this.opaque = createHmac("sha256", this.key).update("opaque").digest("hex").slice(0, 16);
  }

  /** A fresh nonce: timestamp and randomness, signed. */
  nonce(): string {
    const buf = Buffer.allocUnsafe(NONCE_BYTES);
    buf.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(this.now()))), 0);
    this.random(8).copy(buf, 8);
    this.sign(buf.subarray(0, PAYLOAD_BYTES)).copy(buf, PAYLOAD_BYTES);
    return buf.toString("base64url");
  }

  /** The two challenge header values (MD5 first), sharing one nonce. */
  challengeValues(stale = false): [string, string] {
    const nonce = this.nonce();
    const realm = this.realm().replace(/["\\]/g, "");
    const tail = `qop="auth"${stale ? ", stale=true" : ""}`;
    const common = `realm="${realm}", nonce="${nonce}", opaque="${this.opaque}"`;
    return [`Digest ${common}, algorithm=MD5, ${tail}`, `Digest ${common}, algorithm=SHA-256, ${tail}`];
  }

  /**
   * Sends the challenge: 401 with WWW-Authenticate (REGISTER) or 407 with Proxy-Authenticate (INVITE,
   * SUBSCRIBE). drachtio-srf joins repeated header values with commas, which RFC 3261 §7.3.1 forbids for
   * these headers, so the second one is written as a header line of its own.
   */
  challenge(res: ChallengeTarget, opts: { status: 401 | 407; stale?: boolean; md5Only?: boolean }): void {
    const [md5, sha256] = this.challengeValues(opts.stale ?? false);
    const name = opts.status === 401 ? "WWW-Authenticate" : "Proxy-Authenticate";
    res.send(opts.status, { headers: { [name]: opts.md5Only ? md5 : `${md5}\r\n${name}: ${sha256}` } });
  }

  /**
   * Checks an Authorization / Proxy-Authorization header against the request it came with. `lookup` gives
   * the credentials of a username, or undefined for an unknown (or disabled) one.
   */
  verify<S>(
    request: { method: string; uri: string },
    header: string | undefined,
    lookup: (username: string) => DigestCredentials<S> | undefined,
  ): AuthOutcome<S> {
    const p = header === undefined ? undefined : parseDigestHeader(header);
    const username = p?.get("username");
    if (!p || username === undefined || username === "")
      return { ok: false, stale: false, reason: "missing", username: undefined };
    const fail = (reason: DigestFailure): AuthOutcome<S> => ({ ok: false, stale: false, reason, username });
    const nonce = p.get("nonce");
    const uri = p.get("uri");
    const response = p.get("response")?.toLowerCase();
    const nc = p.get("nc");
    const cnonce = p.get("cnonce");
    if (!nonce || !uri || !response || !nc || !cnonce || !/^[0-9a-fA-F]{8}$/.test(nc))
      return fail("malformed");
    if ((p.get("qop") ?? "").toLowerCase() !== "auth") return fail("malformed");
    const algorithmParam = (p.get("algorithm") ?? "MD5").toUpperCase();
    if (algorithmParam !== "MD5" && algorithmParam !== "SHA-256") return fail("algorithm");
    const algorithm: DigestAlgorithm = algorithmParam;
    if (p.get("realm") !== this.realm()) return fail("realm");
    const issuedAt = this.issuedAt(nonce);
    if (issuedAt === undefined) return fail("bad_nonce");
    const opaque = p.get("opaque");
    if (opaque !== undefined && !equalConstantTime(opaque, this.opaque)) return fail("bad_nonce");
    if (!sameUri(uri, request.uri)) return fail("uri");

    const creds = lookup(username);
    const ha1 = creds ? (algorithm === "MD5" ? creds.ha1Md5 : creds.ha1Sha256) : DUMMY_HA1[algorithm];
    const ha2 = hash(algorithm, `${request.method}:${uri}`);
    const expected = hash(algorithm, `${ha1.toLowerCase()}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
    const matches = equalConstantTime(expected, response);
    if (!creds) return fail("unknown_user");
    if (!matches) return fail("wrong_password");

    const now = this.now();
    if (now - issuedAt > this.lifetimeMs) return { ok: false, stale: true, reason: "stale", username };
    const count = Number.parseInt(nc, 16);
    const seen = this.counts.get(nonce);
    if (seen !== undefined && count <= seen.nc) return { ok: false, stale: true, reason: "replay", username };
    this.remember(nonce, count, issuedAt + this.lifetimeMs, now);
    return { ok: true, username, algorithm, subject: creds.subject };
  }

  /** Nonces tracked for replay protection right now (memory checks). */
  get trackedNonces(): number {
    return this.counts.size;
  }

  private remember(nonce: string, nc: number, forgetAt: number, now: number): void {
    const seen = this.counts.get(nonce);
    if (seen) {
      seen.nc = nc;
      return;
    }
    // forget nonces past their lifetime (the oldest are first), then the oldest if still full
    for (const [k, v] of this.counts) {
      if (v.forgetAt > now && this.counts.size < this.maxTracked) break;
      this.counts.delete(k);
    }
    this.counts.set(nonce, { nc, forgetAt });
  }

  private pool = Buffer.alloc(0);
  private poolOffset = 0;

  /** Random bytes from a pool refilled 4 KiB at a time (one syscall per 512 nonces, not one each). */
  private random(n: number): Buffer {
    if (this.poolOffset + n > this.pool.length) {
      this.pool = randomBytes(4096);
      this.poolOffset = 0;
    }
    const out = this.pool.subarray(this.poolOffset, this.poolOffset + n);
    this.poolOffset += n;
    return out;
  }

  private sign(payload: Buffer): Buffer {
    return createHmac("sha256", this.key).update(payload).digest().subarray(0, SIG_BYTES);
  }

  /** When a nonce we issued was made; undefined for anything else. */
  private issuedAt(nonce: string): number | undefined {
    if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3)) return undefined;
    const buf = Buffer.from(nonce, "base64url");
    if (buf.length !== NONCE_BYTES) return undefined;
    const sig = this.sign(buf.subarray(0, PAYLOAD_BYTES));
    if (!timingSafeEqual(sig, buf.subarray(PAYLOAD_BYTES))) return undefined;
    const at = Number(buf.readBigUInt64BE(0));
    if (at - this.now() > FUTURE_SKEW_MS) return undefined;
    return at;
  }
}
