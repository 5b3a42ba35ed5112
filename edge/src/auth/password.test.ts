// Password hashing: self-describing scrypt strings, verification, rehash on stronger parameters.
import { describe, expect, it } from "vitest";
import { DEFAULT_SCRYPT_PARAMS, hashPassword, needsRehash, verifyPassword } from "./password.ts";

describe("password hashing", () => {
  it("stores algorithm, parameters, salt and hash, and verifies only the right password", async () => {
    const stored = await hashPassword("correct horse battery");
    expect(stored).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(await verifyPassword("correct horse battery", stored)).toBe(true);
    expect(await verifyPassword("correct horse batterY", stored)).toBe(false);
    expect(needsRehash(stored)).toBe(false);
  });

  it("salts every hash", async () => {
    const params = { ln: 4, r: 8, p: 1 };
    expect(await hashPassword("same password", params)).not.toBe(await hashPassword("same password", params));
  });

  it("verifies hashes made with older, cheaper parameters and asks for a rehash", async () => {
    const old = await hashPassword("old password!", { ln: 10, r: 8, p: 1 });
    expect(old.startsWith("$scrypt$ln=10,r=8,p=1$")).toBe(true);
    expect(await verifyPassword("old password!", old)).toBe(true);
    expect(needsRehash(old)).toBe(true);
    expect(needsRehash(old, { ...DEFAULT_SCRYPT_PARAMS, ln: 10 })).toBe(false);
  });

  it("treats the same password typed in composed or decomposed Unicode as equal", async () => {
    const stored = await hashPassword("caf\u00e9-password", { ln: 4, r: 8, p: 1 });
    expect(await verifyPassword("cafe\u0301-password", stored)).toBe(true);
  });

  it("fails closed on malformed or absurd stored strings", async () => {
    expect(await verifyPassword("anything", "")).toBe(false);
    expect(await verifyPassword("anything", "$2b$10$abcdefghijklmnopqrstuv")).toBe(false);
    expect(await verifyPassword("anything", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA")).toBe(false);
    expect(needsRehash("garbage")).toBe(true);
  });
});
