// /api/users through the real app and a real libSQL database: admin CRUD,
// self-service for users, the last-admin guard, and what each role may reach.
import { users } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { verifyPassword } from "../auth/password.ts";
import {
  createUser,
  type ErrorJson,
  loginAs,
  request,
  signIn,
  type TestEdge,
  type TestSession,
  type TestUser,
  useAdminEdge,
} from "../test-support.ts";

let t: TestEdge;
let admin: { user: TestUser; session: TestSession };

useAdminEdge((edge) => {
  ({ t, admin } = edge);
});

describe("admin user management", () => {
  it("creates a user, which can then sign in; the hash never leaves the server", async () => {
    const res = await request(t, "POST", "/api/users", {
      as: admin.session,
      body: { email: "Alice@Example.TEST", name: "Alice", role: "user", password: "long enough pw" },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ email: "alice@example.test", name: "Alice", role: "user", dnd: false });
    expect(Object.keys(body).sort()).toEqual([
      "createdAt",
      "dnd",
      "email",
      "id",
      "name",
      "role",
      "updatedAt",
    ]);
    expect(typeof body.createdAt === "string" && !Number.isNaN(Date.parse(body.createdAt))).toBe(true);

    const [row] = await t.db.select().from(users).where(eq(users.email, "alice@example.test"));
    expect(row && (await verifyPassword("long enough pw", row.passwordHash))).toBe(true);

    const login = await request(t, "POST", "/api/auth/login", {
      body: { email: "alice@example.test", password: "long enough pw" },
    });
    expect(login.status).toBe(200);
  });

  it("rejects bad bodies with the validation envelope", async () => {
    const cases = [
      { email: "not-an-email", name: "X", password: "long enough pw" },
      { email: "b@example.test", name: "", password: "long enough pw" },
      { email: "b@example.test", name: "B", password: "short" },
      { email: "b@example.test", name: "B", password: "long enough pw", role: "root" },
      { email: "b@example.test", name: "B", password: "long enough pw", passwordHash: "x" },
    ];
    for (const body of cases) {
      const res = await request(t, "POST", "/api/users", { as: admin.session, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.code).toBe("validation_failed");
      expect(Array.isArray(err.error.details) && err.error.details.length > 0).toBe(true);
    }
  });

  it("answers 409 for a duplicate email, whatever its case", async () => {
    const existing = await createUser(t, { email: "dup@example.test" });
    const res = await request(t, "POST", "/api/users", {
      as: admin.session,
      body: { email: "DUP@example.test", name: "Dup", password: "long enough pw" },
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as ErrorJson).error.code).toBe("conflict");
    const other = await createUser(t);
    const patch = await request(t, "PATCH", `/api/users/${other.id}`, {
      as: admin.session,
      body: { email: existing.email },
    });
    expect(patch.status).toBe(409);
  });

  it("paginates with a total: default 20, max 100", async () => {
    for (let i = 0; i < 24; i++) await createUser(t);
    const first = await request(t, "GET", "/api/users", { as: admin.session });
    expect(first.status).toBe(200);
    const page = (await first.json()) as { items: unknown[]; total: number; limit: number; offset: number };
    expect(page).toMatchObject({ total: 25, limit: 20, offset: 0 });
    expect(page.items).toHaveLength(20);
    const rest = (await (await request(t, "GET", "/api/users?offset=20", { as: admin.session })).json()) as {
      items: unknown[];
    };
    expect(rest.items).toHaveLength(5);
    const all = (await (await request(t, "GET", "/api/users?limit=100", { as: admin.session })).json()) as {
      items: unknown[];
    };
    expect(all.items).toHaveLength(25);
    const tooMany = await request(t, "GET", "/api/users?limit=101", { as: admin.session });
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as ErrorJson).error.code).toBe("validation_failed");
  });

  it("searches by email or name and filters by role", async () => {
    await createUser(t, { email: "carol@example.test", name: "Carol Smith" });
    await createUser(t, { email: "dave@example.test", name: "Dave 100%" });
    const q = async (query: string) =>
      (
        (await (await request(t, "GET", `/api/users?${query}`, { as: admin.session })).json()) as {
          items: { email: string }[];
          total: number;
        }
      ).items.map((u) => u.email);
    expect(await q("q=smith")).toEqual(["carol@example.test"]);
    expect(await q("q=DAVE")).toEqual(["dave@example.test"]);
    expect(await q("q=100%25")).toEqual(["dave@example.test"]);
    expect(await q("role=admin")).toEqual([admin.user.email]);
  });

  it("changes role and password; a new password ends the user's sessions", async () => {
    const { user, session } = await loginAs(t, "user");
    const res = await request(t, "PATCH", `/api/users/${user.id}`, {
      as: admin.session,
      body: { role: "admin", password: "a brand new password" },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { role: string }).role).toBe("admin");
    const me = await request(t, "GET", "/api/users/me", { as: session });
    expect(me.status).toBe(401);
  });

  it("an admin setting their own password stays signed in here, other sessions end", async () => {
    const other = await signIn(t, admin.user);
    const res = await request(t, "PATCH", "/api/users/me", {
      as: admin.session,
      body: { password: "another long password" },
    });
    expect(res.status).toBe(200);
    expect((await request(t, "GET", "/api/users/me", { as: admin.session })).status).toBe(200);
    expect((await request(t, "GET", "/api/users/me", { as: other })).status).toBe(401);
  });

  it("404s for ids that do not exist", async () => {
    for (const [method, body] of [
      ["GET", undefined],
      ["PATCH", { name: "X" }],
      ["DELETE", undefined],
    ] as const) {
      const res = await request(t, method, "/api/users/00000000-0000-0000-0000-000000000000", {
        as: admin.session,
        body,
      });
      expect(res.status, method).toBe(404);
      expect(((await res.json()) as ErrorJson).error.code).toBe("not_found");
    }
  });

  it("never deletes or demotes the last admin", async () => {
    const del = await request(t, "DELETE", `/api/users/${admin.user.id}`, { as: admin.session });
    expect(del.status).toBe(409);
    const demote = await request(t, "PATCH", `/api/users/me`, { as: admin.session, body: { role: "user" } });
    expect(demote.status).toBe(409);
    expect(((await demote.json()) as ErrorJson).error.message).toMatch(/at least one administrator/);

    const second = await createUser(t, { role: "admin" });
    const ok = await request(t, "PATCH", `/api/users/${second.id}`, {
      as: admin.session,
      body: { role: "user" },
    });
    expect(ok.status).toBe(200);
    const third = await createUser(t, { role: "admin" });
    expect((await request(t, "DELETE", `/api/users/${third.id}`, { as: admin.session })).status).toBe(204);
    expect((await request(t, "GET", `/api/users/${third.id}`, { as: admin.session })).status).toBe(404);
    // Still the only admin: still protected.
    expect((await request(t, "DELETE", `/api/users/${admin.user.id}`, { as: admin.session })).status).toBe(
      409,
    );
  });

  it("keeps one admin when two admins demote each other at the same time", async () => {
    const other = await createUser(t, { role: "admin" });
    const otherSession = await signIn(t, other);
    const [a, b] = await Promise.all([
      request(t, "PATCH", `/api/users/${other.id}`, { as: admin.session, body: { role: "user" } }),
      request(t, "PATCH", `/api/users/${admin.user.id}`, { as: otherSession, body: { role: "user" } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const admins = await t.db.select().from(users).where(eq(users.role, "admin"));
    expect(admins).toHaveLength(1);
  });
});

describe("deleting a user", () => {
  it("removes their devices, unless a DID still rings one (409 naming it)", async () => {
    const owner = await createUser(t);
    const dev = await request(t, "POST", "/api/devices", {
      as: admin.session,
      body: { name: "P", userId: owner.id },
    });
    const deviceId = ((await dev.json()) as { id: string }).id;
    const did = await request(t, "POST", "/api/dids", {
      as: admin.session,
      body: { e164: "+15551230001", defaultTargets: { v: 1, deviceIds: [deviceId] } },
    });
    const didId = ((await did.json()) as { id: string }).id;
    const refused = await request(t, "DELETE", `/api/users/${owner.id}`, { as: admin.session });
    expect(refused.status).toBe(409);
    expect(JSON.stringify(((await refused.json()) as ErrorJson).error.details)).toContain("+15551230001");

    await request(t, "PATCH", `/api/dids/${didId}`, {
      as: admin.session,
      body: { defaultTargets: { v: 1, deviceIds: [] } },
    });
    expect((await request(t, "DELETE", `/api/users/${owner.id}`, { as: admin.session })).status).toBe(204);
    expect((await request(t, "GET", `/api/devices/${deviceId}`, { as: admin.session })).status).toBe(404);
  });
});

describe("self-service", () => {
  it("a user reads and renames themselves via /me and their own id", async () => {
    const { user, session } = await loginAs(t, "user");
    const me = await request(t, "GET", "/api/users/me", { as: session });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { id: string }).id).toBe(user.id);
    const renamed = await request(t, "PATCH", `/api/users/${user.id}`, {
      as: session,
      body: { name: "New Name", dnd: true },
    });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).toMatchObject({ name: "New Name", dnd: true, role: "user" });
  });

  it("a user cannot change their role, email or password here (403)", async () => {
    const { session } = await loginAs(t, "user");
    for (const body of [{ role: "admin" }, { email: "x@example.test" }, { password: "a new password!" }]) {
      const res = await request(t, "PATCH", "/api/users/me", { as: session, body });
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(((await res.json()) as ErrorJson).error.code).toBe("forbidden");
    }
    const [row] = await t.db.select().from(users).where(eq(users.role, "admin"));
    expect(row?.id).toBe(admin.user.id);
  });
});

