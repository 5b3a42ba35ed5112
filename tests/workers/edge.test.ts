/**
 * The edge as deployed to Cloudflare: the Worker from wrangler.toml runs inside
 * workerd and reaches its database over Hrana (the Node-side test server, see
 * global-setup.ts). Each test drives the public API through the Worker's fetch
 * handler and checks the rows that landed in the Hrana-backed database.
 *
 * The tests share one database and run in order: setup creates the admin whose
 * session the later tests use, and the devices test creates Alice and Bob.
 */

import { exports } from "cloudflare:workers";
import { computeHa1, createDb, users } from "@gosip/drizzle";
import { type Client, createClient } from "@libsql/client/web";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { hashPassword } from "../../edge/src/auth/password.ts";

const BASE = "https://gosip.example.com";
const ADMIN = { email: "owner@example.test", password: "correct horse battery", name: "Owner" };
const ALICE = { email: "alice@example.test", password: "alice-password-1" };
const BOB = { email: "bob@example.test", password: "bob-password-1" };
const CAROL = { email: "carol@example.test", password: "carol-password-1" };

let db: Client;
/** The administrator's session from the setup test, reused (each sign-in costs a full scrypt). */
let admin = "";

beforeAll(() => {
  db = createClient({ url: inject("hranaUrl"), authToken: inject("hranaToken") });
});

afterAll(() => {
  db.close();
});

interface CallOptions {
  body?: unknown;
  cookie?: string;
  /** CF-Connecting-IP, as Cloudflare's edge sets it. */
  ip?: string;
  headers?: Record<string, string>;
}

/** One request through the Worker, the way the UI sends it (JSON + CSRF header). */
async function call(method: string, path: string, opts: CallOptions = {}): Promise<Response> {
  const headers = new Headers({ "X-GoSIP-CSRF": "1", ...opts.headers });
  if (opts.body !== undefined) headers.set("content-type", "application/json");
  if (opts.cookie) headers.set("cookie", opts.cookie);
  headers.set("CF-Connecting-IP", opts.ip ?? "192.0.2.1");
  return exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    }),
  );
}

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

function sessionCookie(res: Response): string {
  const set = res.headers.get("set-cookie") ?? "";
  const match = /gosip_session=([^;]+)/.exec(set);
  if (!match?.[1]) throw new Error(`no session cookie in ${JSON.stringify(set)}`);
  return `gosip_session=${match[1]}`;
}

async function login(email: string, password: string, ip = "192.0.2.1"): Promise<string> {
  const res = await call("POST", "/api/auth/login", { body: { email, password }, ip });
  expect(res.status, await res.clone().text()).toBe(200);
  return sessionCookie(res);
}

/**
 * Insert a user straight into the database with a cheap scrypt cost: every sign-in
 * attempt against the default cost takes seconds inside the test pool, and the
 * lockout test needs several. (The API path is covered by createUser.)
 */
async function seedUser(email: string, password: string): Promise<void> {
  const passwordHash = await hashPassword(password, { ln: 4, r: 8, p: 1 });
  await createDb(db)
    .insert(users)
    .values({ email, name: email.split("@")[0] ?? email, role: "user", passwordHash });
}

