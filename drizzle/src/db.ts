// The drizzle database handle over a libSQL client. Only the `Client` interface
// shared by `@libsql/client` (Node, file: URLs) and `@libsql/client/web` (Workers,
// http(s)/libsql URLs) is used, so the same code runs on both.
import type { Client } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import * as schema from "./schema/index.ts";

export type Schema = typeof schema;
/**
 * The drizzle database typed with every GoSIP table (relational queries included),
 * and its libSQL client (`$client`, for reads that decode rows themselves).
 */
export type Db = LibSQLDatabase<Schema> & { $client: Client };

/** Wraps a libSQL client; apply `migrate(client)` first. */
export function createDb(client: Client): Db {
  return drizzle(client, { schema });
}
