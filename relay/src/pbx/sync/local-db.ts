/**
 * The relay's libSQL file, opened the way its write pattern needs.
 *
 * In SQLite's default rollback journal every write transaction waits for several
 * fsyncs (10-20 ms here), and the file client does that on the event loop: the SIP
 * engine in the same process would stall behind every outbox write. Write-ahead
 * logging with synchronous=NORMAL commits without an fsync (well under a
 * millisecond); a committed transaction still survives a crash of the relay
 * process, and only a power loss or kernel crash can roll back the last few commits.
 *
 * `synchronous` is a per-connection setting, and the file client opens extra
 * connections for concurrent statements (which then run with FULL: an fsync per
 * commit). The file client runs every statement synchronously on this thread
 * anyway, so one connection (`concurrency: 1`) costs no parallelism.
 */

import { createDb, type Db, migrate } from "@gosip/drizzle";
import { type Client, createClient } from "@libsql/client";
import type { Logger } from "pino";

export interface RelayDatabase {
  client: Client;
  db: Db;
}

const FILE_PRAGMAS = [
  "PRAGMA journal_mode = WAL",
  "PRAGMA synchronous = NORMAL",
  "PRAGMA busy_timeout = 5000",
];

/** Opens (and migrates) the relay's database: one connection, WAL + synchronous=NORMAL for a file. */
export async function openRelayDatabase(url: string): Promise<RelayDatabase> {
  const client = createClient({ url, concurrency: 1 });
  try {
    if (url.startsWith("file:")) for (const pragma of FILE_PRAGMAS) await client.execute(pragma);
    await migrate(client);
  } catch (err) {
    client.close();
    throw err;
  }
  return { client, db: createDb(client) };
}

/**
 * For a client opened elsewhere: switches the file to WAL with synchronous=NORMAL on the
 * connection it reaches (open the client with `concurrency: 1`, or use `openRelayDatabase`,
 * so every statement runs on that connection). In-memory databases are left alone.
 */
export async function tuneRelayDatabase(client: Client, log: Logger): Promise<void> {
  try {
    const rs = await client.execute("PRAGMA journal_mode = WAL");
    const mode = String(rs.rows[0]?.journal_mode ?? "");
    if (mode !== "wal") {
      log.debug({ mode }, "relay database: journal mode left as is");
      return;
    }
    await client.execute("PRAGMA synchronous = NORMAL");
  } catch (err) {
    // Slower writes, not wrong ones: carry on.
    log.warn({ err }, "relay database: could not switch to WAL");
  }
}
