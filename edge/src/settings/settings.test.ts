// /api/settings through the real app and database: defaults, per-key validation,
// write-only secrets, the fixed SIP realm, holidays, and admin-only access.
import { settings } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  type ErrorJson,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
  useAdminEdge,
} from "../test-support.ts";
import { SECRET_MASK } from "./routes.ts";

let t: TestEdge;
let admin: TestSession;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});

const put = (key: string, body: unknown) => request(t, "PUT", `/api/settings/${key}`, { as: admin, body });
const get = async (key: string) => (await request(t, "GET", `/api/settings/${key}`, { as: admin })).json();

describe("defaults and validation", () => {
  it("GET answers every key with defaults before anything is saved", async () => {
    const res = await request(t, "GET", "/api/settings", { as: admin });
    expect(res.status).toBe(200);
    const all = (await res.json()) as Record<string, Record<string, unknown> | null>;
    expect(all.callScreening).toMatchObject({ v: 1, spamThreshold: 0.7, rejectAnonymous: false });
    expect(all.installation).toMatchObject({ v: 1, timeZone: "UTC" });
    expect(all.sip).toEqual({ v: 1, realm: "gosip" });
    expect(all.twilio).toBeNull();
    expect(all.holidays).toEqual({ v: 1, holidays: [] });
    expect(all.retention).toMatchObject({ v: 1 });
  });

  it("stores a valid document and returns it with defaults filled in", async () => {
    const res = await put("installation", { v: 1, timeZone: "Europe/Berlin" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ v: 1, timeZone: "Europe/Berlin", name: "GoSIP" });
    expect(await get("installation")).toMatchObject({ timeZone: "Europe/Berlin" });
    const screening = await put("callScreening", { v: 1, spamThreshold: 0.9, rejectAnonymous: true });
    expect(await screening.json()).toMatchObject({
      spamThreshold: 0.9,
      rejectAnonymous: true,
      spamFilter: true,
    });
    const retention = await put("retention", { v: 1, recordingsDays: 30 });
    expect(await retention.json()).toMatchObject({ recordingsDays: 30 });
  });

  it("rejects bad values per key with details, and unknown keys", async () => {
    const cases: [string, unknown, string][] = [
      ["installation", { v: 1, timeZone: "Mars/Olympus" }, "timeZone"],
      ["callScreening", { v: 1, spamThreshold: 1.5 }, "spamThreshold"],
      ["callScreening", { v: 1, spamThreshold: -0.1 }, "spamThreshold"],
      ["callScreening", { v: 1, rejectAnonymous: "yes" }, "rejectAnonymous"],
      ["retention", { v: 1, recordingsDays: 0 }, "recordingsDays"],
      ["email", { v: 1, provider: "smtp", from: "pbx@example.test" }, "smtp"],
      ["gotify", { v: 1, enabled: true }, "enabled"],
      ["installation", { timeZone: "UTC" }, "v"],
      ["installation", { v: 2 }, "v"],
    ];
    for (const [key, body, path] of cases) {
      const res = await put(key, body);
      expect(res.status, `${key} ${JSON.stringify(body)}`).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.code).toBe("validation_failed");
      expect(
        err.error.details?.map((d) => d.path),
        JSON.stringify(err),
      ).toContain(path);
    }
    const unknown = await put("colour", { v: 1 });
    expect(unknown.status).toBe(400);
    expect((await request(t, "GET", "/api/settings/colour", { as: admin })).status).toBe(400);
    const setup = await put("setup", { v: 1, completedSteps: ["admin"] });
    expect(setup.status).toBe(400);
    expect(await t.db.select().from(settings)).toHaveLength(0);
  });
});

