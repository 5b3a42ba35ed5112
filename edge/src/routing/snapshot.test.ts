// The routing snapshot from a real database (libSQL with migrations) filled
// through the API where one exists, and the dry run through app.request(): what
// the admin would see for a call, with the reasons, and that bad requests and
// unknown DIDs change nothing and say why.
import { readdirSync, readFileSync } from "node:fs";
import {
  blocklist,
  contactNumbers,
  contacts,
  holidays,
  type RoutingRule,
  registrations,
  routingRules,
  settings,
  users,
} from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import {
  createUser,
  type ErrorJson,
  loginAs,
  request,
  TestClock,
  type TestEdge,
  type TestSession,
  useAdminEdge,
} from "../test-support.ts";
import type { DryRunResponse } from "./dry-run.ts";
import { loadRoutingSnapshot, routeInboundCall, StoredRuleError } from "./snapshot.ts";

const NOW = Date.UTC(2026, 0, 15, 15, 0, 0); // Thursday 10:00 in New York
const clock = new TestClock(NOW);
let t: TestEdge;
let admin: TestSession;
let alice: { id: string };
let deskId: string;
let softId: string;
let didId: string;
const DID = "+15551230001";

useAdminEdge(
  (edge) => {
    t = edge.t;
    admin = edge.admin.session;
  },
  { clock },
);