async function createUser(adminCookie: string, email: string, password: string): Promise<string> {
  const res = await call("POST", "/api/users", {
    cookie: adminCookie,
    body: { email, password, name: email.split("@")[0], role: "user" },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await json<{ id: string }>(res)).id;
}

describe("edge on Workers (workerd + Hrana)", () => {
  it("first-run setup creates the admin once, then is closed", async () => {
    expect(await json(await call("GET", "/api/setup/status"))).toEqual({ needsSetup: true });

    const res = await call("POST", "/api/setup", { body: ADMIN });
    expect(res.status, await res.clone().text()).toBe(201);
    const { user } = await json<{ user: { email: string; role: string } }>(res);
    expect(user).toMatchObject({ email: ADMIN.email, role: "admin" });
    // PUBLIC_URL in wrangler.toml is https, so the session cookie is Secure.
    expect(res.headers.get("set-cookie")).toMatch(/HttpOnly/i);
    expect(res.headers.get("set-cookie")).toMatch(/Secure/i);

    admin = sessionCookie(res);
    const me = await call("GET", "/api/auth/me", { cookie: admin });
    expect(me.status).toBe(200);
    expect((await json<{ user: { email: string } }>(me)).user.email).toBe(ADMIN.email);

    const again = await call("POST", "/api/setup", { body: { ...ADMIN, email: "intruder@example.test" } });
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ error: { code: "setup_closed" } });
    expect(await json(await call("GET", "/api/setup/status"))).toEqual({ needsSetup: false });

    const rows = await db.execute("SELECT email, role, password_hash FROM users");
    expect(rows.rows.map((r) => [r.email, r.role])).toEqual([[ADMIN.email, "admin"]]);
    expect(String(rows.rows[0]?.password_hash)).not.toContain(ADMIN.password);
  });

  it("signs in with the right password only, and the session works", async () => {
    const wrong = await call("POST", "/api/auth/login", {
      body: { email: ADMIN.email, password: "nope-nope" },
    });
    expect(wrong.status).toBe(401);
    expect(await json(wrong)).toMatchObject({ error: { code: "unauthorized" } });

    const cookie = await login(ADMIN.email, ADMIN.password);
    const me = await call("GET", "/api/auth/me", { cookie });
    expect((await json<{ user: { role: string } }>(me)).user.role).toBe("admin");

    const out = await call("POST", "/api/auth/logout", { cookie });
    expect(out.status).toBe(204);
    expect((await call("GET", "/api/auth/me", { cookie })).status).toBe(401);
  });

  it("manages devices: SIP password shown once, stored as HA1, others' devices are 404", async () => {
    const aliceId = await createUser(admin, ALICE.email, ALICE.password);
    await seedUser(BOB.email, BOB.password);
    const alice = await login(ALICE.email, ALICE.password, "192.0.2.31");
    const bob = await login(BOB.email, BOB.password, "192.0.2.32");

    // Only an administrator adds devices (toll-fraud policy); the owner then sees it.
    const denied = await call("POST", "/api/devices", { cookie: alice, body: { name: "Rogue phone" } });
    expect(denied.status).toBe(403);
    const created = await call("POST", "/api/devices", {
      cookie: admin,
      body: { name: "Desk phone", userId: aliceId },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const device = await json<{
      id: string;
      name: string;
      extension: string;
      sipUsername: string;
      sipPassword: string;
    }>(created);
    expect(device.name).toBe("Desk phone");
    expect(device.sipPassword.length).toBeGreaterThanOrEqual(12);

    // Never shown again, never stored in clear.
    const got = await call("GET", `/api/devices/${device.id}`, { cookie: alice });
    expect(got.status).toBe(200);
    const gotBody = await json(got);
    expect(gotBody).toMatchObject({
      id: device.id,
      extension: device.extension,
      sipUsername: device.sipUsername,
    });
    expect(JSON.stringify(gotBody)).not.toContain(device.sipPassword);
    expect(gotBody).not.toHaveProperty("sipPassword");
    expect(gotBody).not.toHaveProperty("ha1Md5");

    const row = await db.execute({
      sql: "SELECT sip_username, ha1_md5, ha1_sha256 FROM devices WHERE id = ?",
      args: [device.id],
    });
    const realmRow = await db.execute("SELECT value FROM settings WHERE key = 'sip'");
    const realm = (JSON.parse(String(realmRow.rows[0]?.value)) as { realm: string }).realm;
    expect(row.rows[0]?.ha1_md5).toBe(computeHa1(device.sipUsername, realm, device.sipPassword, "MD5"));
    expect(row.rows[0]?.ha1_sha256).toBe(
      computeHa1(device.sipUsername, realm, device.sipPassword, "SHA-256"),
    );

    const list = await json<{ items: { id: string }[]; total: number }>(
      await call("GET", "/api/devices", { cookie: alice }),
    );
    expect(list.items.map((d) => d.id)).toEqual([device.id]);
    expect(list.total).toBe(1);

    // Bob can neither see nor touch Alice's device, and cannot tell it exists.
    expect((await call("GET", `/api/devices/${device.id}`, { cookie: bob })).status).toBe(404);
    expect((await call("DELETE", `/api/devices/${device.id}`, { cookie: bob })).status).toBe(404);
    expect((await json<{ total: number }>(await call("GET", "/api/devices", { cookie: bob }))).total).toBe(0);

    expect((await call("DELETE", `/api/devices/${device.id}`, { cookie: alice })).status).toBe(403);
    const adminList = await json<{ items: { id: string }[] }>(
      await call("GET", "/api/devices", { cookie: admin }),
    );
    expect(adminList.items.map((d) => d.id)).toContain(device.id);
    const deleted = await call("DELETE", `/api/devices/${device.id}`, { cookie: admin });
    expect(deleted.status).toBe(204);
    expect((await call("GET", `/api/devices/${device.id}`, { cookie: alice })).status).toBe(404);
    const gone = await db.execute({
      sql: "SELECT count(*) AS n FROM devices WHERE id = ?",
      args: [device.id],
    });
    expect(Number(gone.rows[0]?.n)).toBe(0);
  });

  it("locks an account after 5 failures even for the right password, counting CF-Connecting-IP only", async () => {
    const victim = CAROL;
    await seedUser(CAROL.email, CAROL.password);
    const other = BOB; // exists since the devices test

    const attacker = "203.0.113.7";
    for (let i = 0; i < 5; i++) {
      const res = await call("POST", "/api/auth/login", {
        body: { email: victim.email, password: `guess-${i}` },
        ip: attacker,
        // A different spoofed X-Forwarded-For each time: must not spread the count.
        headers: { "X-Forwarded-For": `198.51.100.${i + 1}` },
      });
      expect(res.status).toBe(401);
    }

    const locked = await call("POST", "/api/auth/login", {
      body: victim,
      ip: "192.0.2.200",
    });
    expect(locked.status).toBe(423);
    expect(await json(locked)).toMatchObject({ error: { code: "locked" } });
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);

    // The attacker's address is throttled too, whatever X-Forwarded-For claims.
    const sameIp = await call("POST", "/api/auth/login", {
      body: other,
      ip: attacker,
      headers: { "X-Forwarded-For": "192.0.2.99" },
    });
    expect(sameIp.status).toBe(429);
    expect(await json(sameIp)).toMatchObject({ error: { code: "rate_limited" } });

    // Claiming the attacker's address in X-Forwarded-For does not lock out anyone else.
    const elsewhere = await call("POST", "/api/auth/login", {
      body: other,
      ip: "192.0.2.50",
      headers: { "X-Forwarded-For": attacker },
    });
    expect(elsewhere.status).toBe(200);

    const ipRows = await db.execute({
      sql: "SELECT subject, succeeded FROM login_attempts WHERE scope = 'ip' AND subject LIKE '198.51.100.%'",
      args: [],
    });
    expect(ipRows.rows).toHaveLength(0);
    const failures = await db.execute({
      sql: "SELECT count(*) AS n FROM login_attempts WHERE scope = 'ip' AND subject = ? AND succeeded = 0",
      args: [attacker],
    });
    expect(Number(failures.rows[0]?.n)).toBe(5);
    const sessions = await db.execute({
      sql: "SELECT s.ip FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ? ORDER BY s.created_at",
      args: [other.email],
    });
    // Bob's session from the devices test, then this one: recorded with CF-Connecting-IP, not X-Forwarded-For.
    expect(sessions.rows.map((r) => r.ip)).toEqual(["192.0.2.32", "192.0.2.50"]);
  });

  it("connects an authenticated relay through the Worker to the RelayLink object", async () => {
    const created = await call("POST", "/api/relay/tokens", { cookie: admin, body: { name: "home relay" } });
    expect(created.status, await created.clone().text()).toBe(201);
    const token = await json<{ id: string; token: string }>(created);

    const refused = await exports.default.fetch(`${BASE}/api/relay/connect`, {
      headers: { Upgrade: "websocket", Authorization: "Bearer not-a-real-relay-token-aaaaaaaaaaaaaaaaaaa" },
    });
    expect(refused.status).toBe(401);
    expect(refused.webSocket).toBeNull();

    // A client cannot skip the token check by naming a relay itself.
    const spoofed = await exports.default.fetch(`${BASE}/api/relay/connect`, {
      headers: { Upgrade: "websocket", "X-GoSIP-Relay-Id": token.id },
    });
    expect(spoofed.status).toBe(401);

    const res = await exports.default.fetch(`${BASE}/api/relay/connect`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${token.token}` },
    });
    expect(res.status).toBe(101);
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket in the 101 response");
    ws.accept();
    const ack = new Promise<unknown>((resolve) => {
      ws.addEventListener("message", (e) => resolve(JSON.parse(String(e.data))), { once: true });
    });
    ws.send(JSON.stringify({ type: "hello", v: 1 }));
    expect(await ack).toMatchObject({ type: "hello-ack", relayId: token.id });

    // Revoking the token drops the live link and refuses the next connection.
    const dropped = new Promise<number>((resolve) => {
      ws.addEventListener("close", (e) => resolve(e.code), { once: true });
    });
    const revoked = await call("DELETE", `/api/relay/tokens/${token.id}`, { cookie: admin });
    expect(revoked.status).toBe(204);
    expect(await dropped).toBe(4001);
    const again = await exports.default.fetch(`${BASE}/api/relay/connect`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${token.token}` },
    });
    expect(again.status).toBe(401);
  });

  it("pushes a device created in the API to the connected relay and stores its uploads in R2", async () => {
    const created = await call("POST", "/api/relay/tokens", { cookie: admin, body: { name: "sync relay" } });
    const token = await json<{ token: string }>(created);
    const res = await exports.default.fetch(`${BASE}/api/relay/connect`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${token.token}` },
    });
    const ws = res.webSocket;
    if (!ws) throw new Error("no WebSocket in the 101 response");
    ws.accept();
    const frames: { type: string; full?: boolean; upsertDevices?: { id: string; ha1Md5: string }[] }[] = [];
    ws.addEventListener("message", (e) => frames.push(JSON.parse(String(e.data))));
    const until = async (pick: (f: (typeof frames)[number]) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const found = frames.find(pick);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`frame not received; got ${JSON.stringify(frames.map((f) => f.type))}`);
    };
    ws.send(JSON.stringify({ type: "hello", v: 1, software: "workers-test" }));
    await until((f) => f.type === "config" && f.full === true);

    const device = await call("POST", "/api/devices", { cookie: admin, body: { name: "Pushed phone" } });
    expect(device.status).toBe(201);
    const { id } = await json<{ id: string }>(device);
    const delta = await until((f) => f.type === "config" && f.full === false);
    expect(delta.upsertDevices?.map((d) => d.id)).toEqual([id]);
    expect(delta.upsertDevices?.[0]?.ha1Md5).toMatch(/^[0-9a-f]{32}$/);

    const status = await json(await call("GET", "/api/relay/status", { cookie: admin }));
    expect(status).toMatchObject({ connected: true, relayName: "sync relay", software: "workers-test" });

    const audio = new TextEncoder().encode("RIFF....WAVEfmt pretend audio for R2");
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", audio))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    const upload = (sha: string) =>
      exports.default.fetch(
        new Request(`${BASE}/api/relay/recordings/workers-rec-1`, {
          method: "PUT",
          headers: {
            Authorization: `Bearer ${token.token}`,
            "Content-Type": "audio/wav",
            "Content-Length": String(audio.byteLength),
            "X-Content-SHA256": sha,
          },
          body: audio,
        }),
      );
    expect((await upload("0".repeat(64))).status).toBe(400);
    const stored = await upload(digest);
    expect(stored.status, await stored.clone().text()).toBe(201);
    expect((await upload(digest)).status).toBe(200);
    ws.close(1000, "done");
  });

  it("answers unknown API paths with the JSON error envelope and serves the UI elsewhere", async () => {
    const res = await call("GET", "/api/no-such-thing");
    expect(res.status).toBe(404);
    expect(await json(res)).toEqual({ error: { code: "not_found", message: "No such endpoint" } });

    const page = await exports.default.fetch(`${BASE}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/GoSIP/);
  });
});
