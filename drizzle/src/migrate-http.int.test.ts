// migrate() and createDb() through @libsql/client/web over Hrana-over-HTTP, the path
// the Worker takes to Turso (served here by the test Hrana server on loopback).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client/web";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HranaServer, startHranaServer } from "../../tests/hrana/server.ts";
import { createDb } from "./db.ts";
import { MIGRATIONS_TABLE, migrate } from "./migrate.ts";
import { bundledMigrations } from "./migrations.generated.ts";
import { sessions, users } from "./schema/index.ts";

let dir: string;
let server: HranaServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-drizzle-http-"));
  server = await startHranaServer({ dbPath: join(dir, "remote.db") });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe("migrate over HTTP (@libsql/client/web)", () => {
  it("applies the schema once, then is a no-op, and the database enforces cascades", async () => {
    const client = createClient({ url: server.url });
    try {
      expect((await migrate(client)).applied).toEqual(bundledMigrations.map((m) => m.tag));
      const started = performance.now();
      expect((await migrate(client)).applied).toEqual([]);
      const elapsed = performance.now() - started;
      expect(elapsed).toBeLessThan(100);

      const db = createDb(client);
      const [user] = await db
        .insert(users)
        .values({ email: "ann@example.com", name: "Ann", passwordHash: "x" })
        .returning();
      if (!user) throw new Error("no user");
      await db
        .insert(sessions)
        .values({ id: "f".repeat(64), userId: user.id, expiresAt: new Date(Date.now() + 1000) });
      await db.delete(users).where(eq(users.id, user.id));
      expect(await db.select().from(sessions)).toEqual([]);

      const recorded = await client.execute(`SELECT count(*) AS n FROM ${MIGRATIONS_TABLE}`);
      expect(Number(recorded.rows[0]?.n)).toBe(bundledMigrations.length);
    } finally {
      client.close();
    }
  });

  it("two isolates starting at once both end up on the current schema", async () => {
    const fresh = await startHranaServer({ dbPath: join(dir, "race.db") });
    const a = createClient({ url: fresh.url });
    const b = createClient({ url: fresh.url });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      expect([...ra.applied, ...rb.applied].sort()).toEqual(bundledMigrations.map((m) => m.tag).sort());
      const recorded = await a.execute(`SELECT count(*) AS n FROM ${MIGRATIONS_TABLE}`);
      expect(Number(recorded.rows[0]?.n)).toBe(bundledMigrations.length);
    } finally {
      a.close();
      b.close();
      await fresh.close();
    }
  });
});
