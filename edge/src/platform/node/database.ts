/**
 * The libSQL client of the Node edge: a local file (the default) tuned for one
 * process serving the API, or a remote database (Turso) by URL + auth token.
 * The Node entry and the edge tests open it the same way, so tests run on the
 * settings production uses.
 */
import { type Client, createClient } from "@libsql/client";
import type { EdgeConfig } from "../../config.ts";

/** Opens the client; for a file database, also sets WAL, synchronous=NORMAL and a busy timeout. */
export async function openNodeClient(
  config: Pick<EdgeConfig, "databaseUrl" | "databaseAuthToken">,
): Promise<Client> {
  if (!config.databaseUrl.startsWith("file:")) {
    return createClient(
      config.databaseAuthToken
        ? { url: config.databaseUrl, authToken: config.databaseAuthToken }
        : { url: config.databaseUrl },
    );
  }
  // One connection. The file client runs every statement synchronously on this thread, so a
  // pool adds no parallelism; it only opens extra connections under concurrent requests, and
  // those miss the per-connection PRAGMAs below (synchronous fell back to FULL: one fsync per
  // write). The edge never holds an interactive transaction (atomic work uses db.batch),
  // which is what would need a second connection.
  const client = createClient({ url: config.databaseUrl, concurrency: 1 });
  try {
    // WAL lets readers (backups, the relay's tools) run beside the writer; wait instead of failing when busy.
    // synchronous=NORMAL is the WAL setting SQLite recommends: no corruption on power loss, at most the
    // last commits undone, and no fsync per write.
    await client.execute("PRAGMA journal_mode = WAL");
    await client.execute("PRAGMA synchronous = NORMAL");
    await client.execute("PRAGMA busy_timeout = 5000");
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}
