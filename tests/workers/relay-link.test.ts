/**
 * The RelayLink Durable Object inside workerd: it accepts only upgrades the Worker
 * marked as authenticated, answers the relay's hello, keeps one live link per
 * installation, and closes cleanly when the relay goes away without a close code.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

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
    expect(await closedUnknown).toEqual({ code: 1008, reason: "unsupported message type" });
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
