// /api/dids through the real app and database: E.164 validation, default
// targets that must exist, duplicates, and who may see which number.
import { dids } from "@gosip/drizzle";
import { describe, expect, it } from "vitest";
import {
  type ErrorJson,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
  type TestUser,
  useAdminEdge,
} from "../test-support.ts";

let t: TestEdge;
let admin: TestSession;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});

interface DidJson {
  id: string;
  e164: string;
  label: string;
  defaultTargets: { v: 1; deviceIds: string[] };
  dnd: boolean;
}

async function deviceFor(user: TestUser): Promise<string> {
  const res = await request(t, "POST", "/api/devices", {
    as: admin,
    body: { name: "Phone", userId: user.id },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function createDid(body: Record<string, unknown>): Promise<DidJson> {
  const res = await request(t, "POST", "/api/dids", { as: admin, body });
  if (res.status !== 201) throw new Error(`create DID: ${res.status} ${await res.text()}`);
  return (await res.json()) as DidJson;
}

describe("admin", () => {
  it("creates a DID with default targets and reads it back", async () => {
    const { user } = await loginAs(t, "user");
    const deviceId = await deviceFor(user);
    const did = await createDid({
      e164: "+15551230001",
      label: "Main line",
      defaultTargets: { v: 1, deviceIds: [deviceId] },
    });
    expect(did).toMatchObject({ e164: "+15551230001", label: "Main line", dnd: false });
    expect(did.defaultTargets.deviceIds).toEqual([deviceId]);
    const got = await request(t, "GET", `/api/dids/${did.id}`, { as: admin });
    expect(await got.json()).toMatchObject({ id: did.id, e164: "+15551230001" });
  });

  it("validates E.164, targets that exist, and document versions", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ e164: "5551230001" }, "e164"],
      [{ e164: "+0551230001" }, "e164"],
      [{ e164: "+1555123000199999" }, "e164"],
      [{ e164: "+15551230001", defaultTargets: { deviceIds: [] } }, "defaultTargets"],
      [{ e164: "+15551230001", defaultTargets: { v: 1, deviceIds: ["a", "a"] } }, "defaultTargets"],
      [{ e164: "+15551230001", twilioSid: "nope" }, "twilioSid"],
      [{ e164: "+15551230001", greeting: { v: 1, source: { kind: "tts", text: "" } } }, "greeting"],
    ];
    for (const [body, field] of cases) {
      const res = await request(t, "POST", "/api/dids", { as: admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.code).toBe("validation_failed");
      expect(
        err.error.details?.some((d) => d.path.startsWith(field)),
        JSON.stringify(err),
      ).toBe(true);
    }
    const ghost = await request(t, "POST", "/api/dids", {
      as: admin,
      body: { e164: "+15551230001", defaultTargets: { v: 1, deviceIds: ["no-such-device"] } },
    });
    expect(ghost.status).toBe(400);
    const err = (await ghost.json()) as ErrorJson;
    expect(err.error.message).toMatch(/existing devices/);
    expect(err.error.details).toEqual([
      { path: "defaultTargets.deviceIds.0", message: "no device no-such-device" },
    ]);
    expect(await t.db.select().from(dids)).toHaveLength(0);
  });

  it("409 for a duplicate number; update and delete; 404 afterwards", async () => {
    const did = await createDid({ e164: "+15551230001" });
    expect(
      (await request(t, "POST", "/api/dids", { as: admin, body: { e164: "+15551230001" } })).status,
    ).toBe(409);
    const other = await createDid({ e164: "+15551230002" });
    const clash = await request(t, "PATCH", `/api/dids/${other.id}`, {
      as: admin,
      body: { e164: "+15551230001" },
    });
    expect(clash.status).toBe(409);
    const bad = await request(t, "PATCH", `/api/dids/${did.id}`, {
      as: admin,
      body: { defaultTargets: { v: 1, deviceIds: ["missing"] } },
    });
    expect(bad.status).toBe(400);
    const ok = await request(t, "PATCH", `/api/dids/${did.id}`, {
      as: admin,
      body: { dnd: true, label: "Night" },
    });
    expect(await ok.json()).toMatchObject({ dnd: true, label: "Night" });
    expect((await request(t, "DELETE", `/api/dids/${did.id}`, { as: admin })).status).toBe(204);
    expect((await request(t, "GET", `/api/dids/${did.id}`, { as: admin })).status).toBe(404);
    expect((await request(t, "DELETE", `/api/dids/${did.id}`, { as: admin })).status).toBe(404);
    expect(
      (await request(t, "PATCH", `/api/dids/${did.id}`, { as: admin, body: { dnd: false } })).status,
    ).toBe(404);
  });

  it("paginates with a total", async () => {
    for (let i = 0; i < 21; i++) await createDid({ e164: `+1555123${String(i).padStart(4, "0")}` });
    const page = (await (await request(t, "GET", "/api/dids", { as: admin })).json()) as {
      items: DidJson[];
      total: number;
    };
    expect(page.items).toHaveLength(20);
    expect(page.total).toBe(21);
    expect((await request(t, "GET", "/api/dids?limit=101", { as: admin })).status).toBe(400);
  });
});

describe("users", () => {
  it("see only DIDs that ring their devices, read-only; others are 404", async () => {
    const a = await loginAs(t, "user");
    const b = await loginAs(t, "user");
    const aDevice = await deviceFor(a.user);
    const aDid = await createDid({ e164: "+15551230001", defaultTargets: { v: 1, deviceIds: [aDevice] } });
    const otherDid = await createDid({ e164: "+15551230002" });

    const aList = (await (await request(t, "GET", "/api/dids", { as: a.session })).json()) as {
      items: DidJson[];
      total: number;
    };
    expect(aList.items.map((d) => d.e164)).toEqual(["+15551230001"]);
    expect(aList.total).toBe(1);
    expect((await request(t, "GET", `/api/dids/${aDid.id}`, { as: a.session })).status).toBe(200);
    expect((await request(t, "GET", `/api/dids/${otherDid.id}`, { as: a.session })).status).toBe(404);

    const bList = (await (await request(t, "GET", "/api/dids", { as: b.session })).json()) as {
      total: number;
    };
    expect(bList.total).toBe(0);
    expect((await request(t, "GET", `/api/dids/${aDid.id}`, { as: b.session })).status).toBe(404);

    // Writes are the admin's, even on a DID that rings your phone.
    for (const [method, path, body] of [
      ["POST", "/api/dids", { e164: "+15551230003" }],
      ["PATCH", `/api/dids/${aDid.id}`, { dnd: true }],
      ["DELETE", `/api/dids/${aDid.id}`, undefined],
    ] as const) {
      expect((await request(t, method, path, { as: a.session, body })).status, `${method} ${path}`).toBe(403);
      expect((await request(t, method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
    expect((await request(t, "GET", "/api/dids")).status).toBe(401);
    expect((await request(t, "GET", `/api/dids/${aDid.id}`)).status).toBe(401);
  });
});
