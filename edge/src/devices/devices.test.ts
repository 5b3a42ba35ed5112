// /api/devices through the real app and a real libSQL database: the SIP password
// is shown once and stored only as HA1, extensions are allocated and unique, and
// a user never reaches another user's device (404 on every verb).
import { computeHa1, devices, dids, settings } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
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
import { SIP_PASSWORD_ALPHABET } from "./credentials.ts";

let t: TestEdge;
let admin: { user: TestUser; session: TestSession };

useAdminEdge((edge) => {
  ({ t, admin } = edge);
});

interface DeviceJson {
  id: string;
  userId: string;
  name: string;
  extension: string;
  sipUsername: string;
  sipPassword?: string;
  [k: string]: unknown;
}

async function createDevice(body: Record<string, unknown>, as = admin.session): Promise<DeviceJson> {
  const res = await request(t, "POST", "/api/devices", { as, body });
  if (res.status !== 201) throw new Error(`create device: ${res.status} ${await res.text()}`);
  return (await res.json()) as DeviceJson;
}

describe("SIP credentials", () => {
  it("shows the SIP password once and stores only HA1s that match it", async () => {
    const { user } = await loginAs(t, "user");
    const created = await createDevice({ name: "Desk phone", userId: user.id });
    expect(created.extension).toBe("101");
    expect(created.userId).toBe(user.id);
    const password = created.sipPassword ?? "";
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect([...password].every((ch) => SIP_PASSWORD_ALPHABET.includes(ch))).toBe(true);
    expect(JSON.stringify(created)).not.toMatch(/ha1/i);

    const [row] = await t.db.select().from(devices).where(eq(devices.id, created.id));
    if (!row) throw new Error("device row missing");
    expect(JSON.stringify(row)).not.toContain(password);
    const [realmRow] = await t.db.select().from(settings).where(eq(settings.key, "sip"));
    const realm = (realmRow?.value as { realm?: string } | undefined)?.realm ?? "";
    expect(realm).toBe("gosip");
    expect(row.ha1Md5).toBe(computeHa1(row.sipUsername, realm, password, "MD5"));
    expect(row.ha1Sha256).toBe(computeHa1(row.sipUsername, realm, password, "SHA-256"));
    expect(row.ha1Md5).toMatch(/^[0-9a-f]{32}$/);
    expect(row.ha1Sha256).toMatch(/^[0-9a-f]{64}$/);

    // No later response carries the password (or any HA1).
    const later = [
      await request(t, "GET", `/api/devices/${created.id}`, { as: admin.session }),
      await request(t, "GET", "/api/devices", { as: admin.session }),
      await request(t, "PATCH", `/api/devices/${created.id}`, { as: admin.session, body: { name: "Desk" } }),
    ];
    for (const res of later) {
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain(password);
      expect(text).not.toMatch(/sipPassword|ha1/i);
    }
  });

  it("reset-password returns a new password once; the old HA1 is gone", async () => {
    const created = await createDevice({ name: "Softphone" });
    const res = await request(t, "POST", `/api/devices/${created.id}/reset-password`, { as: admin.session });
    expect(res.status).toBe(200);
    const reset = (await res.json()) as DeviceJson;
    expect(reset.sipPassword).toBeDefined();
    expect(reset.sipPassword).not.toBe(created.sipPassword);
    const [row] = await t.db.select().from(devices).where(eq(devices.id, created.id));
    expect(row?.ha1Md5).toBe(computeHa1(created.sipUsername, "gosip", reset.sipPassword ?? "", "MD5"));
    expect(row?.ha1Md5).not.toBe(computeHa1(created.sipUsername, "gosip", created.sipPassword ?? "", "MD5"));
  });

  it("a user can reset the password of their own device", async () => {
    const owner = await loginAs(t, "user");
    const created = await createDevice({ name: "Mine", userId: owner.user.id });
    const res = await request(t, "POST", `/api/devices/${created.id}/reset-password`, { as: owner.session });
    expect(res.status).toBe(200);
  });
});

