/**
 * The libSQL client of the Node edge: a local file (the default) tuned for one
 * process serving the API, or a remote database (Turso) by URL + auth token.
 * The Node entry and the edge tests open it the same way, so tests run on the
 * settings production uses.
 */
import { type Client, createClient } from "@libsql/client";
import type { EdgeConfig } from "../../config.ts";
import { FILE_DATABASE_PRAGMAS, withStatementCache } from "./statement-cache.ts";

/**
 * Opens the client; for a file database one connection with WAL, synchronous=NORMAL and a
 * busy timeout, whose `execute` reuses prepared statements (see statement-cache.ts).
 */
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
  // write).
  const client = createClient({ url: config.databaseUrl, concurrency: 1 });
  try {
    for (const pragma of FILE_DATABASE_PRAGMAS) await client.execute(pragma);
  } catch (err) {
    client.close();
    throw err;
  }
  const path = filePath(config.databaseUrl);
  return path === undefined ? client : withStatementCache(client, path);
}

/** The file path of a plain `file:` URL; undefined for anything fancier (query options), left to the client. */
function filePath(url: string): string | undefined {
  if (url.includes("?") || url.includes("#")) return undefined;
  const rest = url.slice("file:".length);
  if (rest.startsWith("//")) return rest.startsWith("///") ? decodeURIComponent(rest.slice(2)) : undefined;
  return decodeURIComponent(rest);
}
