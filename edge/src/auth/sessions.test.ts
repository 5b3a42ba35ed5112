// Sessions: cookie attributes, forged/expired cookies, sliding expiry, logout,
// password change, roles and the CSRF defence on state-changing requests.
import { sessions } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createTestEdge,
  createUser,
  login,
  loginAs,
  request,
  sessionTokenFrom,
  TestClock,
  type TestEdge,
  type TestUser,
} from "../test-support.ts";
import { requireAdmin } from "./middleware.ts";
import { sessionIdOf } from "./sessions.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let t: TestEdge;
let clock: TestClock;
let alice: TestUser;

beforeEach(async () => {
  clock = new TestClock();
  t = await createTestEdge({ clock });
  alice = await createUser(t, { email: "alice@example.com", password: "alice-password" });
});
afterEach(async () => {
  await t.close();
});

const me = (cookie?: string) =>
  request(t, "GET", "/api/auth/me", cookie === undefined ? {} : { headers: { cookie } });

describe("session cookie", () => {
  it("is HttpOnly, SameSite=Lax, Path=/, 24 h, and not Secure on an http PUBLIC_URL", async () => {
    const res = await request(t, "POST", "/api/auth/login", {
      body: { email: alice.email, password: alice.password },
    });
    const [cookie] = res.headers.getSetCookie();
    expect(cookie).toMatch(/^gosip_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    expect(cookie).toContain("Path=/");
    expect(cookie).toContain("Max-Age=86400");
    expect(cookie).not.toContain("Secure");
  });

  it("is Secure when PUBLIC_URL is https", async () => {
    const https = await createTestEdge({ publicUrl: "https://pbx.example.com" });
    try {
      const user = await createUser(https, { password: "some-password" });
      const res = await request(https, "POST", "/api/auth/login", {
        body: { email: user.email, password: user.password },
      });
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie()[0]).toContain("Secure");
    } finally {
      await https.close();
    }
  });

  it("stores only the SHA-256 of the token", async () => {
    const s = await login(t, alice.email, alice.password);
    const rows = await t.db.select().from(sessions);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.id).toBe(sessionIdOf(s.token));
    expect(JSON.stringify(rows)).not.toContain(s.token);
  });
});

describe("session validity", () => {
  it("answers 401 without a session, with a forged cookie, and with a well-formed unknown token", async () => {
    expect((await me()).status).toBe(401);
    expect((await me("gosip_session=forged")).status).toBe(401);
    const unknown = await me(`gosip_session=${"A".repeat(43)}`);
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ error: { code: "unauthorized", message: "Sign in first" } });
    // The bad cookie is cleared.
    expect(unknown.headers.getSetCookie()[0]).toMatch(/^gosip_session=;.*Max-Age=0/);
  });

  it("expires after 24 h without use and the expired row is removed", async () => {
    const s = await login(t, alice.email, alice.password);
    clock.advance(24 * HOUR - 1000);
    expect((await me(s.cookie)).status).toBe(200); // slides: now valid until +24 h from here
    clock.advance(24 * HOUR);
    expect((await me(s.cookie)).status).toBe(401);
    expect(
      await t.db
        .select()
        .from(sessions)
        .where(eq(sessions.id, sessionIdOf(s.token))),
    ).toHaveLength(0);
  });

  it("slides the expiry on use, writing at most once a minute", async () => {
    const s = await login(t, alice.email, alice.password);
    const id = sessionIdOf(s.token);
    const expiry = async () =>
      (await t.db.select().from(sessions).where(eq(sessions.id, id)))[0]?.expiresAt.getTime();
    const start = clock.now();
    expect(await expiry()).toBe(start + 24 * HOUR);

    clock.advance(30_000);
    const quiet = await me(s.cookie);
    expect(quiet.status).toBe(200);
    expect(await expiry()).toBe(start + 24 * HOUR); // not written within the minute
    expect(quiet.headers.getSetCookie()).toEqual([]);

    clock.advance(20 * HOUR);
    const slid = await me(s.cookie);
    expect(await expiry()).toBe(clock.now() + 24 * HOUR);
    expect(slid.headers.getSetCookie()[0]).toContain(`gosip_session=${s.token};`);
    expect(slid.headers.getSetCookie()[0]).toContain("Max-Age=86400");

    // Used every 20 h, it lives on well past the first 24 h.
    clock.advance(20 * HOUR);
    expect((await me(s.cookie)).status).toBe(200);
  });

  it("is revoked by logout", async () => {
    const s = await login(t, alice.email, alice.password);
    const other = await login(t, alice.email, alice.password);
    const out = await request(t, "POST", "/api/auth/logout", { as: s });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()[0]).toMatch(/^gosip_session=;.*Max-Age=0/);
    expect((await me(s.cookie)).status).toBe(401);
    // Logging out one browser leaves the others signed in.
    expect((await me(other.cookie)).status).toBe(200);
  });
});

