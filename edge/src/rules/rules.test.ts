// /api/routes through the real app and database: good and bad rule documents,
// references checked against the database, priority order and atomic reorder,
// admin-only access.
import { contacts, routingRules } from "@gosip/drizzle";
import { beforeEach, describe, expect, it } from "vitest";
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
let deviceId: string;
let didId: string;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});
beforeEach(async () => {
  const dev = await request(t, "POST", "/api/devices", { as: admin, body: { name: "Desk" } });
  deviceId = ((await dev.json()) as { id: string }).id;
  const did = await request(t, "POST", "/api/dids", { as: admin, body: { e164: "+15551230001" } });
  didId = ((await did.json()) as { id: string }).id;
});

interface RuleJson {
  id: string;
  didId: string | null;
  name: string;
  priority: number;
  enabled: boolean;
  rule: { v: 1; conditions: unknown[]; action: Record<string, unknown>; record: boolean };
}

const ring = () => ({ type: "ring", deviceIds: [deviceId] });

async function createRule(body: Record<string, unknown>): Promise<RuleJson> {
  const res = await request(t, "POST", "/api/routes", { as: admin, body });
  if (res.status !== 201) throw new Error(`create rule: ${res.status} ${await res.text()}`);
  return (await res.json()) as RuleJson;
}

