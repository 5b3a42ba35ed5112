// Health endpoint: per-component checks, 200 when working, 503 when the database is gone.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestEdge, request, type TestEdge } from "../test-support.ts";
import type { Health } from "./health.ts";

let t: TestEdge;
beforeEach(async () => {
  t = await createTestEdge();
});
afterEach(async () => {
  await t.close();
});

describe("GET /api/system/health", () => {
  it("answers 200 without sign-in, with database, migrations and relay components", async () => {
    const res = await request(t, "GET", "/api/system/health");
    expect(res.status).toBe(200);
    const health = (await res.json()) as Health;
    expect(health.components.database.status).toBe("ok");
    expect(health.components.database.latencyMs).toBeGreaterThanOrEqual(0);
    expect(health.components.migrations).toMatchObject({ status: "ok", required: true });
    expect(health.components.migrations.detail).toMatch(/^(\d+)\/\1 applied$/);
    expect(health.components.relay).toEqual({ status: "not_connected", required: false });
    // Relay link not there yet: working, but degraded.
    expect(health.status).toBe("degraded");
    expect(health.runtime).toBe("node");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("answers 503 down when the database is unreachable", async () => {
    t.client.close();
    const res = await request(t, "GET", "/api/system/health");
    expect(res.status).toBe(503);
    const health = (await res.json()) as Health;
    expect(health.status).toBe("down");
    expect(health.components.database).toEqual({
      status: "failing",
      required: true,
      detail: "database unreachable",
    });
  });

  it("reports unapplied migrations as down", async () => {
    await t.client.execute("DELETE FROM __drizzle_migrations");
    const res = await request(t, "GET", "/api/system/health");
    expect(res.status).toBe(503);
    expect(((await res.json()) as Health).components.migrations.status).toBe("failing");
  });
});
