// Test helper: a fresh libSQL file database in a temp dir (real libSQL, no mocks).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Client, createClient } from "@libsql/client";
import { createDb, type Db } from "../db.ts";
import { migrate } from "../migrate.ts";

export interface TempDb {
  client: Client;
  db: Db;
  url: string;
  /** Another client on the same file (a second process would look like this). */
  openClient(): Client;
  close(): Promise<void>;
}

/** Creates a file database; migrated unless `migrated: false`. */
export async function createTempDb(options: { migrated?: boolean } = {}): Promise<TempDb> {
  const dir = await mkdtemp(join(tmpdir(), "gosip-drizzle-"));
  const url = pathToFileURL(join(dir, "test.db")).href;
  const clients: Client[] = [];
  const openClient = () => {
    const c = createClient({ url });
    clients.push(c);
    return c;
  };
  const client = openClient();
  if (options.migrated !== false) await migrate(client);
  return {
    client,
    db: createDb(client),
    url,
    openClient,
    async close() {
      for (const c of clients) c.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