describe("extensions", () => {
  it("allocates the next free extension from 101 and skips taken ones", async () => {
    expect((await createDevice({ name: "A" })).extension).toBe("101");
    expect((await createDevice({ name: "B", extension: "102" })).extension).toBe("102");
    expect((await createDevice({ name: "C" })).extension).toBe("103");
    expect((await createDevice({ name: "D", extension: "55" })).extension).toBe("55");
    const list = (await (await request(t, "GET", "/api/devices", { as: admin.session })).json()) as {
      items: DeviceJson[];
    };
    expect(list.items.map((d) => d.extension)).toEqual(["55", "101", "102", "103"]);
  });

  it("gives concurrent creates distinct extensions", async () => {
    const created = await Promise.all(Array.from({ length: 6 }, (_, i) => createDevice({ name: `P${i}` })));
    const extensions = created.map((d) => d.extension).sort();
    expect(new Set(extensions).size).toBe(6);
    expect(extensions).toEqual(["101", "102", "103", "104", "105", "106"]);
  });

  it("answers 409 for a taken extension or SIP username, 400 for a malformed or emergency one", async () => {
    await createDevice({ name: "A", extension: "200", sipUsername: "alice-desk" });
    const dupExt = await request(t, "POST", "/api/devices", {
      as: admin.session,
      body: { name: "B", extension: "200" },
    });
    expect(dupExt.status).toBe(409);
    expect(((await dupExt.json()) as ErrorJson).error.details).toEqual({ field: "extension" });
    const dupUser = await request(t, "POST", "/api/devices", {
      as: admin.session,
      body: { name: "B", sipUsername: "alice-desk" },
    });
    expect(dupUser.status).toBe(409);
    expect(((await dupUser.json()) as ErrorJson).error.details).toEqual({ field: "sipUsername" });
    const other = await createDevice({ name: "C" });
    const patch = await request(t, "PATCH", `/api/devices/${other.id}`, {
      as: admin.session,
      body: { extension: "200" },
    });
    expect(patch.status).toBe(409);

    for (const extension of ["1", "1234567", "12a", "911", "112"]) {
      const res = await request(t, "POST", "/api/devices", {
        as: admin.session,
        body: { name: "X", extension },
      });
      expect(res.status, extension).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.code).toBe("validation_failed");
      expect(JSON.stringify(err.error.details)).toContain("extension");
    }
  });

  it("rejects bad bodies and unknown owners with details", async () => {
    const cases: Record<string, unknown>[] = [
      {},
      { name: "" },
      { name: "X", ha1Md5: "00" },
      { name: "X", outboundPolicy: { v: 1, allowedPrefixes: ["1"] } },
      { name: "X", enabled: "yes" },
    ];
    for (const body of cases) {
      const res = await request(t, "POST", "/api/devices", { as: admin.session, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as ErrorJson).error.details).toBeDefined();
    }
    const noOwner = await request(t, "POST", "/api/devices", {
      as: admin.session,
      body: { name: "X", userId: "00000000-0000-0000-0000-000000000000" },
    });
    expect(noOwner.status).toBe(400);
    expect(((await noOwner.json()) as ErrorJson).error.message).toMatch(/owner/);
    expect(await t.db.select().from(devices)).toEqual([]);

    const device = await createDevice({ name: "Desk phone" });
    const moveToNobody = await request(t, "PATCH", `/api/devices/${device.id}`, {
      as: admin.session,
      body: { userId: "00000000-0000-0000-0000-000000000000" },
    });
    expect(moveToNobody.status).toBe(400);
    expect(((await moveToNobody.json()) as ErrorJson).error.message).toMatch(/owner/);
    const [row] = await t.db.select().from(devices).where(eq(devices.id, device.id));
    expect(row?.userId).toBe(admin.user.id);
  });
});

describe("lists", () => {
  it("paginates (default 20, max 100) with a total, filters by owner for admins", async () => {
    const a = await loginAs(t, "user");
    const b = await loginAs(t, "user");
    for (let i = 0; i < 22; i++) await createDevice({ name: `A${i}`, userId: a.user.id });
    for (let i = 0; i < 3; i++) await createDevice({ name: `B${i}`, userId: b.user.id });
    type Page = { items: DeviceJson[]; total: number; limit: number };
    const all = (await (await request(t, "GET", "/api/devices", { as: admin.session })).json()) as Page;
    expect(all.items).toHaveLength(20);
    expect(all.total).toBe(25);
    expect(all.limit).toBe(20);
    const onlyB = (await (
      await request(t, "GET", `/api/devices?userId=${b.user.id}`, { as: admin.session })
    ).json()) as Page;
    expect(onlyB.total).toBe(3);
    expect(onlyB.items.every((d) => d.userId === b.user.id)).toBe(true);
    // A user sees only their own, whatever filter they send.
    const asB = (await (await request(t, "GET", "/api/devices?limit=100", { as: b.session })).json()) as Page;
    expect(asB.total).toBe(3);
    const asBForA = (await (
      await request(t, "GET", `/api/devices?userId=${a.user.id}`, { as: b.session })
    ).json()) as Page;
    expect(asBForA.total).toBe(0);
    expect((await request(t, "GET", "/api/devices?limit=101", { as: admin.session })).status).toBe(400);
    expect((await request(t, "GET", "/api/devices?limit=0", { as: admin.session })).status).toBe(400);
  });
  it("a listed device is the JSON a GET answers (minus its registrations) and the create answered (minus the password), in one field order", async () => {
    const { sipPassword, ...created } = await createDevice({
      name: "Kitchen",
      recordAlways: true,
      outboundPolicy: { v: 1, allowedPrefixes: ["+44"], blockPremiumRate: false },
    });
    expect(sipPassword).toBeTruthy();
    const { registrations, ...detail } = (await (
      await request(t, "GET", `/api/devices/${created.id}`, { as: admin.session })
    ).json()) as Record<string, unknown>;
    // A device that never registered has no contacts; the rest is the device as listed.
    expect(registrations).toEqual([]);
    const got = JSON.stringify(detail);
    const listed = (await (await request(t, "GET", "/api/devices", { as: admin.session })).json()) as {
      items: unknown[];
    };
    expect(JSON.stringify(listed.items[0])).toBe(got);
    expect(JSON.stringify(created)).toBe(got);
    expect(Object.keys(JSON.parse(got) as object)).toEqual([
      "id",
      "userId",
      "name",
      "extension",
      "sipUsername",
      "enabled",
      "recordAlways",
      "outboundPolicy",
      "createdAt",
      "updatedAt",
    ]);
    expect(JSON.parse(got)).toMatchObject({
      enabled: true,
      recordAlways: true,
      outboundPolicy: {
        v: 1,
        allowOutbound: true,
        allowedPrefixes: ["+44"],
        blockedPrefixes: [],
        blockPremiumRate: false,
      },
    });
  });
});

