// The real Node server in-process (startNodeEdge on PORT=0): the client IP is the
// socket's, whatever forwarding headers say; pino redacts secrets.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { sessions } from "@gosip/drizzle";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createNodeLogger } from "./logger.ts";
import { type NodeEdge, startNodeEdge } from "./server.ts";

let dataDir: string;
let edge: NodeEdge;
/** The admin's session cookie from setup (the IP is locked out afterwards). */
let adminCookie = "";
const lines: string[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "gosip-edge-node-"));
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  edge = await startNodeEdge(
    { GOSIP_DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "debug" },
    { logger: createNodeLogger("debug", sink) },
  );
});
afterAll(async () => {
  await edge.close();
  await rm(dataDir, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${edge.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-gosip-csrf": "1", ...headers },
    body: JSON.stringify(body),
  });

describe("Node edge over real sockets", () => {
  it("counts failed logins against the socket address, ignoring X-Forwarded-For and CF-Connecting-IP", async () => {
    const setup = await post("/api/setup", { email: "owner@example.com", password: "owner-password" });
    expect(setup.status).toBe(201);
    adminCookie = (setup.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";

    for (let i = 0; i < 5; i++) {
      const res = await post(
        "/api/auth/login",
        { email: `victim${i}@example.com`, password: "wrong" },
        { "x-forwarded-for": `10.1.2.${i}`, "cf-connecting-ip": `10.3.4.${i}` },
      );
      expect(res.status).toBe(401);
    }
    const blocked = await post(
      "/api/auth/login",
      { email: "owner@example.com", password: "owner-password" },
      { "x-forwarded-for": "10.9.9.9", "cf-connecting-ip": "10.9.9.8" },
    );
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(890);

    // The setup session was recorded with the loopback socket address.
    const rows = await edge.deps.db.select({ ip: sessions.ip }).from(sessions);
    expect(rows.map((r) => r.ip)).toEqual(["127.0.0.1"]);
  });

  it("upgrades an authenticated relay WebSocket on the same server", async () => {
    const created = await post("/api/relay/tokens", { name: "home relay" }, { cookie: adminCookie });
    expect(created.status).toBe(201);
    const { token } = (await created.json()) as { token: string };

    const ws = new WebSocket(`${edge.url.replace("http", "ws")}/api/relay/connect`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once("open", () => ws.send(JSON.stringify({ type: "hello", v: 1 })));
      ws.once("message", (data: Buffer) => resolve(data.toString()));
      ws.once("error", reject);
    });
    ws.close();
    expect(JSON.parse(reply)).toMatchObject({ type: "hello-ack" });

    const refused = new WebSocket(`${edge.url.replace("http", "ws")}/api/relay/connect`, {
      headers: { authorization: "Bearer not-a-token" },
    });
    const status = await new Promise<number>((resolve) => {
      refused.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      refused.once("open", () => resolve(101));
      refused.once("error", () => resolve(-1));
    });
    expect(status).toBe(401);
  });

  it("runs every statement of the file database in WAL with synchronous=NORMAL, even under concurrency", async () => {
    // Concurrent statements used to open extra pooled connections that missed the PRAGMAs (FULL: fsync per write).
    const modes = await Promise.all(
      Array.from({ length: 30 }, () => edge.deps.db.all<{ synchronous: number }>(sql`PRAGMA synchronous`)),
    );
    expect(modes.map((rows) => rows[0]?.synchronous)).toEqual(Array(30).fill(1));
    const [journal] = await edge.deps.db.all<{ journal_mode: string }>(sql`PRAGMA journal_mode`);
    expect(journal?.journal_mode).toBe("wal");
  });

  it("redacts secrets that reach the logger", () => {
    edge.deps.logger.info(
      { password: "hunter2-secret", nested: { token: "tok-123", authToken: "abc" } },
      "probe",
    );
    const line = lines.find((l) => l.includes('"probe"')) ?? "";
    expect(line).toContain("[redacted]");
    expect(line).not.toContain("hunter2-secret");
    expect(line).not.toContain("tok-123");
  });
});
