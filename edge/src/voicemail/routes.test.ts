// /api/voicemails through the real app on a real Node server, with a real WebSocket
// client playing the relay (it answers commands and records the MWI updates it gets):
// scoping (a user sees only their mailbox; someone else's is a 404 everywhere), filters
// and pages, audio with Range, mark read and delete with the MWI lamp following.
import type { AddressInfo } from "node:net";
import { jobs, parseEdgeMessage, type RelayCommand, voicemails } from "@gosip/drizzle";
import { serve } from "@hono/node-server";
import { createNodeWebSocket } from "@hono/node-ws";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { attachNodeRelayLink } from "../relay/node-link.ts";
import {
  type ErrorJson,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
  type TestUser,
  useAdminEdge,
} from "../test-support.ts";
import { makeWav, sid } from "./fake-twilio.test-support.ts";
import type { VoicemailDto } from "./routes.ts";

let t: TestEdge;
let admin: TestSession;
let server: ReturnType<typeof serve>;
let relay: WebSocket;
/** MWI commands the relay received, in order. */
let mwi: Extract<RelayCommand, { kind: "mwi" }>[];
let alice: { user: TestUser; session: TestSession };
let bob: { user: TestUser; session: TestSession };
let aliceDevice: string;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});

beforeEach(async () => {
  const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app: t.app });
  attachNodeRelayLink(t.deps, upgradeWebSocket);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
    injectWebSocket(server);
  });
  const port = (server.address() as AddressInfo).port;
  const tokenRes = await request(t, "POST", "/api/relay/tokens", { as: admin, body: { name: "home" } });
  const { token } = (await tokenRes.json()) as { token: string };
  relay = new WebSocket(`ws://127.0.0.1:${port}/api/relay/connect`, {
    headers: { authorization: `Bearer ${token}` },
  });
  mwi = [];
  const ready = new Promise<void>((resolve, reject) => {
    relay.on("message", (data) => {
      const parsed = parseEdgeMessage(String(data));
      if (!parsed.ok) return reject(new Error(`invalid edge frame: ${parsed.reason}`));
      const m = parsed.message;
      if (m.type === "config" && m.full) resolve();
      if (m.type === "command") {
        if (m.command.kind === "mwi") mwi.push(m.command);
        relay.send(JSON.stringify({ type: "command-result", id: m.id, ok: true }));
      }
    });
    relay.once("error", reject);
  });
  await new Promise<void>((resolve, reject) => {
    relay.once("open", () => resolve());
    relay.once("error", reject);
  });
  relay.send(
    JSON.stringify({ type: "hello", v: 1, software: "gosip-relay test", sip: ["udp/192.0.2.10:5060"] }),
  );
  await ready;

  alice = await loginAs(t, "user");
  bob = await loginAs(t, "user");
  const dev = await request(t, "POST", "/api/devices", {
    as: admin,
    body: { name: "Alice desk", userId: alice.user.id },
  });
  expect(dev.status).toBe(201);
  aliceDevice = ((await dev.json()) as { id: string }).id;
});

afterEach(async () => {
  relay.terminate();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
});

let minute = 0;

/** A stored voicemail (as the download job leaves it) with real WAV audio. */
async function voicemailFor(
  userId: string | null,
  opts: { read?: boolean; didId?: string; seconds?: number } = {},
): Promise<{ id: string; wav: Uint8Array }> {
  minute += 1;
  const id = crypto.randomUUID();
  const wav = makeWav(opts.seconds ?? 1);
  const blobKey = `voicemails/${id}.wav`;
  await t.deps.blobs.put(blobKey, wav, { contentType: "audio/x-wav" });
  await t.db.insert(voicemails).values({
    id,
    userId,
    didId: opts.didId ?? null,
    fromNumber: "+15557654321",
    durationSeconds: opts.seconds ?? 1,
    audioStatus: "stored",
    blobKey,
    contentType: "audio/x-wav",
    sizeBytes: wav.byteLength,
    transcriptStatus: "pending",
    twilioRecordingSid: sid("RE"),
    receivedAt: new Date(Date.UTC(2026, 0, 15, 12, minute)),
    readAt: opts.read ? new Date() : null,
  });
  return { id, wav };
}