describe("access control", () => {
  it("user B reaching user A's device gets 404 on every verb; A's device is untouched", async () => {
    const a = await loginAs(t, "user");
    const b = await loginAs(t, "user");
    const device = await createDevice({ name: "A's phone", userId: a.user.id });
    const cases: [string, string, unknown][] = [
      ["GET", `/api/devices/${device.id}`, undefined],
      ["PATCH", `/api/devices/${device.id}`, { name: "pwned" }],
      ["DELETE", `/api/devices/${device.id}`, undefined],
      ["POST", `/api/devices/${device.id}/reset-password`, undefined],
    ];
    for (const [method, path, body] of cases) {
      const res = await request(t, method, path, { as: b.session, body });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(((await res.json()) as ErrorJson).error.code).toBe("not_found");
      // Same answer as for an id that does not exist at all.
      const missing = await request(t, method, path.replace(device.id, crypto.randomUUID()), {
        as: b.session,
        body,
      });
      expect(missing.status).toBe(404);
    }
    const [row] = await t.db.select().from(devices).where(eq(devices.id, device.id));
    expect(row?.name).toBe("A's phone");
    // The HA1 did not change: B did not reset A's password.
    expect(row?.ha1Md5).toBe(computeHa1(device.sipUsername, "gosip", device.sipPassword ?? "", "MD5"));
  });

  it("a user may rename their own device but not change the rest; admin-only verbs answer 403", async () => {
    const a = await loginAs(t, "user");
    const device = await createDevice({ name: "Mine", userId: a.user.id });
    const renamed = await request(t, "PATCH", `/api/devices/${device.id}`, {
      as: a.session,
      body: { name: "Desk" },
    });
    expect(renamed.status).toBe(200);
    for (const body of [
      { extension: "150" },
      { outboundPolicy: { v: 1, allowedPrefixes: ["+"] } },
      { recordAlways: true },
      { userId: admin.user.id },
    ]) {
      const res = await request(t, "PATCH", `/api/devices/${device.id}`, { as: a.session, body });
      expect([400, 403], JSON.stringify(body)).toContain(res.status);
    }
    const policy = await request(t, "PATCH", `/api/devices/${device.id}`, {
      as: a.session,
      body: { outboundPolicy: { v: 1, allowedPrefixes: ["+44"] } },
    });
    expect(policy.status).toBe(403);
    expect((await request(t, "POST", "/api/devices", { as: a.session, body: { name: "X" } })).status).toBe(
      403,
    );
    expect((await request(t, "DELETE", `/api/devices/${device.id}`, { as: a.session })).status).toBe(403);
    const [row] = await t.db.select().from(devices).where(eq(devices.id, device.id));
    expect(row?.extension).toBe(device.extension);
  });

  it("without a session every endpoint answers 401", async () => {
    const device = await createDevice({ name: "X" });
    for (const [method, path] of [
      ["GET", "/api/devices"],
      ["POST", "/api/devices"],
      ["GET", `/api/devices/${device.id}`],
      ["PATCH", `/api/devices/${device.id}`],
      ["DELETE", `/api/devices/${device.id}`],
      ["POST", `/api/devices/${device.id}/reset-password`],
    ] as const) {
      const res = await request(t, method, path, { body: method === "GET" ? undefined : { name: "Y" } });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });
});

describe("delete", () => {
  it("deletes a device that no DID rings; refuses (409) while a DID rings it", async () => {
    const free = await createDevice({ name: "Free" });
    expect((await request(t, "DELETE", `/api/devices/${free.id}`, { as: admin.session })).status).toBe(204);
    expect((await request(t, "GET", `/api/devices/${free.id}`, { as: admin.session })).status).toBe(404);

    const used = await createDevice({ name: "Used" });
    await t.db.insert(dids).values({ e164: "+15550100", defaultTargets: { v: 1, deviceIds: [used.id] } });
    const res = await request(t, "DELETE", `/api/devices/${used.id}`, { as: admin.session });
    expect(res.status).toBe(409);
    const err = (await res.json()) as ErrorJson;
    expect(JSON.stringify(err.error.details)).toContain("+15550100");
  });
});
