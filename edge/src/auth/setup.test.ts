// First-run setup: creates the one admin, then is closed for good.
import { users } from "@gosip/drizzle";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createTestEdge,
  createUser,
  login,
  request,
  sessionTokenFrom,
  type TestEdge,
} from "../test-support.ts";

let t: TestEdge;
beforeEach(async () => {
  t = await createTestEdge();
});
afterEach(async () => {
  await t.close();
});

const admin = { email: "Owner@Example.com", password: "correct horse battery" };

describe("POST /api/setup", () => {
  it("creates the admin once, signs them in, then answers 409 setup_closed", async () => {
    expect(await (await request(t, "GET", "/api/setup/status")).json()).toEqual({ needsSetup: true });

    const res = await request(t, "POST", "/api/setup", { body: admin });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { user: { email: string; role: string } };
    expect(body.user).toMatchObject({ email: "owner@example.com", role: "admin" });
    const token = sessionTokenFrom(res);
    expect(token).toBeTruthy();
    const me = await request(t, "GET", "/api/auth/me", { headers: { cookie: `gosip_session=${token}` } });
    expect(me.status).toBe(200);

    expect(await (await request(t, "GET", "/api/setup/status")).json()).toEqual({ needsSetup: false });
    const again = await request(t, "POST", "/api/setup", {
      body: { email: "evil@example.com", password: "x".repeat(12) },
    });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("setup_closed");

    // The admin can sign in with the password given at setup; the intruder cannot.
    await login(t, "owner@example.com", admin.password);
    const evil = await request(t, "POST", "/api/auth/login", {
      body: { email: "evil@example.com", password: "x".repeat(12) },
    });
    expect(evil.status).toBe(401);
  });

  it("lets exactly one of two concurrent setups create an admin", async () => {
    const [a, b] = await Promise.all([
      request(t, "POST", "/api/setup", { body: { email: "a@example.com", password: "password-a-long" } }),
      request(t, "POST", "/api/setup", { body: { email: "b@example.com", password: "password-b-long" } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    const rows = await t.db.select({ email: users.email, role: users.role }).from(users);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.role).toBe("admin");
  });

  it("is closed when users already exist", async () => {
    await createUser(t, { role: "admin" });
    const res = await request(t, "POST", "/api/setup", { body: admin });
    expect(res.status).toBe(409);
  });

  it("rejects a short password and a bad email with 400 validation_failed", async () => {
    const short = await request(t, "POST", "/api/setup", {
      body: { email: "a@example.com", password: "1234567" },
    });
    expect(short.status).toBe(400);
    expect(((await short.json()) as { error: { code: string } }).error.code).toBe("validation_failed");
    const bad = await request(t, "POST", "/api/setup", {
      body: { email: "not-an-email", password: "12345678" },
    });
    expect(bad.status).toBe(400);
    expect(await (await request(t, "GET", "/api/setup/status")).json()).toEqual({ needsSetup: true });
  });

  it("needs the CSRF header", async () => {
    const res = await request(t, "POST", "/api/setup", { body: admin, csrf: false });
    expect(res.status).toBe(403);
    expect(await (await request(t, "GET", "/api/setup/status")).json()).toEqual({ needsSetup: true });
  });
});
