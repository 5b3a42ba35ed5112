// The relay sync protocol over a real Node server and a real `ws` client playing the
// relay: hello → hello-ack + config snapshot, deltas pushed after API changes, events
// stored exactly once, bad frames closed with the protocol's codes, commands answered.
import type { AddressInfo } from "node:net";
import {
  CLOSE_PROTOCOL_VERSION,
  type ConfigDelta,
  type ConfigSnapshot,
  cdrs,
  computeHa1,
  type EdgeMessage,
  parseEdgeMessage,
  type RelayEvent,
  registrations,
  systemEvents,
  users,
  voicemails,
} from "@gosip/drizzle";
import { serve } from "@hono/node-server";
import { createNodeWebSocket } from "@hono/node-ws";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  createUser,
  request,
  signIn,
  type TestEdge,
  type TestSession,
  useAdminEdge,
} from "../test-support.ts";
import { attachNodeRelayLink } from "./node-link.ts";

let t: TestEdge;
let admin: TestSession;
let adminId: string;
let server: ReturnType<typeof serve>;
let baseWs: string;
const relays: RelayPeer[] = [];

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
  adminId = edge.admin.user.id;
});
beforeEach(async () => {
  const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app: t.app });
  attachNodeRelayLink(t.deps, upgradeWebSocket);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
    injectWebSocket(server);
  });
  baseWs = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/relay/connect`;
});
afterEach(async () => {
  for (const r of relays.splice(0)) r.ws.terminate();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
});

/** The relay's end of the link: every edge frame validated with the shared schema, queued for the test. */
class RelayPeer {
  readonly frames: EdgeMessage[] = [];
  private waiters: (() => void)[] = [];
  closedWith: { code: number; reason: string } | undefined;
  private seq = 0;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const parsed = parseEdgeMessage(isBinary ? data : String(data));
      if (!parsed.ok) throw new Error(`edge sent an invalid frame: ${parsed.reason}`);
      this.frames.push(parsed.message);
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on("close", (code, reason) => {
      this.closedWith = { code, reason: String(reason) };
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame matching `pick` (removed from the queue), within `ms`. */
  async next<T extends EdgeMessage>(pick: (m: EdgeMessage) => m is T, ms?: number): Promise<T>;
  async next(pick?: (m: EdgeMessage) => boolean, ms?: number): Promise<EdgeMessage>;
  async next(pick: (m: EdgeMessage) => boolean = () => true, ms = 1000): Promise<EdgeMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pick);
      if (i >= 0) return this.frames.splice(i, 1)[0] as EdgeMessage;
      const left = deadline - Date.now();
      if (left <= 0 || this.closedWith) {
        throw new Error(`no matching frame in ${ms} ms (closed: ${JSON.stringify(this.closedWith)})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async closed(ms = 2000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (!this.closedWith && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (!this.closedWith) throw new Error("socket not closed");
    return this.closedWith;
  }

  /** Sends an event the way the relay's outbox does; returns its key. */
  event(event: RelayEvent, key = `key-${crypto.randomUUID()}`): string {
    this.seq += 1;
    this.send({ type: "event", seq: this.seq, key, at: new Date().toISOString(), event });
    return key;
  }

  async acked(key: string): Promise<void> {
    await this.next((m) => m.type === "ack" && m.keys.includes(key));
  }
}

const isSnapshot = (m: EdgeMessage): m is ConfigSnapshot => m.type === "config" && m.full;
const isDelta = (m: EdgeMessage): m is ConfigDelta => m.type === "config" && !m.full;

async function relayToken(): Promise<string> {
  const res = await request(t, "POST", "/api/relay/tokens", { as: admin, body: { name: "home" } });
  return ((await res.json()) as { token: string }).token;
}

