// Sign-in and the 5-failures / 15-minutes lockout, per account and per client IP.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createTestEdge,
  createUser,
  login,
  request,
  sessionTokenFrom,
  TestClock,
  type TestEdge,
  type TestUser,
} from "../test-support.ts";

let t: TestEdge;
let clock: TestClock;
let alice: TestUser;

beforeEach(async () => {
  clock = new TestClock();
  t = await createTestEdge({ clock });
  alice = await createUser(t, { role: "user", email: "alice@example.com", password: "alice-password" });
});
afterEach(async () => {
  await t.close();
});

const MINUTE = 60_000;

function signIn(email: string, password: string, ip?: string) {
  return request(t, "POST", "/api/auth/login", { body: { email, password }, ip });
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

describe("POST /api/auth/login", () => {
  it("signs in with the right password (email case-insensitive) and sets the session cookie", async () => {
    const res = await signIn("  Alice@Example.COM ", "alice-password");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      user: { id: alice.id, email: "alice@example.com", name: alice.name, role: "user" },
    });
    expect(sessionTokenFrom(res)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("answers the same 401 for a wrong password and an unknown email", async () => {
    const wrong = await signIn("alice@example.com", "wrong-password");
    const unknown = await signIn("nobody@example.com", "alice-password");
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(await errorOf(wrong)).toEqual(await errorOf(unknown));
    expect((await errorOf(await signIn("alice@example.com", "x"))).message).toBe("Invalid email or password");
    expect(sessionTokenFrom(wrong)).toBeUndefined();
  });

  it("rejects a malformed body with 400, never 500", async () => {
    const res = await request(t, "POST", "/api/auth/login", {
      headers: { "content-type": "application/json" },
      body: undefined,
    });
    expect(res.status).toBe(400);
    const broken = await t.app.request(
      "http://localhost:8080/api/auth/login",
      {
        method: "POST",
        headers: { "content-type": "application/json", "x-gosip-csrf": "1" },
        body: "{not json",
      },
      { clientIp: "192.0.2.1" },
    );
    expect(broken.status).toBe(400);
    expect((await errorOf(broken)).code).toBe("bad_request");
    expect((await errorOf(await signIn("alice@example.com", ""))).code).toBe("validation_failed");
  });

  it("locks the account after 5 failures for 15 minutes, even for the right password", async () => {
    for (let i = 0; i < 5; i++) expect((await signIn("alice@example.com", `guess-${i}`)).status).toBe(401);

    const locked = await signIn("alice@example.com", "alice-password");
    expect(locked.status).toBe(423);
    expect((await errorOf(locked)).code).toBe("locked");
    expect(locked.headers.get("retry-after")).toBe("900");

    clock.advance(14 * MINUTE + 59_000);
    const stillLocked = await signIn("alice@example.com", "alice-password");
    expect(stillLocked.status).toBe(423);
    expect(stillLocked.headers.get("retry-after")).toBe("1");

    clock.advance(1000); // 15:00 after the 5th failure
    expect((await signIn("alice@example.com", "alice-password")).status).toBe(200);
  });

  it("counts the account lock from the 5th failure, not the 1st, and ignores attempts made while locked", async () => {
    for (let i = 0; i < 4; i++) {
      expect((await signIn("alice@example.com", "wrong", `198.51.100.${i}`)).status).toBe(401);
      clock.advance(2 * MINUTE);
    }
    expect((await signIn("alice@example.com", "wrong", "198.51.100.9")).status).toBe(401); // 5th at +8 min
    clock.advance(10 * MINUTE); // 18 min after the 1st failure, 10 after the 5th
    const locked = await signIn("alice@example.com", "alice-password", "198.51.100.10");
    expect(locked.status).toBe(423);
    expect(locked.headers.get("retry-after")).toBe("300");
    clock.advance(5 * MINUTE);
    expect((await signIn("alice@example.com", "alice-password", "198.51.100.11")).status).toBe(200);
  });

  it("does not lock for 5 failures spread over more than 15 minutes", async () => {
    for (let i = 0; i < 5; i++) {
      expect((await signIn("alice@example.com", "wrong")).status).toBe(401);
      clock.advance(4 * MINUTE);
    }
    expect((await signIn("alice@example.com", "alice-password")).status).toBe(200);
  });

  it("resets the account count after a successful sign-in", async () => {
    for (let i = 0; i < 4; i++) await signIn("alice@example.com", "wrong", "198.51.100.1");
    expect((await signIn("alice@example.com", "alice-password", "198.51.100.2")).status).toBe(200);
    for (let i = 0; i < 4; i++) await signIn("alice@example.com", "wrong", "198.51.100.3");
    expect((await signIn("alice@example.com", "alice-password", "198.51.100.4")).status).toBe(200);
  });

  it("locks unknown accounts the same way, so locking reveals nothing", async () => {
    for (let i = 0; i < 5; i++) await signIn("ghost@example.com", "wrong", `198.51.100.${i}`);
    expect((await signIn("ghost@example.com", "wrong", "198.51.100.20")).status).toBe(423);
  });

  it("locks a client IP after 5 failures across different accounts", async () => {
    const bob = await createUser(t, { email: "bob@example.com", password: "bob-password" });
    const attacker = "203.0.113.7";
    for (let i = 0; i < 5; i++) await signIn(`victim${i}@example.com`, "wrong", attacker);

    const fromAttacker = await signIn(bob.email, bob.password, attacker);
    expect(fromAttacker.status).toBe(429);
    expect((await errorOf(fromAttacker)).code).toBe("rate_limited");
    expect(fromAttacker.headers.get("retry-after")).toBe("900");
    // Bob from his own address is not affected.
    expect((await signIn(bob.email, bob.password, "198.51.100.1")).status).toBe(200);

    clock.advance(15 * MINUTE);
    expect((await signIn(bob.email, bob.password, attacker)).status).toBe(200);
  });

  it("counts the socket address whatever X-Forwarded-For / X-Real-IP / CF-Connecting-IP say", async () => {
    const attacker = "203.0.113.8";
    for (let i = 0; i < 5; i++) {
      const res = await request(t, "POST", "/api/auth/login", {
        body: { email: `victim${i}@example.com`, password: "wrong" },
        ip: attacker,
        headers: {
          "x-forwarded-for": `10.0.0.${i}`,
          "x-real-ip": `10.0.1.${i}`,
          "cf-connecting-ip": `10.0.2.${i}`,
          forwarded: `for=10.0.3.${i}`,
        },
      });
      expect(res.status).toBe(401);
    }
    const res = await request(t, "POST", "/api/auth/login", {
      body: { email: alice.email, password: alice.password },
      ip: attacker,
      headers: { "x-forwarded-for": "10.9.9.9" },
    });
    expect(res.status).toBe(429);
  });

  it("counts IPv6 clients per /64, so rotating addresses within it does not help", async () => {
    for (let i = 1; i <= 5; i++)
      await signIn(`victim${i}@example.com`, "wrong", `2001:db8:1:2::${i.toString(16)}`);
    expect((await signIn(alice.email, alice.password, "2001:db8:1:2:ffff::9")).status).toBe(429);
    expect((await signIn(alice.email, alice.password, "2001:db8:1:3::1")).status).toBe(200);
  });

  it("lets at most 5 of a burst of parallel guesses reach the password check", async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => signIn("alice@example.com", `guess-${i}`, `198.51.100.${i}`)),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 423)).toHaveLength(7);
  });

  it("needs the CSRF header", async () => {
    const res = await request(t, "POST", "/api/auth/login", {
      body: { email: alice.email, password: alice.password },
      csrf: false,
    });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("csrf_failed");
  });

  it("never logs the password or the email", async () => {
    await signIn("alice@example.com", "wrong-password-123");
    await login(t, alice.email, alice.password);
    const logged = JSON.stringify(t.logs);
    expect(logged).not.toContain("wrong-password-123");
    expect(logged).not.toContain(alice.password);
    expect(logged).not.toContain("alice@example.com");
    expect(t.logs.map((l) => l.msg)).toContain("signed in");
  });
});
