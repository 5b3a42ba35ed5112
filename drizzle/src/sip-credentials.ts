// SIP digest credentials (RFC 2617 / RFC 7616 / RFC 8760), shared by the edge
// (which stores HA1 when a device is created) and the relay (which verifies
// REGISTER/INVITE responses). Pure JS hashes, so it runs on Node and Workers.
import { md5 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

export type DigestAlgorithm = "MD5" | "SHA-256";

function hashHex(algorithm: DigestAlgorithm, text: string): string {
  const data = utf8ToBytes(text);
  return bytesToHex(algorithm === "MD5" ? md5(data) : sha256(data));
}

/** HA1 = H(username:realm:password), lowercase hex; the only form a SIP password is stored in. */
export function computeHa1(
  username: string,
  realm: string,
  password: string,
  algorithm: DigestAlgorithm,
): string {
  return hashHex(algorithm, `${username}:${realm}:${password}`);
}

/** Both HA1 forms a device row stores (`ha1Md5`, `ha1Sha256`). */
export function computeDeviceHa1(
  username: string,
  realm: string,
  password: string,
): { ha1Md5: string; ha1Sha256: string } {
  return {
    ha1Md5: computeHa1(username, realm, password, "MD5"),
    ha1Sha256: computeHa1(username, realm, password, "SHA-256"),
  };
}

export interface DigestResponseInput {
  ha1: string;
  algorithm: DigestAlgorithm;
  method: string;
  uri: string;
  nonce: string;
  /** With qop=auth: nonce count (8 hex digits as sent) and client nonce. Without qop: omit both. */
  qop?: "auth";
  nc?: string;
  cnonce?: string;
}

/**
 * The expected `response` parameter: H(HA1:nonce:nc:cnonce:qop:HA2) with qop=auth,
 * H(HA1:nonce:HA2) without (RFC 2069 compatibility), HA2 = H(method:uri).
 */
export function computeDigestResponse(input: DigestResponseInput): string {
  const ha2 = hashHex(input.algorithm, `${input.method}:${input.uri}`);
  if (input.qop === "auth") {
    return hashHex(
      input.algorithm,
      `${input.ha1}:${input.nonce}:${input.nc ?? ""}:${input.cnonce ?? ""}:auth:${ha2}`,
    );
  }
  return hashHex(input.algorithm, `${input.ha1}:${input.nonce}:${ha2}`);
}
