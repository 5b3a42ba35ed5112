/**
 * Durability settings for the relay's libSQL file. In SQLite's default rollback
 * journal every write transaction waits for several fsyncs (10-20 ms here), and
 * the file client does that on the event loop: the SIP engine in the same
 * process would stall behind every outbox write. Write-ahead logging with
 * synchronous=NORMAL commits without an fsync (well under a millisecond); a
 * committed transaction still survives a crash of the relay process, and only
 * a power loss or kernel crash can roll back the last few commits.
 */
import type { Client } from "@libsql/client";
import type { Logger } from "pino";

/** Switches a file database to WAL with synchronous=NORMAL; in-memory databases are left alone. */
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
