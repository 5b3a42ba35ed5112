// The messages API as the UI uses it: conversations per DID and peer with the
// last message, unread counts and contact names; a conversation's messages;
// marking read; and who sees what (a user: their DIDs only; no IDOR).
import { contactNumbers, contacts } from "@gosip/drizzle";
import { describe, expect, it } from "vitest";
import { type ErrorJson, request } from "../test-support.ts";
import type { MessageDto } from "./routes.ts";
import {
  ALICE_DID,
  BOB_DID,
  inboundParams,
  PEER,
  postWebhook,
  type SmsWorld,
  useSmsWorld,
} from "./sms-test-support.ts";

let w: SmsWorld;
useSmsWorld((world) => {
  w = world;
});

interface Conversation {
  didId: string | null;
  didE164: string | null;
  peer: string;
  contactName: string | null;
  unreadCount: number;
  messageCount: number;
  lastMessage: MessageDto;
}
interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

async function inbound(from: string, to: string, body: string) {
  const res = await postWebhook(w.t, "/sms", inboundParams({ From: from, To: to, Body: body }));
  expect(res.status).toBe(200);
  w.clock.advance(1_000);
}

async function getJson<T>(path: string, as = w.alice.session): Promise<{ status: number; body: T }> {
  const res = await request(w.t, "GET", path, { as });
  return { status: res.status, body: (await res.json()) as T };
}

const conversationPath = (didId: string, peer: string) =>
  `/api/messages/conversations/${didId}/${encodeURIComponent(peer)}`;

describe("GET /api/messages/conversations", () => {
  it("lists one conversation per DID and peer, newest first, with unread counts and contact names", async () => {
    const [carol] = await w.t.db.insert(contacts).values({ name: "Carol" }).returning({ id: contacts.id });
    await w.t.db.insert(contactNumbers).values({ contactId: carol?.id ?? "", e164: PEER });
    // Alice's own contact for another number, which Bob must not see.
    const [mine] = await w.t.db
      .insert(contacts)
      .values({ name: "Dentist", ownerUserId: w.alice.user.id })
      .returning({ id: contacts.id });
    await w.t.db.insert(contactNumbers).values({ contactId: mine?.id ?? "", e164: "+15553334444" });

    await inbound(PEER, ALICE_DID, "first");
    await inbound("+15553334444", ALICE_DID, "appointment");
    await inbound(PEER, ALICE_DID, "second");
    await inbound(PEER, BOB_DID, "to bob");
    await request(w.t, "POST", "/api/messages", { as: w.alice.session, body: { to: PEER, body: "reply" } });

    const { status, body } = await getJson<Page<Conversation>>("/api/messages/conversations");
    expect(status).toBe(200);
    expect(body.total).toBe(2);
    expect(
      body.items.map((c) => [
        c.didE164,
        c.peer,
        c.contactName,
        c.unreadCount,
        c.messageCount,
        c.lastMessage.body,
      ]),
    ).toEqual([
      [ALICE_DID, PEER, "Carol", 2, 3, "reply"],
      [ALICE_DID, "+15553334444", "Dentist", 1, 1, "appointment"],
    ]);

    // Bob sees only his DID's conversation; the admin sees all three.
    const bob = await getJson<Page<Conversation>>("/api/messages/conversations", w.bob.session);
    expect(bob.body.items.map((c) => [c.didE164, c.peer, c.contactName])).toEqual([[BOB_DID, PEER, "Carol"]]);
    const admin = await getJson<Page<Conversation>>("/api/messages/conversations", w.admin.session);
    expect(admin.body.total).toBe(3);
    // The admin has no private contact for the dentist's number.
    expect(admin.body.items.find((c) => c.peer === "+15553334444")?.contactName).toBeNull();
  });

  it("pages with a total, also past the end", async () => {
    for (let i = 0; i < 5; i++) await inbound(`+1555000100${i}`, ALICE_DID, `m${i}`);
    const first = await getJson<Page<Conversation>>("/api/messages/conversations?limit=2");
    expect(first.body).toMatchObject({ total: 5, limit: 2, offset: 0 });
    expect(first.body.items.map((c) => c.peer)).toEqual(["+15550001004", "+15550001003"]);
    const last = await getJson<Page<Conversation>>("/api/messages/conversations?limit=2&offset=4");
    expect(last.body.items.map((c) => c.peer)).toEqual(["+15550001000"]);
    const past = await getJson<Page<Conversation>>("/api/messages/conversations?limit=2&offset=10");
    expect(past.body).toMatchObject({ items: [], total: 5 });
    expect((await getJson<ErrorJson>("/api/messages/conversations?limit=101")).status).toBe(400);
  });

  it("answers 401 without a session", async () => {
    const res = await request(w.t, "GET", "/api/messages/conversations");
    expect(res.status).toBe(401);
  });
});

