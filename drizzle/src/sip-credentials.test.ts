// HA1 and digest responses against the worked examples of RFC 2617 §3.5 and RFC 7616 §3.9.1.
import { describe, expect, it } from "vitest";
import { computeDeviceHa1, computeDigestResponse, computeHa1 } from "./sip-credentials.ts";

describe("computeHa1", () => {
  it("matches RFC 2617 §3.5 (MD5): HA1 and the response Mufasa's browser sends", () => {
    const ha1 = computeHa1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5");
    expect(ha1).toBe("939e7578ed9e3c518a452acee763bce9");
    const response = computeDigestResponse({
      ha1,
      algorithm: "MD5",
      method: "GET",
      uri: "/dir/index.html",
      nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
      qop: "auth",
      nc: "00000001",
      cnonce: "0a4f113b",
    });
    expect(response).toBe("6629fae49393a05397450978507c4ef1");
  });

  const rfc7616 = {
    method: "GET",
    uri: "/dir/index.html",
    nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    qop: "auth" as const,
    nc: "00000001",
    cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
  };

  it("matches RFC 7616 §3.9.1 with MD5", () => {
    const ha1 = computeHa1("Mufasa", "http-auth@example.org", "Circle of Life", "MD5");
    expect(computeDigestResponse({ ha1, algorithm: "MD5", ...rfc7616 })).toBe(
      "8ca523f5e9506fed4657c9700eebdbec",
    );
  });

  it("matches RFC 7616 §3.9.1 with SHA-256", () => {
    const ha1 = computeHa1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256");
    expect(ha1).toHaveLength(64);
    expect(computeDigestResponse({ ha1, algorithm: "SHA-256", ...rfc7616 })).toBe(
      "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    );
  });

  it("rejects a wrong password: the response differs", () => {
    const right = computeHa1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5");
    const wrong = computeHa1("Mufasa", "testrealm@host.com", "circle of life", "MD5");
    expect(wrong).not.toBe(right);
  });

  it("hashes non-ASCII passwords as UTF-8 and gives a device both forms", () => {
    const both = computeDeviceHa1("101", "gosip", "pässwörd");
    expect(both.ha1Md5).toMatch(/^[0-9a-f]{32}$/);
    expect(both.ha1Sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(both.ha1Md5).toBe(computeHa1("101", "gosip", "pässwörd", "MD5"));
  });

  it("computes the RFC 2069 response when there is no qop", () => {
    // RFC 2069 §2.4's example; the value printed there (e966c932...) is wrong, this is the corrected one.
    const ha1 = computeHa1("Mufasa", "testrealm@host.com", "CircleOfLife", "MD5");
    const response = computeDigestResponse({
      ha1,
      algorithm: "MD5",
      method: "GET",
      uri: "/dir/index.html",
      nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    });
    expect(response).toBe("1949323746fe6a43ef61f9606e7febea");
  });
});