async function post<T>(path: string, body: unknown, status = 201): Promise<T> {
  const res = await request(t, "POST", path, { as: admin, body });
  if (res.status !== status) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function register(deviceId: string, expiresInMs: number): Promise<void> {
  await t.db.insert(registrations).values({
    deviceId,
    contactUri: `sip:${deviceId}@192.0.2.50:5060`,
    sourceAddress: "192.0.2.50",
    sourcePort: 5060,
    transport: "udp",
    expiresAt: new Date(NOW + expiresInMs),
  });
}

beforeEach(async () => {
  clock.set(NOW);
  alice = await createUser(t, { name: "Alice" });
  deskId = (await post<{ id: string }>("/api/devices", { name: "Desk phone", userId: alice.id })).id;
  softId = (await post<{ id: string }>("/api/devices", { name: "Softphone", userId: alice.id })).id;
  didId = (
    await post<{ id: string }>("/api/dids", { e164: DID, defaultTargets: { v: 1, deviceIds: [deskId] } })
  ).id;
  const tz = await request(t, "PUT", "/api/settings/installation", {
    as: admin,
    body: { v: 1, timeZone: "America/New_York" },
  });
  expect(tz.status).toBe(200);
});

const dryRun = (body: unknown) => request(t, "POST", "/api/routes/dry-run", { as: admin, body });

async function dryRunOk(body: unknown): Promise<DryRunResponse> {
  const res = await dryRun(body);
  if (res.status !== 200) throw new Error(`dry run: ${res.status} ${await res.text()}`);
  return (await res.json()) as DryRunResponse;
}

describe("loadRoutingSnapshot", () => {
  it("is null for a number that is not a DID", async () => {
    expect(await loadRoutingSnapshot(t.deps, "+15559999999", new Date(NOW))).toBeNull();
  });

  it("reads the DID, settings, devices with live registrations and owner DND, holidays and contacts", async () => {
    await register(deskId, 60_000);
    await register(softId, -1_000); // expired a second ago
    await t.db.update(users).set({ dnd: true }).where(eq(users.id, alice.id));
    await t.db.insert(holidays).values([
      { date: "2026-12-24", name: "Christmas Eve" },
      { date: "2020-12-25", name: "Christmas", recurring: true },
    ]);
    const [contact] = await t.db.insert(contacts).values({ name: "Mom" }).returning();
    if (!contact) throw new Error("no contact");
    await t.db.insert(contactNumbers).values({ contactId: contact.id, e164: "+15550100001" });
    await post("/api/blocklist", { pattern: "+1900", matchType: "prefix" });
    const screening = await request(t, "PUT", "/api/settings/callScreening", {
      as: admin,
      body: { v: 1, rejectAnonymous: true, spamThreshold: 0.5 },
    });
    expect(screening.status).toBe(200);

    const s = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(s).not.toBeNull();
    if (!s) return;
    expect(s.did).toEqual({ id: didId, e164: DID, dnd: false, defaultDeviceIds: [deskId] });
    expect(s.timeZone).toBe("America/New_York");
    expect(s.screening).toEqual({ rejectAnonymous: true, spamFilter: true, spamThreshold: 0.5 });
    expect(s.globalDnd).toBe(false);
    expect(s.devices.get(deskId)).toMatchObject({
      registered: true,
      dnd: true,
      enabled: true,
      name: "Desk phone",
      ownerName: "Alice",
    });
    expect(s.devices.get(softId)).toMatchObject({ registered: false });
    expect([...s.holidays.dates]).toEqual(["2026-12-24"]);
    expect([...s.holidays.recurring]).toEqual(["12-25"]);
    expect(s.contacts.get(contact.id)).toEqual(new Set(["+15550100001"]));
    expect(s.blocklist.size).toBe(1);
    expect(s.blocklist.match("+19005550100")?.matchType).toBe("prefix");
    expect(s.relayOnline).toBe(false); // no relay connected in this test edge
  });

  it("keeps the compiled blocklist between calls and sees every change on the next call, however it was written", async () => {
    await post("/api/blocklist", { pattern: "+15557654321", matchType: "exact", action: "voicemail" });
    await post("/api/blocklist", { pattern: "+1555", matchType: "prefix" });
    await post("/api/blocklist", { pattern: "^\\+1555765\\d{4}$", matchType: "regex" });
    const first = await loadRoutingSnapshot(t.deps, DID, new Date(NOW), { caller: "+15557654321" });
    if (!first) return expect.fail("no snapshot");
    expect(first.blocklist.size).toBe(3);
    expect(first.blocklist.match("+15557654321")).toMatchObject({ matchType: "exact", action: "voicemail" });
    expect(first.blocklist.match("+15551112222")).toMatchObject({ matchType: "prefix", pattern: "+1555" });
    // Nothing changed: the same compiled matcher is reused.
    const again = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(again?.blocklist).toBe(first.blocklist);
    // Written around the API (a bulk import, another isolate): the revision trigger still sees it.
    await t.db.insert(blocklist).values({ pattern: "+44", matchType: "prefix" });
    const afterInsert = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(afterInsert?.blocklist.match("+447700900123")).toMatchObject({ pattern: "+44" });
    await t.db.update(blocklist).set({ action: "voicemail" }).where(eq(blocklist.pattern, "+44"));
    const afterUpdate = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(afterUpdate?.blocklist.match("+447700900123")).toMatchObject({ action: "voicemail" });
    await t.db.delete(blocklist).where(eq(blocklist.pattern, "+1555"));
    const afterDelete = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(afterDelete?.blocklist.match("+15551112222")).toBeNull();
    expect(afterDelete?.blocklist.match("+15557654321")).toMatchObject({ matchType: "exact" });
  });

  it("sees a settings, holiday or contact change on the next call", async () => {
    const before = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(before?.globalDnd).toBe(false);
    await t.db.insert(settings).values({ key: "dnd", value: { v: 1, enabled: true } });
    await t.db.insert(holidays).values({ date: "2027-01-01", name: "New year", recurring: false });
    const after = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(after?.globalDnd).toBe(true);
    expect(after?.holidays.dates.has("2027-01-01")).toBe(true);
  });

  it("merges enabled DID and global rules by priority; other DIDs' and disabled rules are left out", async () => {
    const other = await post<{ id: string }>("/api/dids", { e164: "+15551230002" });
    const mk = (name: string, didId: string | null, priority: number, enabled = true) =>
      post("/api/routes", {
        name,
        didId,
        priority,
        enabled,
        rule: { v: 1, conditions: [{ type: "default" }], action: { type: "voicemail" } },
      });
    await mk("global late", null, 50);
    await mk("did early", didId, 10);
    await mk("global early", null, 20);
    await mk("disabled", didId, 5, false);
    await mk("other DID", other.id, 1);
    await mk("did late", didId, 60);
    const s = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(s?.rules.map((r) => r.name)).toEqual(["did early", "global early", "global late", "did late"]);
    // Stored documents come back with their defaults filled.
    expect(s?.rules[0]?.rule).toMatchObject({ v: 1, record: false });
  });

  it("an edited rule routes the next call (nothing stale is reused)", async () => {
    const doc = (action: Record<string, unknown>) => ({ v: 1, conditions: [{ type: "default" }], action });
    const created = await post<{ id: string }>("/api/routes", {
      name: "R",
      didId,
      rule: doc({ type: "voicemail" }),
    });
    const first = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(first?.rules[0]?.rule.action).toEqual({ type: "voicemail" });
    const patch = await request(t, "PATCH", `/api/routes/${created.id}`, {
      as: admin,
      body: { rule: doc({ type: "reject", reason: "disconnected" }) },
    });
    expect(patch.status).toBe(200);
    const second = await loadRoutingSnapshot(t.deps, DID, new Date(NOW));
    expect(second?.rules[0]?.rule.action).toEqual({ type: "reject", reason: "disconnected" });
    // Shared parsed documents cannot be changed by one caller for the next.
    const shared = second?.rules[0]?.rule;
    expect(() => {
      if (shared) shared.record = true;
    }).toThrow(TypeError);
  });

  it("a stored rule that is not a valid document fails the load, and the call is rejected", async () => {
    await t.db.insert(routingRules).values({
      name: "corrupt",
      didId,
      // Written around the API (an old bug, a hand edit): a forward without a number.
      rule: {
        v: 1,
        conditions: [{ type: "default" }],
        action: { type: "forward" },
      } as unknown as RoutingRule,
    });
    await expect(loadRoutingSnapshot(t.deps, DID, new Date(NOW))).rejects.toThrow(StoredRuleError);
    const d = await routeInboundCall(t.deps, {
      callSid: "CA3",
      from: "+15557654321",
      to: DID,
      at: new Date(NOW),
    });
    expect(d).toMatchObject({ action: "reject", reason: "error", rejectAs: "busy" });
    const dry = await dryRunOk({ to: DID, from: "+15557654321" });
    expect(dry.decision).toMatchObject({ action: "reject", reason: "error" });
    expect(dry.reasons[0]).toContain("is not valid");
  });

  it("routeInboundCall decides for a known DID and is null for an unknown one", async () => {
    const call = { callSid: "CA1", from: "+15557654321", to: DID, at: new Date(NOW) };
    expect(await routeInboundCall(t.deps, call)).toMatchObject({
      action: "voicemail",
      reason: "relay_offline",
    });
    expect(await routeInboundCall(t.deps, { ...call, to: "+15559999999" })).toBeNull();
  });

  it("routeInboundCall fails closed when the database cannot be read, logging no caller number", async () => {
    const broken = {
      ...t.deps,
      db: new Proxy(t.deps.db, {
        get: (target, prop, receiver) => {
          if (prop === "batch") return () => Promise.reject(new Error("database is locked"));
          return Reflect.get(target, prop, receiver);
        },
      }),
    };
    const call = {
      callSid: "CA2",
      from: "+15557654321",
      to: DID,
      at: new Date(NOW),
      stirVerstat: "TN-Validation-Passed-C",
    };
    const d = await routeInboundCall(broken, call);
    expect(d).toMatchObject({ action: "reject", reason: "error", rejectAs: "busy", spamScore: 0.4 });
    const logged = t.logs.find((l) => l.msg.includes("fail closed"));
    expect(logged?.data).toMatchObject({ callSid: "CA2" });
    expect(JSON.stringify(t.logs)).not.toContain("5557654321");
  });
});

describe("POST /api/routes/dry-run", () => {
  it("rings the default device when nothing else applies, as if registered", async () => {
    const r = await dryRunOk({ to: DID, from: "+15557654321", assumeRegistered: true });
    expect(r.did).toEqual({ id: didId, e164: DID });
    expect(r.at).toBe(new Date(NOW).toISOString());
    expect(r.decision).toMatchObject({ action: "ring", strategy: "simultaneous", timeoutSeconds: 30 });
    expect(r.summary).toBe("Rings Alice's Desk phone (101) for 30 s, then voicemail");
    expect(r.reasons).toHaveLength(r.decision.trace.length);
    expect(r.reasons.at(-2)).toContain("No rule matched");
  });

  it("without assumeRegistered shows the real state: no relay, straight to voicemail", async () => {
    const r = await dryRunOk({ to: didId, from: "+15557654321" });
    expect(r.decision).toMatchObject({ action: "voicemail", reason: "relay_offline" });
    expect(r.summary).toBe("Straight to voicemail: the relay is offline");
  });

  it("answers for a time in the future with the rule that applies then, by DID id or number", async () => {
    await post("/api/routes", {
      name: "After hours",
      didId,
      rule: {
        v: 1,
        conditions: [
          {
            type: "time",
            windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "18:00", end: "08:00" }],
          },
        ],
        action: { type: "playMessage", message: { kind: "tts", text: "We are closed." } },
      },
    });
    const night = await dryRunOk({ to: DID, from: "+15557654321", at: "2026-01-16T03:00:00Z" }); // 22:00 Thursday NY
    expect(night.decision).toMatchObject({ action: "playMessage" });
    expect(night.summary).toBe('Says "We are closed.", then hangs up');
    expect(night.reasons.find((x) => x.startsWith('Rule "After hours" matches'))).toContain(
      "America/New_York",
    );
    const day = await dryRunOk({
      to: didId,
      from: "+15557654321",
      at: "2026-01-15T10:00:00-05:00",
      assumeRegistered: true,
    });
    expect(day.decision.action).toBe("ring");
    expect(day.reasons.find((x) => x.startsWith('Rule "After hours"'))).toContain("does not match");
  });

  it("shows a blocklisted, an anonymous and a spam caller being rejected, with the score", async () => {
    await post("/api/blocklist", { pattern: "+1 900", matchType: "prefix" });
    await request(t, "PUT", "/api/settings/callScreening", {
      as: admin,
      body: { v: 1, rejectAnonymous: true },
    });
    const blocked = await dryRunOk({ to: DID, from: "+19005550100" });
    expect(blocked.decision).toMatchObject({ action: "reject", reason: "blocklist" });
    expect(blocked.summary).toBe("Rejected with a busy signal: the caller is on the blocklist");
    const anon = await dryRunOk({ to: DID, from: "anonymous" });
    expect(anon.decision).toMatchObject({ action: "reject", reason: "anonymous" });
    const spam = await dryRunOk({
      to: DID,
      from: "+15557654321",
      addOns: {
        status: "successful",
        results: { nomorobo_spamscore: { status: "successful", result: { score: 1 } } },
      },
    });
    expect(spam.decision).toMatchObject({ action: "reject", reason: "spam", spamScore: 1 });
    const verstat = await dryRunOk({
      to: DID,
      from: "+15557654321",
      stirVerstat: "TN-Validation-Passed-B",
      assumeRegistered: true,
    });
    expect(verstat.decision).toMatchObject({ action: "ring", spamScore: 0.2 });
  });

  it("sequential ring groups read in order", async () => {
    await post("/api/routes", {
      name: "Group",
      didId,
      rule: {
        v: 1,
        conditions: [{ type: "default" }],
        action: { type: "ring", deviceIds: [softId, deskId], strategy: "sequential", timeoutSeconds: 15 },
      },
    });
    const r = await dryRunOk({ to: DID, from: "+15557654321", assumeRegistered: true });
    expect(r.summary).toBe(
      "Rings Alice's Softphone (102), then Alice's Desk phone (101), 15 s each, then voicemail",
    );
  });

  it("404 for an unknown DID, by number or id", async () => {
    for (const to of ["+15559999999", "no-such-did", "+1 555"]) {
      const res = await dryRun({ to, from: "+15557654321" });
      expect(res.status, to).toBe(404);
      expect(((await res.json()) as ErrorJson).error.code).toBe("not_found");
    }
  });

  describe("bad requests", () => {
    const dir = new URL("./fixtures/dry-run/bad/", import.meta.url);
    const bad = readdirSync(dir)
      .filter((f) => f.endsWith(".json"))
      .sort()
      .map(
        (f) =>
          [
            f,
            JSON.parse(readFileSync(new URL(f, dir), "utf8")) as { body: unknown; errorPath: string },
          ] as const,
      );

    it("has fixtures", () => expect(bad.length).toBeGreaterThanOrEqual(5));

    it.each(bad)("bad/%s → 400 naming the field", async (_file, f) => {
      const res = await dryRun(f.body);
      expect(res.status).toBe(400);
      const body = (await res.json()) as ErrorJson;
      expect(body.error.code).toBe("validation_failed");
      expect(body.error.details?.map((d) => d.path)).toContain(f.errorPath);
    });
  });

  it("is for admins only and needs the CSRF header", async () => {
    const user = await loginAs(t, "user");
    const body = { to: DID, from: "+15557654321" };
    expect((await request(t, "POST", "/api/routes/dry-run", { as: user.session, body })).status).toBe(403);
    expect((await request(t, "POST", "/api/routes/dry-run", { body })).status).toBe(401);
    expect((await request(t, "POST", "/api/routes/dry-run", { as: admin, body, csrf: false })).status).toBe(
      403,
    );
  });

  it("is in the OpenAPI document", async () => {
    const res = await request(t, "GET", "/api/openapi.json", { as: admin });
    if (res.status !== 200) return expect.fail(`openapi: ${res.status}`);
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    expect(doc.paths["/api/routes/dry-run"]?.post).toBeDefined();
  });
});