async function list(as: TestSession, query = ""): Promise<{ items: VoicemailDto[]; total: number }> {
  const res = await request(t, "GET", `/api/voicemails${query}`, { as });
  expect(res.status).toBe(200);
  return (await res.json()) as { items: VoicemailDto[]; total: number };
}

describe("who sees what", () => {
  it("a user lists only their own mailbox, newest first; an admin lists all", async () => {
    const a1 = await voicemailFor(alice.user.id);
    const a2 = await voicemailFor(alice.user.id);
    const b1 = await voicemailFor(bob.user.id);
    const shared = await voicemailFor(null);
    const mine = await list(alice.session);
    expect(mine.items.map((v) => v.id)).toEqual([a2.id, a1.id]);
    expect(mine.total).toBe(2);
    expect(mine.items[0]).toMatchObject({
      userId: alice.user.id,
      audioUrl: `/api/voicemails/${a2.id}/audio`,
      read: false,
      transcriptStatus: "pending",
    });
    expect((await list(bob.session)).items.map((v) => v.id)).toEqual([b1.id]);
    expect((await list(admin)).items.map((v) => v.id)).toEqual([shared.id, b1.id, a2.id, a1.id]);
  });

  it("someone else's voicemail is a 404 for reading, audio, mark read and delete, and stays untouched", async () => {
    const theirs = await voicemailFor(bob.user.id);
    for (const [method, path] of [
      ["GET", `/api/voicemails/${theirs.id}`],
      ["GET", `/api/voicemails/${theirs.id}/audio`],
      ["POST", `/api/voicemails/${theirs.id}/read`],
      ["DELETE", `/api/voicemails/${theirs.id}`],
    ] as const) {
      const res = await request(t, method, path, { as: alice.session });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(((await res.json()) as ErrorJson).error.code).toBe("not_found");
    }
    const [row] = await t.db.select().from(voicemails).where(eq(voicemails.id, theirs.id));
    expect(row).toMatchObject({ readAt: null, deletedAt: null });
    expect(await t.deps.blobs.head(row?.blobKey ?? "")).not.toBeNull();
    expect(mwi).toEqual([]);
  });

  it("needs a session", async () => {
    expect((await request(t, "GET", "/api/voicemails")).status).toBe(401);
  });
});

describe("filters and pages", () => {
  it("filters unread/read and by DID, pages with a total", async () => {
    const didRes = await request(t, "POST", "/api/dids", { as: admin, body: { e164: "+15551230009" } });
    const didId = ((await didRes.json()) as { id: string }).id;
    const unread = await voicemailFor(alice.user.id, { didId });
    const read = await voicemailFor(alice.user.id, { read: true });
    expect((await list(alice.session, "?unread=true")).items.map((v) => v.id)).toEqual([unread.id]);
    expect((await list(alice.session, "?unread=false")).items.map((v) => v.id)).toEqual([read.id]);
    expect((await list(alice.session, `?didId=${didId}`)).items.map((v) => v.id)).toEqual([unread.id]);
    const page = await list(alice.session, "?limit=1&offset=1");
    expect(page).toMatchObject({ total: 2, items: [{ id: unread.id }] });
    const bad = await request(t, "GET", "/api/voicemails?limit=500", { as: alice.session });
    expect(bad.status).toBe(400);
  });
});

