/**
 * The outbox on Workers, inside workerd: a due job runs from the Worker's Cron
 * Trigger (`scheduled`), which then arms the RelayLink Durable Object's alarm for
 * the next due job; the alarm runs jobs between cron ticks (after a wake-up).
 * The jobs are real Gotify pushes, received by the loopback HTTP recorder.
 */

import {
  createExecutionContext,
  createScheduledController,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { type Client, createClient } from "@libsql/client/web";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import worker from "../../edge/src/platform/workers/index.ts";
import type { RecordedRequest } from "./http-recorder.ts";

let db: Client;
beforeAll(async () => {
  db = createClient({ url: inject("hranaUrl"), authToken: inject("hranaToken") });
  // Any API request migrates the database (once per isolate).
  expect(
    (await exports.default.fetch(new Request("https://gosip.example.com/api/system/health"))).status,
  ).toBeLessThan(600);
  const gotify = {
    v: 1,
    enabled: true,
    url: `${inject("recorderUrl")}/gotify`,
    appToken: "workers-test-token",
  };
  await db.execute({
    sql: "INSERT INTO settings (key, value) VALUES ('gotify', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    args: [JSON.stringify(gotify)],
  });
});
afterAll(() => {
  db.close();
});

async function enqueuePush(title: string, dueInMs = 0): Promise<string> {
  return (await enqueuePushAt(title, Date.now() + dueInMs)).id;
}

async function enqueuePushAt(title: string, due: number): Promise<{ id: string; due: number }> {
  const id = crypto.randomUUID();
  const payload = { v: 1, type: "sms", title, message: `message for ${title}`, priority: 5 };
  await db.execute({
    sql: `INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, next_attempt_at, idempotency_key, created_at, updated_at)
          VALUES (?, 'gotify.push', ?, 'pending', 0, 3, ?, ?, ?, ?)`,
    args: [id, JSON.stringify(payload), due, `workers-test:${id}`, Date.now(), Date.now()],
  });
  return { id, due };
}

async function statusOf(id: string): Promise<string> {
  const rs = await db.execute({ sql: "SELECT status FROM jobs WHERE id = ?", args: [id] });
  return String(rs.rows[0]?.status);
}

async function pushesReceived(): Promise<RecordedRequest[]> {
  const res = await fetch(`${inject("recorderUrl")}/__requests`);
  return ((await res.json()) as RecordedRequest[]).filter((r) => r.path === "/gotify/message");
}

const relayLink = () => env.RELAY_LINK.get(env.RELAY_LINK.idFromName("installation"));

describe("outbox on Workers", () => {
  it("the Cron Trigger runs a due job (a real push) and arms the alarm for the next one", async () => {
    const now = await enqueuePush("cron push");
    const later = await enqueuePushAt("later push", Date.now() + 45_000);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    expect(await statusOf(now)).toBe("succeeded");
    expect(await statusOf(later.id)).toBe("pending");
    const push = (await pushesReceived()).find((r) => (r.body as { title?: string }).title === "cron push");
    expect(push?.headers["x-gotify-key"]).toBe("workers-test-token");
    expect(push?.body).toMatchObject({ message: "message for cron push", priority: 5 });
    // The next due job is 45 s away: the alarm is set for it (or earlier), not left to the next cron tick.
    const alarm = await runInDurableObject(relayLink(), (_obj, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(later.due);
  });

  it("a wake-up makes the Durable Object's alarm run work enqueued since, without waiting for cron", async () => {
    const id = await enqueuePush("alarm push");
    await relayLink().wakeJobs();
    await vi.waitFor(async () => expect(await statusOf(id)).toBe("succeeded"), {
      timeout: 20_000,
      interval: 100,
    });
    expect((await pushesReceived()).some((r) => (r.body as { title?: string }).title === "alarm push")).toBe(
      true,
    );
  });

  it("the alarm armed for the next due job runs it when it falls due (a retry within the minute)", async () => {
    const soon = await enqueuePushAt("retry push", Date.now() + 2_000);
    const at = await relayLink().armJobAlarm();
    expect(at).not.toBeNull();
    expect(at ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(soon.due);
    await vi.waitFor(async () => expect(await statusOf(soon.id)).toBe("succeeded"), {
      timeout: 30_000,
      interval: 200,
    });
  });
});