async function connect(): Promise<RelayPeer> {
  const token = await relayToken();
  const ws = new WebSocket(baseWs, { headers: { authorization: `Bearer ${token}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const peer = new RelayPeer(ws);
  relays.push(peer);
  return peer;
}

/** Connects and says hello; returns the peer and the snapshot that followed the hello-ack. */
async function helloRelay(): Promise<{ relay: RelayPeer; snapshot: ConfigSnapshot }> {
  const relay = await connect();
  relay.send({ type: "hello", v: 1, software: "gosip-relay 0.1.0", sip: ["udp/192.0.2.10:5060"] });
  const ack = await relay.next();
  expect(ack).toMatchObject({ type: "hello-ack", v: 1 });
  const snapshot = await relay.next(isSnapshot);
  return { relay, snapshot };
}

async function createDevice(
  body: Record<string, unknown> = {},
): Promise<{ id: string; sipPassword: string; sipUsername: string }> {
  const res = await request(t, "POST", "/api/devices", { as: admin, body: { name: "Desk", ...body } });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; sipPassword: string; sipUsername: string };
}

async function putSetting(key: string, value: unknown): Promise<void> {
  const res = await request(t, "PUT", `/api/settings/${key}`, { as: admin, body: value });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe("hello and the config snapshot", () => {
  it("answers hello with hello-ack, then a snapshot with HA1s, effective DND, caller ID, settings and mailboxes", async () => {
    const alice = await createUser(t, { name: "Alice" });
    const desk = await createDevice({ userId: alice.id, name: "Alice desk", recordAlways: true });
    const soft = await createDevice({ userId: adminId, name: "Admin softphone" });
    await t.db.update(users).set({ dnd: true }).where(eq(users.id, alice.id));
    await request(t, "POST", "/api/dids", { as: admin, body: { e164: "+15550000001" } });
    await request(t, "POST", "/api/dids", {
      as: admin,
      body: { e164: "+15550000002", defaultTargets: { v: 1, deviceIds: [desk.id] } },
    });
    await putSetting("installation", { v: 1, country: "GB" });
    await putSetting("twilio", {
      v: 1,
      accountSid: `AC${"a".repeat(32)}`,
      authToken: "twilio-auth-token-secret",
      sipDomainName: "home.sip.twilio.com",
      sipUsername: "gosip",
      sipPassword: "domain-password-secret",
    });
    await putSetting("relay", {
      v: 1,
      inboundUsername: "twilio",
      inboundPassword: "inbound-secret",
      trustedNetworks: ["192.168.1.0/24"],
    });
    await putSetting("storage", { v: 1, minFreeBytes: 1000 });
    await t.db.insert(voicemails).values([
      { userId: alice.id, fromNumber: "+15551230000", durationSeconds: 5, receivedAt: new Date() },
      {
        userId: alice.id,
        fromNumber: "+15551230000",
        durationSeconds: 5,
        receivedAt: new Date(),
        readAt: new Date(),
      },
      { userId: alice.id, fromNumber: "+15551230000", durationSeconds: 5, receivedAt: new Date() },
    ]);

    const { snapshot } = await helloRelay();
    const realm = "gosip";
    const aliceDevice = snapshot.devices.find((d) => d.id === desk.id);
    expect(aliceDevice).toMatchObject({
      userId: alice.id,
      name: "Alice desk",
      sipUsername: desk.sipUsername,
      ha1Md5: computeHa1(desk.sipUsername, realm, desk.sipPassword, "MD5"),
      ha1Sha256: computeHa1(desk.sipUsername, realm, desk.sipPassword, "SHA-256"),
      enabled: true,
      dnd: true,
      recordAlways: true,
      callerIdE164: "+15550000002",
    });
    // Not a ring target of any DID: the installation's first number.
    expect(snapshot.devices.find((d) => d.id === soft.id)).toMatchObject({
      dnd: false,
      callerIdE164: "+15550000001",
    });
    expect(snapshot.settings).toEqual({
      realm,
      defaultCountry: "GB",
      twilioDomain: { name: "home.sip.twilio.com", username: "gosip", password: "domain-password-secret" },
      inbound: { username: "twilio", password: "inbound-secret" },
      trustedNetworks: ["192.168.1.0/24"],
      minFreeBytes: 1000,
    });
    expect(snapshot.mailboxes).toContainEqual({ deviceId: desk.id, newMessages: 2, oldMessages: 1 });
    expect(snapshot.mailboxes).toContainEqual({ deviceId: soft.id, newMessages: 0, oldMessages: 0 });
    // The SIP passwords themselves and secrets the relay has no use for never travel.
    const text = JSON.stringify(snapshot);
    for (const secret of [desk.sipPassword, soft.sipPassword, "twilio-auth-token-secret"]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/passwordHash|authToken|tokenHash/);
  });

  it("global DND makes every device DND; a half-configured Twilio domain is none", async () => {
    await createDevice();
    await putSetting("dnd", { v: 1, enabled: true });
    await putSetting("twilio", {
      v: 1,
      accountSid: `AC${"b".repeat(32)}`,
      authToken: "x",
      sipDomainName: "d.sip.twilio.com",
    });
    const { snapshot } = await helloRelay();
    expect(snapshot.devices.every((d) => d.dnd)).toBe(true);
    expect(snapshot.settings.twilioDomain).toBeNull();
    expect(snapshot.settings.inbound).toBeNull();
  });

  it("closes a relay that speaks another protocol version (4002), and events before hello (1008)", async () => {
    const old = await connect();
    old.send({ type: "hello", v: 99 });
    expect(await old.closed()).toEqual({
      code: CLOSE_PROTOCOL_VERSION,
      reason: "protocol version 99 not supported; this edge speaks 1",
    });
    const early = await connect();
    early.event({ kind: "storage.status", freeBytes: 1, totalBytes: 2, low: false });
    expect(await early.closed()).toEqual({ code: 1008, reason: "hello first" });
  });
});

describe("deltas", () => {
  it("pushes a device created, reset, renamed and deleted in the API within a second", async () => {
    const { relay } = await helloRelay();
    const started = Date.now();
    const created = await createDevice({ name: "New phone" });
    const added = await relay.next(isDelta);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(added.upsertDevices).toHaveLength(1);
    expect(added.upsertDevices[0]).toMatchObject({
      id: created.id,
      ha1Md5: computeHa1(created.sipUsername, "gosip", created.sipPassword, "MD5"),
    });
    expect(added.removeDevices).toEqual([]);
    expect(added.settings).toBeUndefined();

    const reset = await request(t, "POST", `/api/devices/${created.id}/reset-password`, { as: admin });
    const { sipPassword } = (await reset.json()) as { sipPassword: string };
    const resetDelta = await relay.next(isDelta);
    expect(resetDelta.upsertDevices[0]?.ha1Md5).toBe(
      computeHa1(created.sipUsername, "gosip", sipPassword, "MD5"),
    );
    expect(resetDelta.version).toBeGreaterThan(added.version);

    await request(t, "PATCH", `/api/devices/${created.id}`, { as: admin, body: { enabled: false } });
    expect((await relay.next(isDelta)).upsertDevices[0]).toMatchObject({ id: created.id, enabled: false });

    expect((await request(t, "DELETE", `/api/devices/${created.id}`, { as: admin })).status).toBe(204);
    const removed = await relay.next(isDelta);
    expect(removed.removeDevices).toEqual([created.id]);
    expect(removed.upsertDevices).toEqual([]);
  });

  it("pushes a user's DND, settings the relay needs, and DIDs; not settings it does not need", async () => {
    const alice = await createUser(t);
    const phone = await createDevice({ userId: alice.id });
    const { relay } = await helloRelay();

    await request(t, "PATCH", `/api/users/${alice.id}`, { as: admin, body: { dnd: true } });
    const dnd = await relay.next(isDelta);
    expect(dnd.upsertDevices).toEqual([expect.objectContaining({ id: phone.id, dnd: true })]);

    await putSetting("relay", { v: 1, trustedNetworks: ["10.0.0.0/8"] });
    expect((await relay.next(isDelta)).settings?.trustedNetworks).toEqual(["10.0.0.0/8"]);

    await request(t, "POST", "/api/dids", { as: admin, body: { e164: "+15550000009" } });
    const did = await relay.next(isDelta);
    expect(did.upsertDevices.find((d) => d.id === phone.id)?.callerIdE164).toBe("+15550000009");

    await putSetting("retention", { v: 1 });
    await expect(relay.next(isDelta, 300)).rejects.toThrow(/no matching frame/);
  });
});

const callBase = {
  callId: "call-1@relay",
  direction: "outbound" as const,
  from: "101",
  to: "+15551234567",
  twilioCallSid: null,
};

describe("events", () => {
  it("stores an event once: the same key twice gives one CDR and two acks", async () => {
    const phone = await createDevice();
    const { relay } = await helloRelay();
    const started = {
      kind: "call.started" as const,
      ...callBase,
      deviceId: phone.id,
      startedAt: "2026-01-15T12:00:00.000Z",
    };
    const key = relay.event(started, "same-key-0001");
    await relay.acked(key);
    relay.event(started, "same-key-0001");
    await relay.acked(key);
    const rows = await t.db.select().from(cdrs);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      relayCallId: "call-1@relay",
      status: "ringing",
      deviceId: phone.id,
      userId: adminId,
    });
  });

  it("merges a call whose call.ended arrives before call.started and call.answered", async () => {
    const phone = await createDevice();
    const { relay } = await helloRelay();
    const ladder = [
      { t: 0, leg: "a", dir: "in" as const, label: "INVITE" },
      { t: 900, leg: "b", dir: "in" as const, label: "200 OK" },
      { t: 5000, leg: "a", dir: "in" as const, label: "BYE" },
    ];
    await relay.acked(
      relay.event({
        kind: "call.ended",
        ...callBase,
        deviceId: phone.id,
        startedAt: "2026-01-15T12:00:00.000Z",
        answeredAt: "2026-01-15T12:00:01.000Z",
        endedAt: "2026-01-15T12:00:05.000Z",
        disposition: "answered",
        sipStatus: 200,
        durationSeconds: 4,
        hangupBy: "caller",
        rtp: { toCaller: 200, toCallee: 200 },
        ladder,
      }),
    );
    await relay.acked(
      relay.event({
        kind: "call.started",
        ...callBase,
        deviceId: phone.id,
        startedAt: "2026-01-15T12:00:00.000Z",
      }),
    );
    await relay.acked(
      relay.event({
        kind: "call.answered",
        callId: callBase.callId,
        deviceId: phone.id,
        answeredAt: "2026-01-15T12:00:01.000Z",
      }),
    );
    const rows = await t.db.select().from(cdrs);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: "ended",
      disposition: "answered",
      durationSeconds: 4,
      sipStatus: 200,
      hangupBy: "caller",
      sipLadder: { v: 1, steps: ladder },
    });

    const res = await request(t, "GET", `/api/cdrs/${rows[0]?.id}`, { as: admin });
    expect(await res.json()).toMatchObject({
      status: "ended",
      from: "101",
      to: "+15551234567",
      answeredAt: "2026-01-15T12:00:01.000Z",
      ladder: { v: 1, steps: ladder },
    });
  });

  it("merges relay events into the CDR Twilio's webhook created for the same CallSid", async () => {
    const { relay } = await helloRelay();
    const [twilioRow] = await t.db
      .insert(cdrs)
      .values({
        direction: "inbound",
        fromNumber: "+15557654321",
        toNumber: "+15550000001",
        startedAt: new Date("2026-01-15T11:59:59.000Z"),
        twilioCallSid: `CA${"c".repeat(32)}`,
      })
      .returning();
    await relay.acked(
      relay.event({
        kind: "call.started",
        callId: "inbound-1",
        direction: "inbound",
        from: "+15557654321",
        to: "101",
        deviceId: null,
        twilioCallSid: `CA${"c".repeat(32)}`,
        startedAt: "2026-01-15T12:00:00.000Z",
      }),
    );
    const rows = await t.db.select().from(cdrs);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: twilioRow?.id, relayCallId: "inbound-1", toNumber: "+15550000001" });
  });

  it("mirrors registrations: GET /api/devices/{id} shows the contact online, and not after it went down", async () => {
    const phone = await createDevice();
    const { relay } = await helloRelay();
    const contact = {
      contactUri: "sip:101@192.168.1.20:5062;transport=udp",
      sourceAddress: "203.0.113.7",
      sourcePort: 40000,
      transport: "udp" as const,
      userAgent: "Grandstream GXP1760W",
      instanceId: null,
      callId: "reg-1",
      cseq: 2,
      expiresAt: new Date(Date.now() + 90_000).toISOString(),
      lastSeenAt: new Date().toISOString(),
    };
    await relay.acked(relay.event({ kind: "registration.up", deviceId: phone.id, contact }));
    // A refresh updates the same row.
    await relay.acked(
      relay.event({ kind: "registration.up", deviceId: phone.id, contact: { ...contact, cseq: 3 } }),
    );
    const got = (await (await request(t, "GET", `/api/devices/${phone.id}`, { as: admin })).json()) as {
      registrations: unknown[];
    };
    expect(got.registrations).toEqual([
      {
        contactUri: contact.contactUri,
        transport: "udp",
        sourceAddress: "203.0.113.7",
        sourcePort: 40000,
        userAgent: "Grandstream GXP1760W",
        expiresAt: contact.expiresAt,
        lastSeenAt: contact.lastSeenAt,
        online: true,
      },
    ]);
    await relay.acked(
      relay.event({
        kind: "registration.down",
        deviceId: phone.id,
        contactUri: contact.contactUri,
        reason: "expired",
      }),
    );
    expect(await t.db.select().from(registrations)).toEqual([]);
    // An event about a device deleted since is acknowledged and changes nothing.
    await relay.acked(relay.event({ kind: "registration.up", deviceId: "gone", contact }));
  });

  it("applies DND dialled on a phone to its user and pushes the devices back", async () => {
    const alice = await createUser(t);
    const phone = await createDevice({ userId: alice.id });
    const { relay } = await helloRelay();
    await relay.acked(relay.event({ kind: "device.dnd", deviceId: phone.id, enabled: true }));
    const delta = await relay.next(isDelta);
    expect(delta.upsertDevices).toEqual([expect.objectContaining({ id: phone.id, dnd: true })]);
    const [user] = await t.db.select({ dnd: users.dnd }).from(users).where(eq(users.id, alice.id));
    expect(user?.dnd).toBe(true);
  });

  it("records alerts: an extension under attack, low storage, a skipped recording", async () => {
    const phone = await createDevice();
    const { relay } = await helloRelay();
    await relay.acked(
      relay.event({
        kind: "security.alert",
        alert: "extension_under_attack",
        deviceId: phone.id,
        failures: 30,
        sources: ["198.51.100.9"],
      }),
    );
    await relay.acked(relay.event({ kind: "storage.status", freeBytes: 10, totalBytes: 1000, low: true }));
    await relay.acked(relay.event({ kind: "storage.status", freeBytes: 900, totalBytes: 1000, low: false }));
    await relay.acked(
      relay.event({
        kind: "recording.skipped",
        recordingId: "rec-skip",
        callId: "c-x",
        deviceId: phone.id,
        reason: "storage_low",
      }),
    );
    const events = await t.db.select().from(systemEvents);
    expect(events.map((e) => [e.type, e.severity]).sort()).toEqual([
      ["recording.skipped", "warning"],
      ["security.extension_under_attack", "warning"],
      ["storage.low", "warning"],
    ]);
    const recs = (await (await request(t, "GET", "/api/recordings", { as: admin })).json()) as {
      items: { status: string; error: string; audioUrl: string | null }[];
    };
    expect(recs.items).toEqual([
      expect.objectContaining({ status: "skipped", error: "storage_low", audioUrl: null }),
    ]);
  });

  it("nacks an invalid event and keeps the link; closes on frames that are not messages", async () => {
    const { relay } = await helloRelay();
    relay.send({
      type: "event",
      seq: 1,
      key: "bad-event-0001",
      at: new Date().toISOString(),
      event: { kind: "call.exploded" },
    });
    expect(await relay.next((m) => m.type === "nack")).toMatchObject({ key: "bad-event-0001" });
    relay.send({ type: "ping", t: 42 });
    expect(await relay.next((m) => m.type === "pong")).toEqual({ type: "pong", t: 42 });

    const cases: [unknown, number][] = [
      ["not json", 1007],
      [JSON.stringify({ type: "drop-tables" }), 1008],
      [" ".repeat(256 * 1024 + 1), 1009],
    ];
    for (const [frame, code] of cases) {
      const peer = await connect();
      peer.send(frame);
      expect((await peer.closed()).code).toBe(code);
    }
    const binary = await connect();
    binary.ws.send(Buffer.from([1, 2, 3]));
    expect(await binary.closed()).toEqual({ code: 1003, reason: "text frames only" });
  });
});

describe("commands and status", () => {
  it("reports the link from the hello, and offline without one", async () => {
    const offline = (await (await request(t, "GET", "/api/relay/status", { as: admin })).json()) as {
      connected: boolean;
    };
    expect(offline.connected).toBe(false);
    const { relay, snapshot } = await helloRelay();
    relay.send({ type: "config-ack", version: snapshot.version });
    // A ping answered means the config-ack before it was handled (frames are handled in order).
    relay.send({ type: "ping", t: 1 });
    await relay.next((m) => m.type === "pong");
    const status = await (await request(t, "GET", "/api/relay/status", { as: admin })).json();
    expect(status).toMatchObject({
      connected: true,
      relayName: "home",
      software: "gosip-relay 0.1.0",
      protocolVersion: 1,
      sip: ["udp/192.0.2.10:5060"],
      configVersion: snapshot.version,
    });
  });

  it("starts recording a live call through the relay; 409 once ended; 503 with no relay", async () => {
    const phone = await createDevice();
    const { relay } = await helloRelay();
    await relay.acked(
      relay.event({
        kind: "call.started",
        ...callBase,
        deviceId: phone.id,
        startedAt: new Date().toISOString(),
      }),
    );
    const [row] = await t.db.select().from(cdrs);
    const path = `/api/cdrs/${row?.id}/recording`;
    const pending = request(t, "POST", path, { as: admin, body: { action: "start" } });
    const command = await relay.next((m) => m.type === "command");
    expect(command).toMatchObject({ command: { kind: "recording.start", callId: callBase.callId } });
    if (command.type !== "command") throw new Error("unreachable");
    relay.send({ type: "command-result", id: command.id, ok: true });
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ cdrId: row?.id, action: "start" });

    // The relay says no: 409 with its reason.
    const refused = request(t, "POST", path, { as: admin, body: { action: "stop" } });
    const stop = await relay.next((m) => m.type === "command");
    if (stop.type !== "command") throw new Error("unreachable");
    relay.send({ type: "command-result", id: stop.id, ok: false, error: "no such call" });
    expect((await refused).status).toBe(409);

    relay.ws.close();
    await relay.closed();
    await new Promise((r) => setTimeout(r, 50));
    const offline = await request(t, "POST", path, { as: admin, body: { action: "start" } });
    expect(offline.status).toBe(503);
    expect(((await offline.json()) as { error: { code: string } }).error.code).toBe("unavailable");

    await t.db
      .update(cdrs)
      .set({ status: "ended" })
      .where(eq(cdrs.id, row?.id ?? ""));
    expect((await request(t, "POST", path, { as: admin, body: { action: "start" } })).status).toBe(409);
  });

  it("lists active bans and lifts one through the relay", async () => {
    const { relay } = await helloRelay();
    const until = new Date(Date.now() + 3600_000).toISOString();
    await relay.acked(
      relay.event({
        kind: "ban.added",
        address: "198.51.100.9",
        until,
        level: 2,
        reason: "auth_failures",
        failures: 40,
      }),
    );
    await relay.acked(
      relay.event({
        kind: "ban.added",
        address: "198.51.100.10",
        until,
        level: 1,
        reason: "scanner",
        failures: 1,
      }),
    );
    await relay.acked(relay.event({ kind: "ban.lifted", address: "198.51.100.10", by: "expired" }));
    const list = (await (await request(t, "GET", "/api/relay/bans", { as: admin })).json()) as {
      items: { address: string; level: number; until: string }[];
      total: number;
    };
    expect(list.total).toBe(1);
    expect(list.items[0]).toMatchObject({
      address: "198.51.100.9",
      level: 2,
      reason: "auth_failures",
      until,
    });

    const lifting = request(t, "DELETE", "/api/relay/bans/198.51.100.9", { as: admin });
    const command = await relay.next((m) => m.type === "command");
    expect(command).toMatchObject({ command: { kind: "ban.lift", address: "198.51.100.9" } });
    if (command.type !== "command") throw new Error("unreachable");
    relay.send({ type: "command-result", id: command.id, ok: true });
    expect((await lifting).status).toBe(204);
    const after = (await (await request(t, "GET", "/api/relay/bans", { as: admin })).json()) as {
      total: number;
    };
    expect(after.total).toBe(0);
    expect((await request(t, "DELETE", "/api/relay/bans/198.51.100.9", { as: admin })).status).toBe(404);
    const user = await createUser(t);
    expect((await request(t, "GET", "/api/relay/bans", { as: await signIn(t, user) })).status).toBe(403);
  });
});
