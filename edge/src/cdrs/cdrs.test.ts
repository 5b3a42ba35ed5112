// GET /api/cdrs: the calls the relay reported, as a user and an admin see them:
// scoping (a user sees only their own calls), filters and pagination with a total.
import type { RelayEvent } from "@gosip/drizzle";
import { beforeEach, describe, expect, it } from "vitest";
import { applyRelayEvent } from "../relay/events.ts";
import {
  createUser,
  request,
  signIn,
  type TestEdge,
  type TestSession,
  type TestUser,
  useAdminEdge,
} from "../test-support.ts";

let t: TestEdge;
let admin: TestSession;
let alice: TestUser;
let aliceSession: TestSession;
let aliceDevice: string;
let bobDevice: string;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});

async function device(userId: string, name: string): Promise<string> {
  const res = await request(t, "POST", "/api/devices", { as: admin, body: { name, userId } });
  return ((await res.json()) as { id: string }).id;
}

let n = 0;
async function endedCall(
  deviceId: string,
  opts: Partial<Extract<RelayEvent, { kind: "call.ended" }>> & { minute: number },
): Promise<void> {
  n += 1;
  const startedAt = new Date(Date.UTC(2026, 0, 15, 12, opts.minute)).toISOString();
  const outcome = await applyRelayEvent(t.deps, {
    key: `ended-${n}-${crypto.randomUUID()}`,
    at: startedAt,
    event: {
      kind: "call.ended",
      callId: `call-${n}`,
      direction: opts.direction ?? "outbound",
      from: opts.from ?? "101",
      to: opts.to ?? "+15551234567",
      deviceId,
      twilioCallSid: null,
      startedAt,
      answeredAt: null,
      endedAt: startedAt,
      disposition: opts.disposition ?? "answered",
      sipStatus: 200,
      durationSeconds: 0,
      hangupBy: null,
      rtp: null,
      ladder: [],
    },
  });
  expect(outcome.kind).toBe("stored");
}

interface CdrPage {
  items: { id: string; userId: string; from: string; to: string; direction: string; disposition: string }[];
  total: number;
  limit: number;
}

async function list(as: TestSession, query = ""): Promise<CdrPage> {
  const res = await request(t, "GET", `/api/cdrs${query}`, { as });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as CdrPage;
}

beforeEach(async () => {
  alice = await createUser(t);
  aliceSession = await signIn(t, alice);
  const bob = await createUser(t);
  aliceDevice = await device(alice.id, "Alice");
  bobDevice = await device(bob.id, "Bob");
  await endedCall(aliceDevice, { minute: 1, to: "+447700900123" });
  await endedCall(aliceDevice, {
    minute: 2,
    direction: "inbound",
    from: "+15557654321",
    to: "101",
    disposition: "missed",
  });
  await endedCall(bobDevice, { minute: 3, disposition: "busy" });
  await endedCall(bobDevice, { minute: 4, direction: "internal", to: "102" });
});

describe("GET /api/cdrs", () => {
  it("shows a user only their own calls, newest first; the admin all of them", async () => {
    const mine = await list(aliceSession);
    expect(mine.total).toBe(2);
    expect(mine.limit).toBe(20);
    expect(mine.items.every((c) => c.userId === alice.id)).toBe(true);
    expect(mine.items.map((c) => c.direction)).toEqual(["inbound", "outbound"]);
    expect((await list(admin)).total).toBe(4);
    // A filter cannot widen a user's view, and someone else's call is a 404.
    expect((await list(aliceSession, `?deviceId=${bobDevice}`)).total).toBe(0);
    const bobs = (await list(admin, `?deviceId=${bobDevice}`)).items[0];
    expect((await request(t, "GET", `/api/cdrs/${bobs?.id}`, { as: aliceSession })).status).toBe(404);
    expect(
      (
        await request(t, "POST", `/api/cdrs/${bobs?.id}/recording`, {
          as: aliceSession,
          body: { action: "start" },
        })
      ).status,
    ).toBe(404);
    expect((await request(t, "GET", "/api/cdrs")).status).toBe(401);
  });

  it("filters by time, direction, disposition, device and number; pages with a total", async () => {
    expect((await list(admin, "?direction=internal")).items.map((c) => c.to)).toEqual(["102"]);
    expect((await list(admin, "?disposition=busy")).total).toBe(1);
    expect((await list(admin, "?number=7700900")).items.map((c) => c.to)).toEqual(["+447700900123"]);
    expect((await list(admin, "?number=%2B1555765")).items.map((c) => c.from)).toEqual(["+15557654321"]);
    const window = await list(admin, "?from=2026-01-15T12:02:00Z&to=2026-01-15T12:04:00Z");
    expect(window.total).toBe(2);
    const page = await list(admin, "?limit=1&offset=1");
    expect(page).toMatchObject({ total: 4, limit: 1 });
    expect(page.items).toHaveLength(1);
    expect((await request(t, "GET", "/api/cdrs?limit=101", { as: admin })).status).toBe(400);
    expect((await request(t, "GET", "/api/cdrs?number=%25", { as: admin })).status).toBe(400);
  });
});
