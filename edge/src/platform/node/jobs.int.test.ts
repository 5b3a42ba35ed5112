// The real Node server runs the outbox by itself: a notification enqueued while
// the server runs reaches a real SMTP server on loopback without anyone calling
// runDueJobs (the timer's wake).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { jobs } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { notify } from "../../notifications/notify.ts";
import { startTestSmtpServer, type TestSmtpServer } from "../../notifications/test-smtp.ts";
import { writeSetting } from "../../settings/store.ts";
import { createNodeLogger } from "./logger.ts";
import { type NodeEdge, startNodeEdge } from "./server.ts";

let dataDir: string;
let edge: NodeEdge;
let smtp: TestSmtpServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "gosip-edge-jobs-"));
  smtp = await startTestSmtpServer();
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  edge = await startNodeEdge(
    { GOSIP_DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn" },
    { logger: createNodeLogger("warn", sink) },
  );
});
afterAll(async () => {
  await edge.close();
  await smtp.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("the Node edge's outbox timer", () => {
  it("delivers an email enqueued while the server runs, over real SMTP", async () => {
    const setup = await fetch(`${edge.url}/api/setup`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-gosip-csrf": "1" },
      body: JSON.stringify({ email: "owner@example.com", password: "owner-password" }),
    });
    expect(setup.status).toBe(201);
    await writeSetting(edge.deps, "email", {
      v: 1,
      provider: "smtp",
      from: "pbx@example.test",
      smtp: { host: "127.0.0.1", port: smtp.port, secure: false },
    });
    expect(edge.deps.jobs).toBeDefined();
    await notify(edge.deps, {
      type: "device_offline",
      subject: "Desk phone is offline",
      text: "The desk phone stopped answering.",
      idempotencyKey: "device_offline:desk:1",
    });
    await vi.waitFor(() => expect(smtp.received).toHaveLength(1), { timeout: 15_000, interval: 50 });
    expect(smtp.received[0]?.to).toEqual(["owner@example.com"]);
    expect(smtp.received[0]?.mail.subject).toBe("Desk phone is offline");
    await vi.waitFor(async () => {
      const [row] = await edge.deps.db.select().from(jobs).where(eq(jobs.kind, "email.send"));
      expect(row?.status).toBe("succeeded");
    });
  });
});