describe("a conversation", () => {
  it("lists its messages newest first, and marking it read clears the unread count", async () => {
    await inbound(PEER, ALICE_DID, "one");
    await inbound(PEER, ALICE_DID, "two");
    const path = conversationPath(w.aliceDid.id, PEER);
    const page = await getJson<Page<MessageDto>>(path);
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(2);
    expect(page.body.items.map((m) => [m.body, m.readAt])).toEqual([
      ["two", null],
      ["one", null],
    ]);

    const read = await request(w.t, "POST", `${path}/read`, { as: w.alice.session });
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual({ updated: 2 });
    const again = await request(w.t, "POST", `${path}/read`, { as: w.alice.session });
    expect(await again.json()).toEqual({ updated: 0 });
    const list = await getJson<Page<Conversation>>("/api/messages/conversations");
    expect(list.body.items[0]?.unreadCount).toBe(0);
    const after = await getJson<Page<MessageDto>>(path);
    expect(after.body.items.every((m) => m.readAt !== null)).toBe(true);
  });

  it("does not exist for users whose DIDs it is not on (404, nothing changed)", async () => {
    await inbound(PEER, ALICE_DID, "private");
    const path = conversationPath(w.aliceDid.id, PEER);
    expect((await getJson<ErrorJson>(path, w.bob.session)).status).toBe(404);
    const read = await request(w.t, "POST", `${path}/read`, { as: w.bob.session });
    expect(read.status).toBe(404);
    expect(
      (await getJson<Page<Conversation>>("/api/messages/conversations")).body.items[0]?.unreadCount,
    ).toBe(1);
    // An unknown peer, an unknown DID, and the admin-only "none" DID: 404 too.
    expect((await getJson<ErrorJson>(conversationPath(w.aliceDid.id, "+15550009999"))).status).toBe(404);
    expect((await getJson<ErrorJson>(conversationPath(crypto.randomUUID(), PEER))).status).toBe(404);
    expect((await getJson<ErrorJson>(conversationPath("none", PEER))).status).toBe(404);
    // The admin reads it.
    expect((await getJson<Page<MessageDto>>(path, w.admin.session)).status).toBe(200);
  });

  it("keeps messages to a number that is no DID, for the admin only", async () => {
    await inbound(PEER, "+15550009999", "wrong number");
    const admin = await getJson<Page<Conversation>>("/api/messages/conversations", w.admin.session);
    expect(admin.body.items.map((c) => [c.didId, c.peer])).toEqual([[null, PEER]]);
    const page = await getJson<Page<MessageDto>>(conversationPath("none", PEER), w.admin.session);
    expect(page.body.items.map((m) => m.body)).toEqual(["wrong number"]);
    expect((await getJson<Page<Conversation>>("/api/messages/conversations")).body.total).toBe(0);
  });
});

describe("/api/messages/auto-replies", () => {
  const base = "/api/messages/auto-replies";

  it("lets an admin create, change, list and delete rules, validated", async () => {
    const as = w.admin.session;
    const created = await request(w.t, "POST", base, {
      as,
      body: { didId: w.aliceDid.id, trigger: "keyword", keyword: "hours", text: "9 to 5", priority: 5 },
    });
    expect(created.status).toBe(201);
    const rule = (await created.json()) as { id: string; keyword: string };
    expect(rule).toMatchObject({ trigger: "keyword", keyword: "hours", enabled: true, priority: 5 });

    const bad: Record<string, unknown>[] = [
      { didId: w.aliceDid.id, trigger: "keyword", text: "no keyword" },
      { didId: w.aliceDid.id, trigger: "always", keyword: "x", text: "keyword on always" },
      { didId: w.aliceDid.id, trigger: "always", text: "" },
      { didId: w.aliceDid.id, trigger: "sometimes", text: "x" },
      { didId: crypto.randomUUID(), trigger: "always", text: "x" },
    ];
    for (const body of bad)
      expect((await request(w.t, "POST", base, { as, body })).status, JSON.stringify(body)).toBe(400);

    const changed = await request(w.t, "PATCH", `${base}/${rule.id}`, { as, body: { trigger: "always" } });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toMatchObject({ trigger: "always", keyword: null });
    const list = await getJson<Page<{ id: string }>>(`${base}?didId=${w.aliceDid.id}`, as);
    expect(list.body.items.map((r) => r.id)).toEqual([rule.id]);

    // The rule works: an inbound message is answered.
    await inbound("+15550007777", ALICE_DID, "hello");
    const convo = await getJson<Page<MessageDto>>(conversationPath(w.aliceDid.id, "+15550007777"), as);
    expect(convo.body.items.map((m) => [m.direction, m.isAutoReply, m.body])).toEqual([
      ["outbound", true, "9 to 5"],
      ["inbound", false, "hello"],
    ]);

    expect((await request(w.t, "DELETE", `${base}/${rule.id}`, { as })).status).toBe(204);
    expect((await request(w.t, "DELETE", `${base}/${rule.id}`, { as })).status).toBe(404);
  });

  it("is for admins only", async () => {
    const res = await request(w.t, "POST", base, {
      as: w.alice.session,
      body: { didId: w.aliceDid.id, trigger: "always", text: "x" },
    });
    expect(res.status).toBe(403);
    expect((await request(w.t, "GET", base, { as: w.alice.session })).status).toBe(403);
  });
});
