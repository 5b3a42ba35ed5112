// /api/blocklist through the real app and database: validation on write
// (numbers normalized, ReDoS regexes refused with a reason), duplicates,
// search, pagination, and admin-only access.
import { blocklist } from "@gosip/drizzle";
import { describe, expect, it } from "vitest";
import {
  type ErrorJson,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
  useAdminEdge,
} from "../test-support.ts";

let t: TestEdge;
let admin: TestSession;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});

interface EntryJson {
  id: string;
  pattern: string;
  matchType: string;
  action: string;
  note: string;
}

const add = (body: Record<string, unknown>) => request(t, "POST", "/api/blocklist", { as: admin, body });

describe("writes", () => {
  it("stores exact and prefix numbers normalized to E.164, regexes as given", async () => {
    const exact = await add({ pattern: "+1 (900) 555-0100", matchType: "exact", note: "robocaller" });
    expect(exact.status).toBe(201);
    expect(await exact.json()).toMatchObject({
      pattern: "+19005550100",
      matchType: "exact",
      action: "reject",
    });
    const prefix = await add({ pattern: "+1 900", matchType: "prefix", action: "voicemail" });
    expect(await prefix.json()).toMatchObject({ pattern: "+1900", action: "voicemail" });
    const regex = await add({ pattern: "^\\+44(20|21)\\d{8}$", matchType: "regex" });
    expect(regex.status).toBe(201);
    expect(((await regex.json()) as EntryJson).pattern).toBe("^\\+44(20|21)\\d{8}$");
  });

  it("refuses regexes that could backtrack catastrophically, with a clear message", async () => {
    for (const pattern of ["(a+)+", "(a|a)*", "(.*a){20}", "(\\d+)*$"]) {
      const res = await add({ pattern, matchType: "regex" });
      expect(res.status, pattern).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.code).toBe("validation_failed");
      expect(err.error.message).toMatch(/catastrophic/);
      expect(err.error.details?.[0]?.path).toBe("pattern");
    }
    const backref = await add({ pattern: "(1)\\1", matchType: "regex" });
    expect(((await backref.json()) as ErrorJson).error.message).toMatch(/backreferences/);
    expect(await t.db.select().from(blocklist)).toHaveLength(0);
  });

  it("rejects malformed bodies and numbers", async () => {
    for (const body of [
      { pattern: "12345", matchType: "exact" },
      { pattern: "abc", matchType: "prefix" },
      { pattern: "+1555", matchType: "wildcard" },
      { pattern: "+15550100", matchType: "exact", action: "explode" },
      { matchType: "exact" },
      { pattern: "+15550100", matchType: "exact", id: "mine" },
    ]) {
      const res = await add(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as ErrorJson).error.details?.length).toBeGreaterThan(0);
    }
  });

  it("answers 409 for the same pattern twice, also after normalization and on update", async () => {
    expect((await add({ pattern: "+15550100", matchType: "exact" })).status).toBe(201);
    const dup = await add({ pattern: "+1 555 0100", matchType: "exact" });
    expect(dup.status).toBe(409);
    expect(((await dup.json()) as ErrorJson).error.code).toBe("conflict");
    // Same digits as a prefix is a different entry.
    const prefix = (await (await add({ pattern: "+15550100", matchType: "prefix" })).json()) as EntryJson;
    const clash = await request(t, "PATCH", `/api/blocklist/${prefix.id}`, {
      as: admin,
      body: { matchType: "exact" },
    });
    expect(clash.status).toBe(409);
  });

  it("updates, re-validating the pattern against the (new) match type; deletes", async () => {
    const entry = (await (await add({ pattern: "+1900", matchType: "prefix" })).json()) as EntryJson;
    const toRegex = await request(t, "PATCH", `/api/blocklist/${entry.id}`, {
      as: admin,
      body: { matchType: "regex", pattern: "(\\d+)+" },
    });
    expect(toRegex.status).toBe(400);
    const ok = await request(t, "PATCH", `/api/blocklist/${entry.id}`, {
      as: admin,
      body: { note: "premium", action: "voicemail" },
    });
    expect(await ok.json()).toMatchObject({ pattern: "+1900", note: "premium", action: "voicemail" });
    expect((await request(t, "DELETE", `/api/blocklist/${entry.id}`, { as: admin })).status).toBe(204);
    for (const method of ["GET", "PATCH", "DELETE"] as const) {
      const res = await request(t, method, `/api/blocklist/${entry.id}`, {
        as: admin,
        body: method === "PATCH" ? { note: "x" } : undefined,
      });
      expect(res.status, method).toBe(404);
    }
  });
});

describe("reads", () => {
  it("searches with ?q= in pattern and note and paginates with a total", async () => {
    for (let i = 0; i < 23; i++)
      await add({ pattern: `+1555010${String(i).padStart(2, "0")}`, matchType: "exact" });
    await add({ pattern: "+44", matchType: "prefix", note: "All of the UK" });
    type Page = { items: EntryJson[]; total: number; limit: number; offset: number };
    const first = (await (await request(t, "GET", "/api/blocklist", { as: admin })).json()) as Page;
    expect(first).toMatchObject({ total: 24, limit: 20, offset: 0 });
    expect(first.items).toHaveLength(20);
    const uk = (await (await request(t, "GET", "/api/blocklist?q=uk", { as: admin })).json()) as Page;
    expect(uk.items.map((e) => e.pattern)).toEqual(["+44"]);
    // +155501020, +155501021, +155501022
    const byNumber = (await (
      await request(t, "GET", "/api/blocklist?q=%2B15550102", { as: admin })
    ).json()) as Page;
    expect(byNumber.total).toBe(3);
    const prefixes = (await (
      await request(t, "GET", "/api/blocklist?matchType=prefix", { as: admin })
    ).json()) as Page;
    expect(prefixes.total).toBe(1);
    expect((await request(t, "GET", "/api/blocklist?limit=101", { as: admin })).status).toBe(400);
  });
});

describe("access control", () => {
  it("is admin only: 403 for users, 401 without a session", async () => {
    const user = (await loginAs(t, "user")).session;
    const entry = (await (await add({ pattern: "+15550100", matchType: "exact" })).json()) as EntryJson;
    const cases = [
      ["GET", "/api/blocklist", undefined],
      ["POST", "/api/blocklist", { pattern: "+15550199", matchType: "exact" }],
      ["GET", `/api/blocklist/${entry.id}`, undefined],
      ["PATCH", `/api/blocklist/${entry.id}`, { note: "x" }],
      ["DELETE", `/api/blocklist/${entry.id}`, undefined],
    ] as const;
    for (const [method, path, body] of cases) {
      expect((await request(t, method, path, { as: user, body })).status, `${method} ${path}`).toBe(403);
      expect((await request(t, method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
    expect(await t.db.select().from(blocklist)).toHaveLength(1);
  });
});
