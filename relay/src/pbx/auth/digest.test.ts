// DigestAuth through its public API: challenges as a phone reads them, responses computed the way a phone
// computes them (the shared sip-credentials helpers), stale and replayed nonces, no user enumeration.
import { computeDeviceHa1, computeDigestResponse, type DigestAlgorithm } from "@gosip/drizzle";
import { describe, expect, it } from "vitest";
import { DigestAuth, type DigestCredentials, parseDigestHeader } from "./digest.ts";
import { wantsMd5Only } from "./middleware.ts";

const REALM = "gosip.test";
const URI = "sip:gosip.test";
const alice: DigestCredentials<string> = {
  ...computeDeviceHa1("alice", REALM, "secret"),
  subject: "dev-alice",
};
const lookup = (u: string) => (u === "alice" ? alice : undefined);

function answer(
  challenge: string,
  o: { username?: string; password?: string; nc?: string; algorithm?: DigestAlgorithm; uri?: string },
) {
  const p = parseDigestHeader(challenge);
  const nonce = p?.get("nonce") ?? "";
  const algorithm = o.algorithm ?? "MD5";
  const username = o.username ?? "alice";
  const ha1s = computeDeviceHa1(username, REALM, o.password ?? "secret");
  const nc = o.nc ?? "00000001";
  const uri = o.uri ?? URI;
  const response = computeDigestResponse({
    ha1: algorithm === "MD5" ? ha1s.ha1Md5 : ha1s.ha1Sha256,
    algorithm,
    method: "REGISTER",
    uri,
    nonce,
    qop: "auth",
    nc,
    cnonce: "c0ffee",
  });
  return `Digest username="${username}", realm="${REALM}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}, qop=auth, nc=${nc}, cnonce="c0ffee", opaque="${p?.get("opaque") ?? ""}"`;
}

describe("DigestAuth", () => {
  let clock = 1_700_000_000_000;
  const auth = new DigestAuth({ realm: () => REALM, now: () => clock });
  const req = { method: "REGISTER", uri: URI };

  it("offers MD5 first, then SHA-256, with qop=auth and opaque", () => {
    const [first, second] = auth.challengeValues();
    expect(first).toMatch(
      /^Digest realm="gosip.test", nonce="[^"]+", opaque="[0-9a-f]+", algorithm=MD5, qop="auth"$/,
    );
    expect(second).toContain("algorithm=SHA-256");
    expect(parseDigestHeader(first)?.get("nonce")).toBe(parseDigestHeader(second)?.get("nonce"));
  });

  it("sends both challenges as two header lines, or MD5 alone for clients that choke on SHA-256", () => {
    const sent: { status: number; headers: Record<string, string> }[] = [];
    const res = {
      send: (status: number, opts: { headers: Record<string, string> }) => sent.push({ status, ...opts }),
    };
    auth.challenge(res, { status: 401 });
    auth.challenge(res, { status: 407, md5Only: true });
    const both = sent[0]?.headers["WWW-Authenticate"] ?? "";
    expect(both.split("\r\nWWW-Authenticate: ").map((v) => /algorithm=([\w-]+)/.exec(v)?.[1])).toEqual([
      "MD5",
      "SHA-256",
    ]);
    const single = sent[1]?.headers["Proxy-Authenticate"] ?? "";
    expect(single).toContain("algorithm=MD5");
    expect(single).not.toContain("SHA-256");
    expect(sent[1]?.status).toBe(407);
    expect(wantsMd5Only("baresip v1.0.0 (x86_64/linux)")).toBe(true);
    expect(wantsMd5Only("Linphone Desktop/5.2.6 (belle-sip/5.2.0)")).toBe(false);
    expect(wantsMd5Only("Grandstream GXP1760W 1.0.7.13")).toBe(false);
    expect(wantsMd5Only(undefined)).toBe(false);
  });

  it("accepts MD5 and SHA-256 answers and returns the subject", () => {
    for (const algorithm of ["MD5", "SHA-256"] as const) {
      const [c] = auth.challengeValues();
      const r = auth.verify(req, answer(c, { algorithm }), lookup);
      expect(r).toEqual({ ok: true, username: "alice", algorithm, subject: "dev-alice" });
    }
  });

  it("refuses a wrong password and an unknown user alike", () => {
    const [c] = auth.challengeValues();
    expect(auth.verify(req, answer(c, { password: "nope" }), lookup)).toMatchObject({
      ok: false,
      stale: false,
      reason: "wrong_password",
    });
    expect(auth.verify(req, answer(c, { username: "mallory" }), lookup)).toMatchObject({
      ok: false,
      stale: false,
      reason: "unknown_user",
    });
  });

  it("refuses a replayed nonce count, accepts an increasing one", () => {
    const [c] = auth.challengeValues();
    expect(auth.verify(req, answer(c, { nc: "00000001" }), lookup).ok).toBe(true);
    expect(auth.verify(req, answer(c, { nc: "00000001" }), lookup)).toMatchObject({
      ok: false,
      stale: true,
      reason: "replay",
    });
    expect(auth.verify(req, answer(c, { nc: "00000002" }), lookup).ok).toBe(true);
  });

  it("says stale for an expired nonce answered correctly, wrong password for a wrong answer", () => {
    const [c] = auth.challengeValues();
    clock += 5 * 60_000 + 1;
    expect(auth.verify(req, answer(c, {}), lookup)).toMatchObject({
      ok: false,
      stale: true,
      reason: "stale",
    });
    expect(auth.verify(req, answer(c, { password: "x" }), lookup)).toMatchObject({
      ok: false,
      stale: false,
      reason: "wrong_password",
    });
  });

  it("refuses forged nonces, another uri, another realm, and a missing header", () => {
    const [c] = auth.challengeValues();
    const forged = c.replace(/nonce="([^"]+)"/, (_m, n: string) => `nonce="${n.slice(0, -2)}AA"`);
    expect(auth.verify(req, answer(forged, {}), lookup)).toMatchObject({ reason: "bad_nonce" });
    expect(auth.verify(req, answer(c, { uri: "sip:other.test" }), lookup)).toMatchObject({ reason: "uri" });
    const other = new DigestAuth({ realm: () => "other.test" });
    expect(other.verify(req, answer(c, {}), lookup)).toMatchObject({ reason: "realm" });
    expect(auth.verify(req, undefined, lookup)).toMatchObject({ reason: "missing" });
  });

  it("parses quoted values with commas and escapes, unquoted tokens, and refuses other schemes", () => {
    const p = parseDigestHeader(
      'Digest username="a\\"b", realm="x, y",nonce=abc , uri="sip:u@h;transport=udp", qop=auth, nc=00000001',
    );
    expect(p && Object.fromEntries(p)).toEqual({
      username: 'a"b',
      realm: "x, y",
      nonce: "abc",
      uri: "sip:u@h;transport=udp",
      qop: "auth",
      nc: "00000001",
    });
    expect(parseDigestHeader("Basic dXNlcjpwYXNz")).toBeUndefined();
    expect(parseDigestHeader('Digestusername="x"')).toBeUndefined();
  });

  it("keeps the replay table bounded", () => {
    const small = new DigestAuth({ realm: () => REALM, maxTrackedNonces: 10 });
    for (let i = 0; i < 50; i++) {
      const [c] = small.challengeValues();
      expect(small.verify(req, answer(c, {}), lookup).ok).toBe(true);
    }
    expect(small.trackedNonces).toBeLessThanOrEqual(10);
  });
});
