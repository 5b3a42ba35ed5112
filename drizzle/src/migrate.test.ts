// Migrations: applied to an empty database, re-runs are no-ops, concurrent starts are
// safe, failures roll back, and the bundle/snapshot match the schema in the code.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { generateSQLiteDrizzleJson, generateSQLiteMigration } from "drizzle-kit/api";
import { afterEach, describe, expect, it } from "vitest";
import { MIGRATIONS_TABLE, MigrationError, migrate } from "./migrate.ts";
import type { BundledMigration } from "./migration-types.ts";
import { bundledMigrations } from "./migrations.generated.ts";
import { migrationsFolder, readMigrationsFolder } from "./migrations-source.ts";
import * as schema from "./schema/index.ts";
import { createTempDb, type TempDb } from "./test-support/temp-db.ts";

let temp: TempDb | undefined;
afterEach(async () => {
  await temp?.close();
  temp = undefined;
});

async function tableNames(t: TempDb): Promise<string[]> {
  const rs = await t.client.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  return rs.rows.map((r) => String(r.name));
}

describe("migrate", () => {
  it("creates every table on an empty database and records each migration once", async () => {
    temp = await createTempDb({ migrated: false });
    const result = await migrate(temp.client);
    expect(result.applied).toEqual(bundledMigrations.map((m) => m.tag));
    const tables = await tableNames(temp);
    for (const name of [
      "users",
      "sessions",
      "devices",
      "dids",
      "routing_rules",
      "cdrs",
      "voicemails",
      "messages",
      "jobs",
    ]) {
      expect(tables).toContain(name);
    }
    const recorded = await temp.client.execute(
      `SELECT hash, created_at FROM ${MIGRATIONS_TABLE} ORDER BY id`,
    );
    expect(recorded.rows.map((r) => r.hash)).toEqual(bundledMigrations.map((m) => m.hash));
  });

  it("is a fast no-op when the database is up to date", async () => {
    temp = await createTempDb();
    const before = await temp.client.execute(`SELECT count(*) AS n FROM ${MIGRATIONS_TABLE}`);
    const started = performance.now();
    const again = await migrate(temp.client);
    const elapsed = performance.now() - started;
    expect(again.applied).toEqual([]);
    expect(elapsed).toBeLessThan(100);
    const after = await temp.client.execute(`SELECT count(*) AS n FROM ${MIGRATIONS_TABLE}`);
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
  });

  it("keeps data across a restart (re-run does not recreate tables)", async () => {
    temp = await createTempDb();
    await temp.client.execute(
      "INSERT INTO settings (key, value) VALUES ('dnd', '{\"v\":1,\"enabled\":true}')",
    );
    const second = temp.openClient();
    await migrate(second);
    const rs = await second.execute("SELECT value FROM settings WHERE key = 'dnd'");
    expect(rs.rows[0]?.value).toBe('{"v":1,"enabled":true}');
  });

  it("upgrades a database created by an older release, keeping its data", async () => {
    temp = await createTempDb({ migrated: false });
    const [first, ...later] = bundledMigrations;
    if (!first) throw new Error("no bundled migrations");
    await migrate(temp.client, [first]);
    await temp.client.execute(
      "INSERT INTO users (id, email, name, role, password_hash, password_changed_at) VALUES ('u1', 'ann@example.com', 'Ann', 'admin', 'h', 0)",
    );
    const result = await migrate(temp.client);
    expect(result.applied).toEqual(later.map((m) => m.tag));
    const rs = await temp.client.execute("SELECT email FROM users WHERE id = 'u1'");
    expect(rs.rows[0]?.email).toBe("ann@example.com");
    expect(await tableNames(temp)).toContain("relay_devices");
  });

  it("survives two processes migrating the same empty database at once", async () => {
    temp = await createTempDb({ migrated: false });
    const a = temp.client;
    const b = temp.openClient();
    const results = await Promise.all([migrate(a), migrate(b)]);
    const appliedTotal = results.flatMap((r) => r.applied);
    expect(appliedTotal.sort()).toEqual(bundledMigrations.map((m) => m.tag).sort());
    const recorded = await a.execute(`SELECT count(*) AS n FROM ${MIGRATIONS_TABLE}`);
    expect(recorded.rows[0]?.n).toBe(bundledMigrations.length);
  });

  it("a table rebuild (drizzle-kit's recreate pattern) keeps rows that reference the rebuilt table", async () => {
    temp = await createTempDb();
    const c = temp.client;
    await c.execute(
      "INSERT INTO users (id, email, name, role, password_hash, password_changed_at) VALUES ('u1', 'ann@example.com', 'Ann', 'admin', 'h', 0)",
    );
    await c.execute(
      "INSERT INTO sessions (id, user_id, last_seen_at, expires_at) VALUES ('s1', 'u1', 0, 0), ('s2', 'u1', 0, 0)",
    );
    const created = String(
      (await c.execute("SELECT sql FROM sqlite_master WHERE name = 'users'")).rows[0]?.sql,
    );
    const last = bundledMigrations.at(-1);
    if (!last) throw new Error("no bundled migrations");
    const rebuild: BundledMigration = {
      idx: last.idx + 1,
      tag: "9997_rebuild_users",
      when: last.when + 1,
      hash: "test-rebuild",
      // What drizzle-kit emits when a SQLite column changes: copy into a new table, drop, rename.
      statements: [
        "PRAGMA foreign_keys=OFF;",
        created
          .replace(/^CREATE TABLE [`"]?users[`"]?/, "CREATE TABLE `__new_users`")
          .replaceAll('"users".', '"__new_users".'),
        "INSERT INTO `__new_users` SELECT * FROM `users`;",
        "DROP TABLE `users`;",
        "ALTER TABLE `__new_users` RENAME TO `users`;",
        "PRAGMA foreign_keys=ON;",
        "CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);",
      ],
    };
    expect((await migrate(c, [...bundledMigrations, rebuild])).applied).toEqual(["9997_rebuild_users"]);
    // Dropping `users` with foreign keys on would have cascaded into sessions.
    expect((await c.execute("SELECT count(*) AS n FROM sessions")).rows[0]?.n).toBe(2);
    await c.execute("DELETE FROM users WHERE id = 'u1'");
    expect((await c.execute("SELECT count(*) AS n FROM sessions")).rows[0]?.n).toBe(0);
  });

  it("applies a later migration on top and rolls back a failing one completely", async () => {
    temp = await createTempDb();
    const last = bundledMigrations.at(-1);
    if (!last) throw new Error("no bundled migrations");
    const good: BundledMigration = {
      idx: last.idx + 1,
      tag: "9998_add_note",
      when: last.when + 1,
      hash: "test-good",
      statements: ["ALTER TABLE holidays ADD `note` text"],
    };
    const bad: BundledMigration = {
      idx: last.idx + 2,
      tag: "9999_broken",
      when: last.when + 2,
      hash: "test-bad",
      statements: ["CREATE TABLE half_done (id integer)", "ALTER TABLE no_such_table ADD x text"],
    };
    expect((await migrate(temp.client, [...bundledMigrations, good])).applied).toEqual(["9998_add_note"]);
    await expect(migrate(temp.client, [...bundledMigrations, good, bad])).rejects.toBeInstanceOf(
      MigrationError,
    );
    const tables = await tableNames(temp);
    expect(tables).not.toContain("half_done");
    const cols = await temp.client.execute("SELECT name FROM pragma_table_info('holidays')");
    expect(cols.rows.map((r) => r.name)).toContain("note");
    // Foreign keys are back on after a migration batch.
    const fk = await temp.client.execute("PRAGMA foreign_keys");
    expect(fk.rows[0]?.foreign_keys).toBe(1);
  });
});

describe("migration bundle and snapshot", () => {
  it("migrations.generated.ts equals drizzle/migrations (run `npm run db:generate -w @gosip/drizzle`)", async () => {
    expect(bundledMigrations).toEqual(await readMigrationsFolder());
  });

  it("the schema in code has no changes missing from drizzle/migrations (run `npm run db:generate -w @gosip/drizzle`)", async () => {
    const journal = JSON.parse(await readFile(join(migrationsFolder, "meta", "_journal.json"), "utf8")) as {
      entries: { idx: number }[];
    };
    const lastIdx = journal.entries.at(-1)?.idx ?? 0;
    const snapshotFile = join(migrationsFolder, "meta", `${String(lastIdx).padStart(4, "0")}_snapshot.json`);
    const snapshot = JSON.parse(await readFile(snapshotFile, "utf8")) as Parameters<
      typeof generateSQLiteMigration
    >[0];
    const current = await generateSQLiteDrizzleJson(schema as Record<string, unknown>, snapshot.id);
    const pending = await generateSQLiteMigration(snapshot, current);
    expect(pending).toEqual([]);
  });
});