describe("rule documents", () => {
  const good: [string, () => Record<string, unknown>][] = [
    [
      "catch-all voicemail",
      () => ({ v: 1, conditions: [{ type: "default" }], action: { type: "voicemail" } }),
    ],
    [
      "office hours ring",
      () => ({
        v: 1,
        conditions: [
          {
            type: "time",
            timeZone: "America/New_York",
            windows: [{ days: ["mon", "fri"], start: "09:00", end: "17:30" }],
          },
        ],
        action: { ...ring(), strategy: "sequential", timeoutSeconds: 20 },
      }),
    ],
    [
      "overnight window",
      () => ({
        v: 1,
        conditions: [
          { type: "time", windows: [{ days: ["sat"], start: "22:00", end: "06:00" }], holidays: "exclude" },
        ],
        action: { type: "reject", reason: "disconnected" },
      }),
    ],
    [
      "caller prefix forward",
      () => ({
        v: 1,
        conditions: [{ type: "callerId", match: { by: "prefix", prefixes: ["+44"] } }],
        action: { type: "forward", to: "+442079460958", timeoutSeconds: 300 },
      }),
    ],
    [
      "safe caller regex",
      () => ({
        v: 1,
        conditions: [
          { type: "callerId", match: { by: "regex", pattern: "^\\+1(800|888)\\d{7}$" }, negate: true },
        ],
        action: { type: "playMessage", message: { kind: "tts", text: "We are closed." } },
      }),
    ],
  ];
  it.each(good)("accepts %s and applies defaults", async (_name, doc) => {
    const rule = await createRule({ name: "r", didId, rule: doc() });
    expect(rule.rule.v).toBe(1);
    expect(rule.rule.record).toBe(false);
    if (rule.rule.action.type === "ring" || rule.rule.action.type === "forward") {
      expect(typeof rule.rule.action.timeoutSeconds).toBe("number");
    }
  });

  const bad: [string, () => Record<string, unknown>, string][] = [
    [
      "missing version",
      () => ({ conditions: [{ type: "default" }], action: { type: "voicemail" } }),
      "rule.v",
    ],
    ["no conditions", () => ({ v: 1, conditions: [], action: { type: "voicemail" } }), "rule.conditions"],
    [
      "default with others",
      () => ({
        v: 1,
        conditions: [
          { type: "default" },
          { type: "callerId", match: { by: "exact", numbers: ["+15550100"] } },
        ],
        action: { type: "voicemail" },
      }),
      "rule.conditions",
    ],
    [
      "timeout below 5 s",
      () => ({ v: 1, conditions: [{ type: "default" }], action: { ...ring(), timeoutSeconds: 4 } }),
      "rule.action.timeoutSeconds",
    ],
    [
      "timeout above 300 s",
      () => ({ v: 1, conditions: [{ type: "default" }], action: { ...ring(), timeoutSeconds: 301 } }),
      "rule.action.timeoutSeconds",
    ],
    [
      "hour 25",
      () => ({
        v: 1,
        conditions: [{ type: "time", windows: [{ days: ["mon"], start: "25:00", end: "26:00" }] }],
        action: { type: "voicemail" },
      }),
      "rule.conditions.0.windows.0.start",
    ],
    [
      "no days",
      () => ({
        v: 1,
        conditions: [{ type: "time", windows: [{ days: [], start: "09:00", end: "17:00" }] }],
        action: { type: "voicemail" },
      }),
      "rule.conditions.0.windows.0.days",
    ],
    [
      "unknown day",
      () => ({
        v: 1,
        conditions: [{ type: "time", windows: [{ days: ["funday"], start: "09:00", end: "17:00" }] }],
        action: { type: "voicemail" },
      }),
      "rule.conditions.0.windows.0.days",
    ],
    [
      "bad time zone",
      () => ({
        v: 1,
        conditions: [{ type: "time", timeZone: "Mars/Olympus" }],
        action: { type: "voicemail" },
      }),
      "rule.conditions.0.timeZone",
    ],
    [
      "forward to a non-E.164 number",
      () => ({ v: 1, conditions: [{ type: "default" }], action: { type: "forward", to: "555-0100" } }),
      "rule.action.to",
    ],
    [
      "unknown action",
      () => ({ v: 1, conditions: [{ type: "default" }], action: { type: "launch" } }),
      "rule.action",
    ],
  ];
  it.each(bad)("rejects %s with details", async (_name, doc, path) => {
    const res = await request(t, "POST", "/api/routes", { as: admin, body: { name: "r", rule: doc() } });
    expect(res.status).toBe(400);
    const err = (await res.json()) as ErrorJson;
    expect(err.error.code).toBe("validation_failed");
    expect(
      err.error.details?.map((d) => d.path),
      JSON.stringify(err.error.details),
    ).toContainEqual(expect.stringMatching(new RegExp(`^${path.replace(/\./g, "\\.")}`)));
  });

  it("rejects references that do not exist: device, DID, contact; and unsafe caller regexes", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        {
          name: "r",
          rule: { v: 1, conditions: [{ type: "default" }], action: { type: "ring", deviceIds: ["ghost"] } },
        },
        "rule.action.deviceIds.0",
        /no device ghost/,
      ],
      [
        {
          name: "r",
          didId: "no-such-did",
          rule: { v: 1, conditions: [{ type: "default" }], action: { type: "voicemail" } },
        },
        "didId",
        /no DID/,
      ],
      [
        {
          name: "r",
          rule: {
            v: 1,
            conditions: [{ type: "callerId", match: { by: "contacts", contactIds: ["nobody"] } }],
            action: { type: "voicemail" },
          },
        },
        "rule.conditions.0.match.contactIds.0",
        /no contact/,
      ],
      [
        {
          name: "r",
          rule: {
            v: 1,
            conditions: [{ type: "callerId", match: { by: "regex", pattern: "(\\d+)+$" } }],
            action: { type: "voicemail" },
          },
        },
        "rule.conditions.0.match.pattern",
        /catastrophic/,
      ],
    ];
    for (const [body, path, message] of cases) {
      const res = await request(t, "POST", "/api/routes", { as: admin, body });
      expect(res.status, path).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.details?.[0]?.path).toBe(path);
      expect(err.error.details?.[0]?.message).toMatch(message);
    }
    expect(await t.db.select().from(routingRules)).toHaveLength(0);

    // An existing contact is fine.
    const [contact] = await t.db.insert(contacts).values({ name: "Mum" }).returning();
    await createRule({
      name: "family",
      rule: {
        v: 1,
        conditions: [{ type: "callerId", match: { by: "contacts", contactIds: [contact?.id] } }],
        action: ring(),
      },
    });
  });

  it("re-validates on update (a rule cannot be patched into pointing at a missing device)", async () => {
    const rule = await createRule({
      name: "r",
      rule: { v: 1, conditions: [{ type: "default" }], action: ring() },
    });
    const res = await request(t, "PATCH", `/api/routes/${rule.id}`, {
      as: admin,
      body: {
        rule: { v: 1, conditions: [{ type: "default" }], action: { type: "ring", deviceIds: ["gone"] } },
      },
    });
    expect(res.status).toBe(400);
    const moved = await request(t, "PATCH", `/api/routes/${rule.id}`, { as: admin, body: { didId: "nope" } });
    expect(moved.status).toBe(400);
    const ok = await request(t, "PATCH", `/api/routes/${rule.id}`, {
      as: admin,
      body: { enabled: false, name: "off" },
    });
    expect(await ok.json()).toMatchObject({ enabled: false, name: "off" });
  });
});