describe("secrets", () => {
  const twilio = {
    v: 1,
    accountSid: `AC${"0".repeat(32)}`,
    authToken: "test-auth-token-value",
    sipUsername: "gosip",
    sipPassword: "test-sip-password-value",
  };

  it("are write-only: GET masks them, the mask keeps them, omitting removes them", async () => {
    const saved = await put("twilio", twilio);
    expect(saved.status).toBe(200);
    const savedText = await saved.text();
    expect(savedText).not.toContain("test-auth-token-value");
    expect(JSON.parse(savedText)).toMatchObject({ authToken: SECRET_MASK, sipPassword: SECRET_MASK });
    for (const res of [
      await request(t, "GET", "/api/settings", { as: admin }),
      await request(t, "GET", "/api/settings/twilio", { as: admin }),
    ]) {
      const text = await res.text();
      expect(text).not.toContain("test-auth-token-value");
      expect(text).not.toContain("test-sip-password-value");
    }
    const [row] = await t.db.select().from(settings).where(eq(settings.key, "twilio"));
    expect(row?.value).toMatchObject({ authToken: "test-auth-token-value" });

    // The UI sends back what it got: the secrets stay as they were.
    const echoed = (await get("twilio")) as Record<string, unknown>;
    expect((await put("twilio", { ...echoed, sipUsername: "gosip2" })).status).toBe(200);
    const [kept] = await t.db.select().from(settings).where(eq(settings.key, "twilio"));
    expect(kept?.value).toMatchObject({ authToken: "test-auth-token-value", sipUsername: "gosip2" });

    // Omitting an optional secret removes it.
    const { sipPassword: _dropped, ...withoutSip } = echoed;
    expect((await put("twilio", withoutSip)).status).toBe(200);
    const [after] = await t.db.select().from(settings).where(eq(settings.key, "twilio"));
    expect(after?.value).not.toHaveProperty("sipPassword");
    expect(after?.value).toMatchObject({ authToken: "test-auth-token-value" });
  });

  it("nested secrets (SMTP password) are masked too; a mask with nothing stored is refused", async () => {
    const email = {
      v: 1,
      provider: "smtp",
      from: "pbx@example.test",
      smtp: { host: "127.0.0.1", port: 2525, username: "pbx", password: "smtp-secret-value" },
    };
    expect((await put("email", email)).status).toBe(200);
    const shown = (await get("email")) as { smtp: { password: string } };
    expect(shown.smtp.password).toBe(SECRET_MASK);
    const gotify = await put("gotify", {
      v: 1,
      enabled: true,
      url: "http://127.0.0.1:8008",
      appToken: SECRET_MASK,
    });
    expect(gotify.status).toBe(400);
  });
});

describe("SIP realm", () => {
  it("can change before devices exist, never after", async () => {
    expect((await put("sip", { v: 1, realm: "home.example" })).status).toBe(200);
    expect((await put("sip", { v: 1, realm: "bad realm!" })).status).toBe(400);
    const dev = await request(t, "POST", "/api/devices", { as: admin, body: { name: "Desk" } });
    expect(dev.status).toBe(201);
    const change = await put("sip", { v: 1, realm: "other" });
    expect(change.status).toBe(409);
    expect(((await change.json()) as ErrorJson).error.message).toMatch(/realm/);
    expect(await get("sip")).toEqual({ v: 1, realm: "home.example" });
    // Re-saving the same realm is fine.
    expect((await put("sip", { v: 1, realm: "home.example" })).status).toBe(200);
  });
});

describe("holidays", () => {
  it("replaces the list as a whole, validating dates", async () => {
    const list = {
      v: 1,
      holidays: [
        { date: "2026-12-25", name: "Christmas", recurring: true },
        { date: "2026-01-01", name: "New Year" },
      ],
    };
    const res = await put("holidays", list);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      v: 1,
      holidays: [
        { date: "2026-01-01", name: "New Year", recurring: false },
        { date: "2026-12-25", name: "Christmas", recurring: true },
      ],
    });
    for (const bad of [
      { v: 1, holidays: [{ date: "2026-02-30", name: "Nope" }] },
      { v: 1, holidays: [{ date: "2026-05-01", name: "" }] },
      {
        v: 1,
        holidays: [
          { date: "2026-05-01", name: "A" },
          { date: "2026-05-01", name: "B" },
        ],
      },
    ]) {
      expect((await put("holidays", bad)).status, JSON.stringify(bad)).toBe(400);
    }
    expect(((await get("holidays")) as { holidays: unknown[] }).holidays).toHaveLength(2);
    expect((await put("holidays", { v: 1, holidays: [] })).status).toBe(200);
    expect(await get("holidays")).toEqual({ v: 1, holidays: [] });
  });
});

describe("access control", () => {
  it("is admin only: 403 for users, 401 without a session", async () => {
    const user = (await loginAs(t, "user")).session;
    for (const [method, path, body] of [
      ["GET", "/api/settings", undefined],
      ["GET", "/api/settings/installation", undefined],
      ["PUT", "/api/settings/installation", { v: 1, timeZone: "UTC" }],
    ] as const) {
      expect((await request(t, method, path, { as: user, body })).status, `${method} ${path}`).toBe(403);
      expect((await request(t, method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
  });
});
