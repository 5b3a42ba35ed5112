/**
 * The RelayLink Durable Object inside workerd: it accepts only upgrades the Worker
 * marked as authenticated, answers the relay's hello with hello-ack and a config
 * snapshot read from the database (over Hrana, the DO opens its own handle), stores
 * events exactly once, takes pushes and commands by RPC, keeps one live link per
 * installation, and closes cleanly when the relay goes away without a close code.
 */
import { env } from "cloudflare:workers";
import { type EdgeMessage, parseEdgeMessage } from "@gosip/drizzle";
import { type Client, createClient } from "@libsql/client/web";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

let db: Client;
beforeAll(() => {
  db = createClient({ url: inject("hranaUrl"), authToken: inject("hranaToken") });
});
afterAll(() => {
  db.close();
});

/** Every frame the edge sends, validated with the shared schema, in arrival order. */
function recorder(ws: WebSocket): {
  next(pick?: (m: EdgeMessage) => boolean, ms?: number): Promise<EdgeMessage>;
} {
  const frames: EdgeMessage[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener("message", (e) => {
    const parsed = parseEdgeMessage(String(e.data));
    if (!parsed.ok) throw new Error(`invalid frame from the edge: ${parsed.reason}`);
    frames.push(parsed.message);
    for (const w of waiters.splice(0)) w();
  });
  return {
    async next(pick = () => true, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = frames.findIndex(pick);
        if (i >= 0) return frames.splice(i, 1)[0] as EdgeMessage;
        if (Date.now() > deadline) throw new Error("no matching frame");
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}

function connect(name: string, headers: Record<string, string>): Promise<Response> {
  const stub = env.RELAY_LINK.get(env.RELAY_LINK.idFromName(name));
  return stub.fetch("https://relay-link.internal/connect", { headers });
}

async function open(name: string, relayId: string): Promise<WebSocket> {
  const res = await connect(name, { Upgrade: "websocket", "X-GoSIP-Relay-Id": relayId });
  expect(res.status).toBe(101);
  const ws = res.webSocket;
  if (!ws) throw new Error("no WebSocket in the 101 response");
  ws.accept();
  return ws;
}

function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => {
    ws.addEventListener("message", (e) => resolve(JSON.parse(String(e.data))), { once: true });
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }), { once: true });
  });
}