describe("audio", () => {
  it("serves the whole file with its content type, and byte ranges as 206", async () => {
    const { id, wav } = await voicemailFor(alice.user.id, { seconds: 2 });
    const whole = await request(t, "GET", `/api/voicemails/${id}/audio`, { as: alice.session });
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("audio/x-wav");
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(wav);

    const part = await request(t, "GET", `/api/voicemails/${id}/audio`, {
      as: alice.session,
      headers: { range: "bytes=44-143" },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 44-143/${wav.byteLength}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(wav.subarray(44, 144));

    const tail = await request(t, "GET", `/api/voicemails/${id}/audio`, {
      as: alice.session,
      headers: { range: "bytes=-10" },
    });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(wav.subarray(wav.byteLength - 10));

    const outside = await request(t, "GET", `/api/voicemails/${id}/audio`, {
      as: alice.session,
      headers: { range: `bytes=${wav.byteLength}-` },
    });
    expect(outside.status).toBe(416);
    expect(outside.headers.get("content-range")).toBe(`bytes */${wav.byteLength}`);
  });

  it("a voicemail whose audio is not stored has no audio (404) and no audioUrl", async () => {
    const { id } = await voicemailFor(alice.user.id);
    await t.db.update(voicemails).set({ audioStatus: "failed", blobKey: null }).where(eq(voicemails.id, id));
    expect((await request(t, "GET", `/api/voicemails/${id}/audio`, { as: alice.session })).status).toBe(404);
    expect((await list(alice.session)).items[0]?.audioUrl).toBeNull();
  });
});

describe("read and delete update the MWI lamp", () => {
  it("mark read: the voicemail is read and the relay gets the new counts for the user's device", async () => {
    const { id } = await voicemailFor(alice.user.id);
    await voicemailFor(alice.user.id);
    const res = await request(t, "POST", `/api/voicemails/${id}/read`, { as: alice.session });
    expect(res.status).toBe(200);
    expect(((await res.json()) as VoicemailDto).read).toBe(true);
    expect(mwi).toEqual([
      { kind: "mwi", mailboxes: [{ deviceId: aliceDevice, newMessages: 1, oldMessages: 1 }] },
    ]);
    // Reading again changes nothing and sends nothing.
    await request(t, "POST", `/api/voicemails/${id}/read`, { as: alice.session });
    expect(mwi).toHaveLength(1);
  });

  it("delete: hidden from the list, audio gone, removal from Twilio queued, the lamp follows", async () => {
    const a = await voicemailFor(alice.user.id);
    const b = await voicemailFor(alice.user.id);
    const res = await request(t, "DELETE", `/api/voicemails/${a.id}`, { as: alice.session });
    expect(res.status).toBe(204);
    const left = await list(alice.session);
    expect(left.total).toBe(1);
    expect(left.items.map((v) => v.id)).toEqual([b.id]);
    expect(await t.deps.blobs.head(`voicemails/${a.id}.wav`)).toBeNull();
    expect((await request(t, "GET", `/api/voicemails/${a.id}`, { as: alice.session })).status).toBe(404);
    expect(mwi).toEqual([
      { kind: "mwi", mailboxes: [{ deviceId: aliceDevice, newMessages: 1, oldMessages: 0 }] },
    ]);
    const queued = await t.db.select({ kind: jobs.kind, payload: jobs.payload }).from(jobs);
    expect(queued).toMatchObject([
      { kind: "voicemail.twilio-delete", payload: { voicemailId: a.id, reason: "deleted" } },
    ]);
    // Deleting twice: already gone.
    expect((await request(t, "DELETE", `/api/voicemails/${a.id}`, { as: alice.session })).status).toBe(404);
  });

  it("an admin can delete a shared-mailbox voicemail (no lamp to update)", async () => {
    const shared = await voicemailFor(null);
    expect((await request(t, "DELETE", `/api/voicemails/${shared.id}`, { as: admin })).status).toBe(204);
    expect((await list(admin)).total).toBe(0);
    expect(mwi).toEqual([]);
  });

  it("writes need the CSRF header", async () => {
    const { id } = await voicemailFor(alice.user.id);
    const res = await request(t, "DELETE", `/api/voicemails/${id}`, { as: alice.session, csrf: false });
    expect(res.status).toBe(403);
    expect((await list(alice.session)).total).toBe(1);
  });
});
