// Applies the bundled drizzle-kit migrations to a libSQL database. Safe to call at
// every start, from several processes at once, on Node (file:) and Workers (http:).
// Bookkeeping uses drizzle's own `__drizzle_migrations` table and rules (a migration
// is pending when its journal timestamp is newer than the last recorded one), so
// `drizzle-kit migrate` and this function can be used interchangeably.
import type { Client } from "@libsql/client";
import type { BundledMigration } from "./migration-types.ts";
import { bundledMigrations } from "./migrations.generated.ts";

export const MIGRATIONS_TABLE = "__drizzle_migrations";

/** A migration failed to apply; the database is left at the previous migration. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
  readonly code = "migration_failed";
  constructor(
    readonly tag: string,
    options: { cause: unknown },
  ) {
    super(
      `database migration ${tag} failed: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`,
      options,
    );
  }
}

export interface MigrateResult {
  /** Tags applied by this call, in order (empty when the database was up to date). */
  applied: string[];
}

async function lastAppliedWhen(client: Client): Promise<number | null> {
  const rs = await client.execute(`SELECT max(created_at) AS last FROM ${MIGRATIONS_TABLE}`);
  const last = rs.rows[0]?.last;
  return last === null || last === undefined ? null : Number(last);
}

/**
 * Brings the database up to the current schema. Each migration runs with its
 * bookkeeping row in one batch (one transaction, foreign keys checked at the end
 * rather than during table rebuilds); nothing to do costs one query.
 */
export async function migrate(
  client: Client,
  migrations: readonly BundledMigration[] = bundledMigrations,
): Promise<MigrateResult> {
  let last: number | null;
  try {
    last = await lastAppliedWhen(client);
  } catch (err) {
    if (!/no such table/i.test(err instanceof Error ? err.message : String(err))) throw err;
    await client.execute(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, hash text NOT NULL, created_at numeric)`,
    );
    last = await lastAppliedWhen(client);
  }

  const applied: string[] = [];
  for (const migration of migrations) {
    if (last !== null && migration.when <= last) continue;
    try {
      await client.migrate([
        ...migration.statements,
        {
          sql: `INSERT INTO ${MIGRATIONS_TABLE} (hash, created_at) VALUES (?, ?)`,
          args: [migration.hash, migration.when],
        },
      ]);
    } catch (err) {
      // Another process (a second Worker isolate, a parallel start) may have applied it meanwhile.
      const now = await lastAppliedWhen(client);
      if (now !== null && now >= migration.when) {
        last = now;
        continue;
      }
      throw new MigrationError(migration.tag, { cause: err });
    }
    await assertForeignKeys(client, migration.tag);
    applied.push(migration.tag);
    last = migration.when;
  }
  return { applied };
}

/** Table rebuilds run with foreign keys off; a migration must not leave dangling references. */
async function assertForeignKeys(client: Client, tag: string): Promise<void> {
  const rs = await client.execute("PRAGMA foreign_key_check");
  if (rs.rows.length > 0) {
    const tables = [...new Set(rs.rows.map((r) => String(r.table)))].join(", ");
    throw new MigrationError(tag, { cause: new Error(`foreign key violations in: ${tables}`) });
  }
}