describe("access control", () => {
  it("every endpoint as the wrong role or without a session", async () => {
    const a = await loginAs(t, "user");
    const b = await loginAs(t, "user");
    const cases: [string, string, unknown, TestSession | undefined, number][] = [
      // other user's id: hidden (404)
      ["GET", `/api/users/${a.user.id}`, undefined, b.session, 404],
      ["PATCH", `/api/users/${a.user.id}`, { name: "Mallory" }, b.session, 404],
      ["GET", `/api/users/${admin.user.id}`, undefined, b.session, 404],
      // admin-only
      ["GET", "/api/users", undefined, b.session, 403],
      [
        "POST",
        "/api/users",
        { email: "m@example.test", name: "M", password: "long enough pw" },
        b.session,
        403,
      ],
      ["DELETE", `/api/users/${a.user.id}`, undefined, b.session, 403],
      ["DELETE", `/api/users/${b.user.id}`, undefined, b.session, 403],
      // no session
      ["GET", "/api/users", undefined, undefined, 401],
      ["GET", "/api/users/me", undefined, undefined, 401],
      ["GET", `/api/users/${a.user.id}`, undefined, undefined, 401],
      ["PATCH", `/api/users/${a.user.id}`, { name: "X" }, undefined, 401],
      [
        "POST",
        "/api/users",
        { email: "n@example.test", name: "N", password: "long enough pw" },
        undefined,
        401,
      ],
      ["DELETE", `/api/users/${a.user.id}`, undefined, undefined, 401],
    ];
    for (const [method, path, body, as, status] of cases) {
      const res = await request(t, method, path, { as, body });
      expect(res.status, `${method} ${path} as ${as === b.session ? "B" : "anonymous"}`).toBe(status);
      const err = (await res.json()) as ErrorJson;
      expect(typeof err.error.code).toBe("string");
    }
    const [row] = await t.db.select().from(users).where(eq(users.id, a.user.id));
    expect(row?.name).toBe(a.user.name);
  });
});