describe("order", () => {
  const doc = { v: 1, conditions: [{ type: "default" }], action: { type: "voicemail" } };

  it("appends new rules last, lists in priority order, filters global vs per DID", async () => {
    const a = await createRule({ name: "a", rule: doc });
    const b = await createRule({ name: "b", didId, rule: doc });
    const first = await createRule({ name: "first", rule: doc, priority: 1 });
    expect(b.priority).toBeGreaterThan(a.priority);
    type Page = { items: RuleJson[]; total: number };
    const all = (await (await request(t, "GET", "/api/routes", { as: admin })).json()) as Page;
    expect(all.items.map((r) => r.name)).toEqual(["first", "a", "b"]);
    const global = (await (
      await request(t, "GET", "/api/routes?didId=global", { as: admin })
    ).json()) as Page;
    expect(global.items.map((r) => r.name)).toEqual(["first", "a"]);
    const perDid = (await (
      await request(t, "GET", `/api/routes?didId=${didId}`, { as: admin })
    ).json()) as Page;
    expect(perDid.items.map((r) => r.id)).toEqual([b.id]);
    expect(first.priority).toBe(1);
    expect(all.total).toBe(3);
    const page = (await (
      await request(t, "GET", "/api/routes?limit=2&offset=1", { as: admin })
    ).json()) as Page;
    expect(page.items.map((r) => r.name)).toEqual(["a", "b"]);
    expect(page.total).toBe(3);
    expect((await request(t, "GET", "/api/routes?limit=101", { as: admin })).status).toBe(400);
  });

  it("PUT /order reorders the listed rules within their places, all at once", async () => {
    const names = ["a", "b", "c", "d"];
    const rules: RuleJson[] = [];
    for (const name of names) rules.push(await createRule({ name, rule: doc }));
    const [a, b, c, d] = rules.map((r) => r.id);
    const res = await request(t, "PUT", "/api/routes/order", { as: admin, body: { ids: [d, b, a, c] } });
    expect(res.status).toBe(200);
    const { items } = (await res.json()) as { items: RuleJson[] };
    expect(items.map((r) => r.name)).toEqual(["d", "b", "a", "c"]);
    expect(items.map((r) => r.priority)).toEqual([10, 20, 30, 40]);

    // A subset swaps only those two; the others stay put.
    const swap = await request(t, "PUT", "/api/routes/order", { as: admin, body: { ids: [c, d] } });
    const swapped = ((await swap.json()) as { items: RuleJson[] }).items.map((r) => r.name);
    expect(swapped).toEqual(["c", "b", "a", "d"]);
  });

  it("PUT /order with an unknown or repeated id changes nothing (400)", async () => {
    const a = await createRule({ name: "a", rule: doc });
    const b = await createRule({ name: "b", rule: doc });
    const before = await t.db.select().from(routingRules);
    for (const ids of [[b.id, "ghost", a.id], [a.id, a.id], []]) {
      const res = await request(t, "PUT", "/api/routes/order", { as: admin, body: { ids } });
      expect(res.status, JSON.stringify(ids)).toBe(400);
    }
    const after = await t.db.select().from(routingRules);
    expect(after.map((r) => [r.id, r.priority]).sort()).toEqual(before.map((r) => [r.id, r.priority]).sort());
  });

  it("deleting a DID removes its rules; 404 for missing rules", async () => {
    const rule = await createRule({ name: "per did", didId, rule: doc });
    expect((await request(t, "DELETE", `/api/dids/${didId}`, { as: admin })).status).toBe(204);
    expect((await request(t, "GET", `/api/routes/${rule.id}`, { as: admin })).status).toBe(404);
    expect((await request(t, "DELETE", `/api/routes/${rule.id}`, { as: admin })).status).toBe(404);
    expect(
      (await request(t, "PATCH", `/api/routes/${rule.id}`, { as: admin, body: { name: "x" } })).status,
    ).toBe(404);
  });

  it("a rule that rings a device keeps that device from being deleted", async () => {
    await createRule({ name: "ring", rule: { v: 1, conditions: [{ type: "default" }], action: ring() } });
    const res = await request(t, "DELETE", `/api/devices/${deviceId}`, { as: admin });
    expect(res.status).toBe(409);
  });
});

describe("access control", () => {
  it("is admin only: 403 for users, 401 without a session", async () => {
    const user = (await loginAs(t, "user")).session;
    const rule = await createRule({
      name: "r",
      rule: { v: 1, conditions: [{ type: "default" }], action: ring() },
    });
    const body = {
      name: "x",
      rule: { v: 1, conditions: [{ type: "default" }], action: { type: "voicemail" } },
    };
    for (const [method, path, payload] of [
      ["GET", "/api/routes", undefined],
      ["POST", "/api/routes", body],
      ["GET", `/api/routes/${rule.id}`, undefined],
      ["PATCH", `/api/routes/${rule.id}`, { name: "x" }],
      ["DELETE", `/api/routes/${rule.id}`, undefined],
      ["PUT", "/api/routes/order", { ids: [rule.id] }],
    ] as const) {
      expect((await request(t, method, path, { as: user, body: payload })).status, `${method} ${path}`).toBe(
        403,
      );
      expect((await request(t, method, path, { body: payload })).status, `${method} ${path}`).toBe(401);
    }
  });
});
