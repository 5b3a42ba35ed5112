// The relay's sync client against the real Node edge (startNodeEdge, its own libSQL
// file, on 127.0.0.1): devices created in the API reach the relay's directory, relay
// events become registrations and CDRs, events emitted while the edge is down arrive
// exactly once after it restarts, and a revoked token is reported as such.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { Writable } from "node:stream";
import type { RelayEvent } from "@gosip/drizzle";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeLogger } from "../../../../edge/src/platform/node/logger.ts";
import { type NodeEdge, startNodeEdge } from "../../../../edge/src/platform/node/server.ts";
import { captureLog, type TempRelayDb, tempRelayDb } from "./fixtures.ts";
import { type Sync, startSync } from "./index.ts";

const TIMINGS = { minBackoffMs: 50, maxBackoffMs: 500, slowRetryMs: 500, stableAfterMs: 500 };

let dataDir: string;
let edge: NodeEdge;
let port = 0;
let cookie = "";
let tmp: TempRelayDb;
let sync: Sync | undefined;
const relayLog = captureLog();

/** Upgraded sockets of the running edge: `server.close()` does not end them. */
const upgraded = new Set<Duplex>();

async function startEdge(): Promise<NodeEdge> {
  const quiet = new Writable({ write: (_c, _e, done) => done() });
  const started = await startNodeEdge(
    { GOSIP_DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" },
    { logger: createNodeLogger("warn", quiet) },
  );
  started.server.on("upgrade", (_req, socket: Duplex) => {
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
  });
  return started;
}

/** The edge going away as a crashed process does: listener and every socket gone. */
async function stopEdge(): Promise<void> {
  const closed = edge.close(200);
  for (const socket of upgraded) socket.destroy();
  await closed;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${edge.url}${path}`, {
    method,
    headers: { "content-type": "application/json", "x-gosip-csrf": "1", cookie },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface CreatedDevice {
  id: string;
  sipUsername: string;
  extension: string;
}

async function createDevice(name: string): Promise<CreatedDevice> {
  const res = await api<CreatedDevice>("POST", "/api/devices", { name });
  expect(res.status).toBe(201);
  return res.json;
}

async function relayToken(name: string): Promise<{ id: string; token: string }> {
  const res = await api<{ id: string; token: string }>("POST", "/api/relay/tokens", { name });
  expect(res.status).toBe(201);
  return res.json;
}

function callEnded(i: number, deviceId: string): RelayEvent {
  const startedAt = new Date(Date.UTC(2026, 0, 15, 12, 0, i)).toISOString();
  return {
    kind: "call.ended",
    callId: `sync-int-${i}@relay`,
    direction: "internal",
    from: "101",
    to: "102",
    deviceId,
    twilioCallSid: null,
    startedAt,
    answeredAt: startedAt,
    endedAt: new Date(Date.UTC(2026, 0, 15, 12, 1, i)).toISOString(),
    disposition: "answered",
    sipStatus: 200,
    durationSeconds: 60,
    hangupBy: "caller",
    rtp: { toCaller: 3000, toCallee: 3000 },
    ladder: [{ t: 0, leg: "a", dir: "in", label: "INVITE" }],
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "gosip-sync-edge-"));
  edge = await startEdge();
  port = edge.port;
  const setup = await fetch(`${edge.url}/api/setup`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-gosip-csrf": "1" },
    body: JSON.stringify({ email: "owner@example.com", password: "owner-password" }),
  });
  expect(setup.status).toBe(201);
  cookie = (setup.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
  tmp = await tempRelayDb();
});
afterAll(async () => {
  await sync?.close();
  await stopEdge();
  await tmp.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("relay sync against the real Node edge", () => {
  let desk: CreatedDevice;

  it("gets the devices in the snapshot, and a device created in the API within a second", async () => {
    desk = await createDevice("Desk");
    const { token } = await relayToken("home relay");
    sync = await startSync({
      db: tmp.db,
      log: relayLog.log,
      edgeUrl: edge.url,
      relayToken: token,
      software: "gosip-relay sync-int",
      hostports: ["udp/127.0.0.1:5060"],
      timings: TIMINGS,
    });
    const s = sync;
    await s.link?.whenConnected();
    await until("the snapshot", 5_000, () => s.directory.byId(desk.id));
    expect(s.directory.bySipUsername(desk.sipUsername)?.extension).toBe(desk.extension);
    expect(s.directory.settings()?.realm).toBeTruthy();

    const t0 = Date.now();
    const soft = await createDevice("Softphone");
    await until("the delta", 5_000, () => s.directory.byId(soft.id));
    expect(Date.now() - t0).toBeLessThan(1_000);

    expect((await api("DELETE", `/api/devices/${soft.id}`)).status).toBe(204);
    await until("the removal", 5_000, () => (s.directory.byId(soft.id) ? undefined : true));
    // The edge knows the version the relay holds.
    const status = await api<{ connected: boolean; configVersion: number | null }>(
      "GET",
      "/api/relay/status",
    );
    expect(status.json.connected).toBe(true);
    expect(status.json.configVersion).toBe(s.directory.configVersion());
  });

  it("a registration event shows on the device in the API", async () => {
    const s = sync;
    if (!s) throw new Error("no sync");
    await s.events.emit({
      kind: "registration.up",
      deviceId: desk.id,
      contact: {
        contactUri: "sip:desk@192.168.1.20:5062",
        sourceAddress: "192.168.1.20",
        sourcePort: 5062,
        transport: "udp",
        userAgent: "Grandstream GXP1760W",
        instanceId: null,
        callId: "reg-1",
        cseq: 1,
        expiresAt: new Date(Date.now() + 120_000).toISOString(),
        lastSeenAt: new Date().toISOString(),
      },
    });
    const regs = await until("the registration", 5_000, async () => {
      const d = await api<{ registrations: { userAgent: string | null; online: boolean }[] }>(
        "GET",
        `/api/devices/${desk.id}`,
      );
      return d.json.registrations.length > 0 ? d.json.registrations : undefined;
    });
    expect(regs[0]).toMatchObject({ userAgent: "Grandstream GXP1760W", online: true });
  });

  it("events emitted while the edge is down arrive once it is back, each CDR exactly once", async () => {
    const s = sync;
    if (!s) throw new Error("no sync");
    await stopEdge();
    await until("the link down", 5_000, () => (s.status().connected ? undefined : true));
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.events.emit(callEnded(i, desk.id))));
    expect(s.events.depth()).toBe(20);

    edge = await startEdge();
    expect(edge.port).toBe(port);
    await s.link?.whenConnected();
    await until("the outbox drained", 10_000, () => (s.events.depth() === 0 ? true : undefined));
    const page = await api<{ items: { status: string; disposition: string | null }[]; total: number }>(
      "GET",
      "/api/cdrs?limit=100",
    );
    const ended = page.json.items.filter((c) => c.status === "ended");
    expect(ended).toHaveLength(20);
    expect(ended.every((c) => c.disposition === "answered")).toBe(true);

    // The link cut mid-stream (every socket destroyed while 300 events are going out).
    const burst = Promise.all(
      Array.from({ length: 300 }, (_, i) => s.events.emit(callEnded(100 + i, desk.id))),
    );
    await until("some of the burst acked", 10_000, () => (s.events.stats().acked > 60 ? true : undefined));
    for (const socket of upgraded) socket.destroy();
    await burst;
    await until("the outbox drained", 15_000, () => (s.events.depth() === 0 ? true : undefined));
    expect(s.status().reconnects).toBeGreaterThanOrEqual(2);
    const all = await api<{ total: number }>("GET", "/api/cdrs?limit=1");
    expect(all.json.total).toBe(320);
  });

  it("a token revoked in the API disconnects the relay, which says so and stays out", async () => {
    const s = sync;
    if (!s) throw new Error("no sync");
    const tokens = await api<{ items: { id: string; name: string }[] }>("GET", "/api/relay/tokens");
    const mine = tokens.json.items.find((t) => t.name === "home relay");
    expect(mine).toBeDefined();
    expect((await api("DELETE", `/api/relay/tokens/${mine?.id}`)).status).toBe(204);
    await until("the link down", 5_000, () => (s.status().connected ? undefined : true));
    await until("the log line", 5_000, () =>
      /relay token rejected/.test(relayLog.text()) ? true : undefined,
    );
    // Retries are refused at the upgrade (401) from now on.
    await new Promise((r) => setTimeout(r, 1_200));
    expect(s.status().connected).toBe(false);
    expect(s.status().lastError).toMatch(/token rejected/);
  });
});