describe("RelayLink durable object", () => {
  it("refuses plain requests and upgrades without a checked relay token", async () => {
    expect((await connect("refuse", {})).status).toBe(426);
    const res = await connect("refuse", { Upgrade: "websocket" });
    expect(res.status).toBe(401);
    expect(res.webSocket).toBeNull();
  });

  it("answers hello with hello-ack naming the relay", async () => {
    const ws = await open("hello", "relay-1");
    const ack = nextMessage(ws);
    ws.send(JSON.stringify({ type: "hello", v: 1 }));
    expect(await ack).toMatchObject({ type: "hello-ack", v: 1, relayId: "relay-1" });
    ws.close(1000, "done");
  });

  it("closes on messages the protocol does not know, as the Node link does", async () => {
    const notJson = await open("bad-json", "relay-1");
    const closedNotJson = closed(notJson);
    notJson.send("not json");
    expect(await closedNotJson).toEqual({ code: 1007, reason: "invalid JSON" });

    const unknown = await open("bad-type", "relay-1");
    const closedUnknown = closed(unknown);
    unknown.send(JSON.stringify({ type: "register", aor: "sip:101@pbx" }));
    const { code, reason } = await closedUnknown;
    expect(code).toBe(1008);
    expect(reason).toMatch(/^invalid message: type: /);
  });

  it("answers hello with hello-ack and a config snapshot from the database", async () => {
    const ws = await open("sync-hello", "relay-sync");
    const relay = recorder(ws);
    ws.send(
      JSON.stringify({ type: "hello", v: 1, software: "gosip-relay test", sip: ["udp/127.0.0.1:5060"] }),
    );
    expect(await relay.next()).toMatchObject({ type: "hello-ack", v: 1, relayId: "relay-sync" });
    const snapshot = await relay.next();
    if (snapshot.type !== "config" || !snapshot.full)
      throw new Error(`expected a snapshot, got ${snapshot.type}`);
    expect(snapshot.settings).toMatchObject({ realm: expect.any(String), defaultCountry: "US" });
    expect(Array.isArray(snapshot.devices)).toBe(true);

    const stub = env.RELAY_LINK.get(env.RELAY_LINK.idFromName("sync-hello"));
    expect(await stub.status()).toMatchObject({
      connected: true,
      relayId: "relay-sync",
      software: "gosip-relay test",
      sip: ["udp/127.0.0.1:5060"],
    });
    ws.close(1000, "done");
  });

  it("stores an event once through the Hrana database: the same key twice, one row, two acks", async () => {
    const ws = await open("sync-events", "relay-sync");
    const relay = recorder(ws);
    ws.send(JSON.stringify({ type: "hello", v: 1 }));
    await relay.next((m) => m.type === "hello-ack");
    await relay.next((m) => m.type === "config");
    const address = `198.51.100.${Math.floor(Math.random() * 200) + 1}`;
    const key = `workers-ban-${crypto.randomUUID()}`;
    const frame = JSON.stringify({
      type: "event",
      seq: 1,
      key,
      at: new Date().toISOString(),
      event: {
        kind: "ban.added",
        address,
        until: new Date(Date.now() + 3_600_000).toISOString(),
        level: 1,
        reason: "auth_failures",
        failures: 12,
      },
    });
    ws.send(frame);
    expect(await relay.next()).toEqual({ type: "ack", keys: [key] });
    ws.send(frame);
    expect(await relay.next()).toEqual({ type: "ack", keys: [key] });
    const bans = await db.execute({
      sql: "SELECT level, failures FROM sip_bans WHERE address = ?",
      args: [address],
    });
    expect(bans.rows.map((r) => [Number(r.level), Number(r.failures)])).toEqual([[1, 12]]);
    const marks = await db.execute({
      sql: "SELECT count(*) AS n FROM processed_webhooks WHERE kind = 'relay.event' AND sid = ?",
      args: [key],
    });
    expect(Number(marks.rows[0]?.n)).toBe(1);
    ws.close(1000, "done");
  });

  it("pushes by RPC: a delta reaches the relay, a command waits for its result", async () => {
    const name = "sync-rpc";
    const stub = env.RELAY_LINK.get(env.RELAY_LINK.idFromName(name));
    expect(await stub.send({ type: "pong", t: 1 })).toBe(false);
    expect(await stub.command({ kind: "ban.lift", address: "192.0.2.99" }, 1000)).toMatchObject({
      ok: false,
      reason: "offline",
    });

    const ws = await open(name, "relay-sync");
    const relay = recorder(ws);
    ws.send(JSON.stringify({ type: "hello", v: 1 }));
    await relay.next((m) => m.type === "hello-ack");
    await relay.next((m) => m.type === "config");
    const delta = {
      type: "config" as const,
      full: false as const,
      version: 7,
      upsertDevices: [],
      removeDevices: ["gone"],
    };
    expect(await stub.send(delta)).toBe(true);
    expect(await relay.next()).toEqual(delta);

    const outcome = stub.command({ kind: "ban.lift", address: "192.0.2.99" }, 5000);
    const command = await relay.next((m) => m.type === "command");
    if (command.type !== "command") throw new Error("unreachable");
    expect(command.command).toEqual({ kind: "ban.lift", address: "192.0.2.99" });
    ws.send(JSON.stringify({ type: "command-result", id: command.id, ok: true }));
    expect(await outcome).toEqual({ ok: true });
    ws.close(1000, "done");
  });

  it("disconnects only the sockets of a revoked relay token (RPC from the Worker)", async () => {
    const name = "revoke";
    const ws = await open(name, "relay-9");
    const wsClosed = closed(ws);
    const stub = env.RELAY_LINK.get(env.RELAY_LINK.idFromName(name));
    expect(await stub.disconnect("some-other-token")).toBe(0);
    expect(await stub.disconnect("relay-9")).toBe(1);
    expect(await wsClosed).toEqual({ code: 4001, reason: "relay token revoked" });
  });

  it("replaces an older link when the relay reconnects", async () => {
    const first = await open("reconnect", "relay-1");
    const firstClosed = closed(first);
    const second = await open("reconnect", "relay-1");
    expect(await firstClosed).toMatchObject({ code: 4000 });

    const ack = nextMessage(second);
    second.send(JSON.stringify({ type: "hello", v: 1 }));
    expect(await ack).toMatchObject({ type: "hello-ack" });
    second.close(1000, "done");
  });

  it("closes with 1000 when the relay closes without a status code (1005)", async () => {
    const ws = await open("no-code", "relay-1");
    const done = closed(ws);
    ws.close();
    expect((await done).code).toBe(1000);
  });
});