describe("POST /api/auth/password", () => {
  it("changes the password, revokes the other sessions and renews the current one", async () => {
    const laptop = await login(t, alice.email, alice.password);
    const phone = await login(t, alice.email, alice.password);
    const res = await request(t, "POST", "/api/auth/password", {
      as: laptop,
      body: { currentPassword: alice.password, newPassword: "a-brand-new-password" },
    });
    expect(res.status).toBe(204);
    const renewed = sessionTokenFrom(res);
    expect(renewed).toMatch(/^[A-Za-z0-9_-]{43}$/);

    expect((await me(phone.cookie)).status).toBe(401);
    expect((await me(laptop.cookie)).status).toBe(401);
    expect((await me(`gosip_session=${renewed}`)).status).toBe(200);

    const old = await request(t, "POST", "/api/auth/login", {
      body: { email: alice.email, password: alice.password },
    });
    expect(old.status).toBe(401);
    await login(t, alice.email, "a-brand-new-password");
  });

  it("refuses a wrong current password (403) and a short new one (400)", async () => {
    const s = await login(t, alice.email, alice.password);
    const wrong = await request(t, "POST", "/api/auth/password", {
      as: s,
      body: { currentPassword: "not-my-password", newPassword: "a-brand-new-password" },
    });
    expect(wrong.status).toBe(403);
    const short = await request(t, "POST", "/api/auth/password", {
      as: s,
      body: { currentPassword: alice.password, newPassword: "short" },
    });
    expect(short.status).toBe(400);
    expect((await me(s.cookie)).status).toBe(200);
    await login(t, alice.email, alice.password);
  });

  it("needs a session", async () => {
    const res = await request(t, "POST", "/api/auth/password", {
      body: { currentPassword: alice.password, newPassword: "a-brand-new-password" },
    });
    expect(res.status).toBe(401);
  });
});

describe("roles", () => {
  it("requireAdmin answers 401 without a session, 403 for a user, and lets an admin through", async () => {
    t.app.get("/api/test-admin-only", requireAdmin, (c) => c.json({ ok: true }));
    const user = await loginAs(t, "user");
    const admin = await loginAs(t, "admin");
    expect((await request(t, "GET", "/api/test-admin-only")).status).toBe(401);
    const forbidden = await request(t, "GET", "/api/test-admin-only", { as: user.session });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect((await request(t, "GET", "/api/test-admin-only", { as: admin.session })).status).toBe(200);
  });
});

describe("CSRF", () => {
  it("refuses a state-changing request with a session but without the CSRF header (403), accepts it with", async () => {
    const s = await login(t, alice.email, alice.password);
    const forged = await request(t, "POST", "/api/auth/logout", { as: s, csrf: false });
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("csrf_failed");
    expect((await me(s.cookie)).status).toBe(200); // still signed in: the forged logout did nothing

    const ok = await request(t, "POST", "/api/auth/logout", { as: s });
    expect(ok.status).toBe(204);
    expect((await me(s.cookie)).status).toBe(401);
  });

  it("refuses a foreign Origin or a cross-site fetch even with the header", async () => {
    const s = await login(t, alice.email, alice.password);
    const foreign = await request(t, "POST", "/api/auth/logout", {
      as: s,
      headers: { origin: "https://evil.example" },
    });
    expect(foreign.status).toBe(403);
    const crossSite = await request(t, "POST", "/api/auth/logout", {
      as: s,
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(crossSite.status).toBe(403);
    expect((await me(s.cookie)).status).toBe(200);

    const sameOrigin = await request(t, "POST", "/api/auth/logout", {
      as: s,
      headers: { origin: "http://localhost:8080", "sec-fetch-site": "same-origin" },
    });
    expect(sameOrigin.status).toBe(204);
  });

  it("does not apply to safe methods or to requests without the session cookie", async () => {
    const s = await login(t, alice.email, alice.password);
    expect((await request(t, "GET", "/api/auth/me", { as: s, csrf: false })).status).toBe(200);
    // A cookie-less POST (e.g. a signed Twilio webhook) is not cookie-authenticated: it reaches routing (404 here).
    const res = await request(t, "POST", "/api/no-such-webhook", { csrf: false, body: {} });
    expect(res.status).toBe(404);
  });
});
