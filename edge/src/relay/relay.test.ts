// Relay tokens and the relay WebSocket, over a real Node HTTP server on an
// ephemeral port with @hono/node-ws and a real `ws` client: a socket opens only
// with a live token, and the token is shown once and stored only as a hash.
import type { AddressInfo } from "node:net";
import { relayTokens } from "@gosip/drizzle";
import { serve } from "@hono/node-server";
import { createNodeWebSocket } from "@hono/node-ws";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  type ErrorJson,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
  useAdminEdge,
} from "../test-support.ts";
import { attachNodeRelayLink, CLOSE_TOKEN_REVOKED } from "./node-link.ts";
import { relayTokenHash } from "./tokens.ts";

let t: TestEdge;
let admin: TestSession;
let server: ReturnType<typeof serve>;
let baseWs: string;

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
  const { port } = server.address() as AddressInfo;
  baseWs = `ws://127.0.0.1:${port}/api/relay/connect`;
});

afterEach(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
});

interface TokenJson {
  id: string;
  name: string;
  token?: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

async function createToken(name = "home relay"): Promise<TokenJson> {
  const res = await request(t, "POST", "/api/relay/tokens", { as: admin, body: { name } });
  expect(res.status).toBe(201);
  return (await res.json()) as TokenJson;
}

type Outcome = { kind: "open"; ws: WebSocket } | { kind: "rejected"; status: number };

/** Connects like the relay does; resolves with the open socket or the HTTP status of the refusal. */
function connect(token?: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(baseWs, {
      headers: token === undefined ? headers : { authorization: `Bearer ${token}`, ...headers },
    });
    ws.once("open", () => resolve({ kind: "open", ws }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ kind: "rejected", status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once("error", (err) => reject(err));
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once("message", (data) => resolve(String(data))));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })),
  );
}

describe("relay tokens", () => {
  it("shows the token once, stores only its SHA-256, lists without it", async () => {
    const created = await createToken();
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [row] = await t.db.select().from(relayTokens).where(eq(relayTokens.id, created.id));
    expect(row?.tokenHash).toBe(relayTokenHash(created.token ?? ""));
    expect(row?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(created.token);

    const list = await request(t, "GET", "/api/relay/tokens", { as: admin });
    expect(list.status).toBe(200);
    const text = await list.text();
    expect(text).not.toContain(created.token ?? "");
    expect(text).not.toMatch(/tokenHash|"token"/);
    const page = JSON.parse(text) as { items: TokenJson[]; total: number; limit: number };
    expect(page.total).toBe(1);
    expect(page.limit).toBe(20);
    expect(page.items[0]).toMatchObject({
      id: created.id,
      name: "home relay",
      revokedAt: null,
      lastUsedAt: null,
    });
  });

  it("rejects a bad body; 404 when revoking an unknown token", async () => {
    const bad = await request(t, "POST", "/api/relay/tokens", { as: admin, body: { name: "" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorJson).error.code).toBe("validation_failed");
    const missing = await request(t, "DELETE", `/api/relay/tokens/${crypto.randomUUID()}`, { as: admin });
    expect(missing.status).toBe(404);
  });

  it("is admin only: 403 for a user, 401 without a session", async () => {
    const user = (await loginAs(t, "user")).session;
    const token = await createToken();
    for (const [method, path, body] of [
      ["GET", "/api/relay/tokens", undefined],
      ["POST", "/api/relay/tokens", { name: "x" }],
      ["DELETE", `/api/relay/tokens/${token.id}`, undefined],
    ] as const) {
      expect((await request(t, method, path, { as: user, body })).status, `${method} ${path}`).toBe(403);
      expect((await request(t, method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
    const [row] = await t.db.select().from(relayTokens).where(eq(relayTokens.id, token.id));
    expect(row?.revokedAt).toBeNull();
  });
});

describe("GET /api/relay/connect", () => {
  it("refuses without a token, with a wrong or malformed token (401, no upgrade)", async () => {
    await createToken();
    expect(await connect()).toEqual({ kind: "rejected", status: 401 });
    expect(await connect("A".repeat(43))).toEqual({ kind: "rejected", status: 401 });
    expect(await connect("short")).toEqual({ kind: "rejected", status: 401 });
    expect(await connect(undefined, { authorization: "Basic dXNlcjpwYXNz" })).toEqual({
      kind: "rejected",
      status: 401,
    });
  });

  it("opens with a valid token, answers hello with hello-ack, records lastUsedAt", async () => {
    const token = await createToken();
    const outcome = await connect(token.token);
    if (outcome.kind !== "open") throw new Error(`expected open, got ${outcome.status}`);
    const reply = nextMessage(outcome.ws);
    outcome.ws.send(JSON.stringify({ type: "hello", v: 1 }));
    expect(JSON.parse(await reply)).toMatchObject({ type: "hello-ack", v: 1, relayId: token.id });
    const [row] = await t.db.select().from(relayTokens).where(eq(relayTokens.id, token.id));
    expect(row?.lastUsedAt).toBeInstanceOf(Date);

    // A bad message closes the socket cleanly with a reason.
    const done = closed(outcome.ws);
    outcome.ws.send("not json");
    expect(await done).toEqual({ code: 1007, reason: "invalid JSON" });
  });

  it("closes on an unsupported message type", async () => {
    const token = await createToken();
    const outcome = await connect(token.token);
    if (outcome.kind !== "open") throw new Error("expected open");
    const done = closed(outcome.ws);
    outcome.ws.send(JSON.stringify({ type: "drop-tables" }));
    const { code, reason } = await done;
    expect(code).toBe(1008);
    expect(reason).toMatch(/^invalid message: type: /);
  });

  it("refuses a revoked token, and revoking disconnects a live relay", async () => {
    const token = await createToken();
    const outcome = await connect(token.token);
    if (outcome.kind !== "open") throw new Error("expected open");
    const done = closed(outcome.ws);
    const revoke = await request(t, "DELETE", `/api/relay/tokens/${token.id}`, { as: admin });
    expect(revoke.status).toBe(204);
    expect((await done).code).toBe(CLOSE_TOKEN_REVOKED);
    expect(await connect(token.token)).toEqual({ kind: "rejected", status: 401 });
    const list = (await (await request(t, "GET", "/api/relay/tokens", { as: admin })).json()) as {
      items: TokenJson[];
    };
    expect(list.items[0]?.revokedAt).not.toBeNull();
  });

  it("keeps one live link: a new connection replaces the older socket (4000)", async () => {
    const first = await createToken("old relay");
    const second = await createToken("new relay");
    const a = await connect(first.token);
    if (a.kind !== "open") throw new Error("expected open");
    const aClosed = closed(a.ws);
    const b = await connect(second.token);
    if (b.kind !== "open") throw new Error("expected open");
    expect(await aClosed).toEqual({ code: 4000, reason: "replaced by a newer connection" });
    const reply = nextMessage(b.ws);
    b.ws.send(JSON.stringify({ type: "hello", v: 1 }));
    expect(JSON.parse(await reply)).toMatchObject({ type: "hello-ack", relayId: second.id });
    b.ws.close();
  });

  it("answers a plain GET with a valid token 426 and without one 401 (envelope)", async () => {
    const token = await createToken();
    const anon = await request(t, "GET", "/api/relay/connect");
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as ErrorJson).error.code).toBe("unauthorized");
    const plain = await request(t, "GET", "/api/relay/connect", {
      headers: { authorization: `Bearer ${token.token}` },
    });
    expect(plain.status).toBe(426);
  });
});
