/**
 * Runtime wiring used by both entry points (Node and Workers): the JSON console
 * logger and the database bootstrap (migrations, then the drizzle handle).
 */
import { createDb, type Db, migrate } from "@gosip/drizzle";
import type { Client } from "@libsql/client";
import type { EdgeConfig } from "../config.ts";
import type { Logger } from "./types.ts";

type Level = EdgeConfig["logLevel"];

/**
 * Keys whose values never reach the logs, wherever they appear in logged data
 * (defence in depth: callers already avoid logging them). The one list both
 * loggers redact: this JSON logger and the Node logger's pino paths.
 */
export const SECRET_LOG_KEYS: readonly string[] = [
  "password",
  "currentPassword",
  "newPassword",
  "passwordHash",
  "token",
  "authToken",
  "authorization",
  "cookie",
  "ha1",
  "secret",
  "databaseAuthToken",
];
const secretKeys = new Set(SECRET_LOG_KEYS);

function redact(value: unknown, depth: number): unknown {
  if (typeof value !== "object" || value === null || depth > 4) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = secretKeys.has(k) ? "[redacted]" : redact(v, depth + 1);
  return out;
}
const levelRank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * One JSON object per line on the console (stdout for debug/info, stderr for
 * warn/error): what `wrangler tail`, Workers Logs and `docker logs` all ingest.
 * Values under SECRET_LOG_KEYS are replaced by "[redacted]". `write` is injectable for tests.
 */
export function createJsonLogger(
  minLevel: Level,
  base: Record<string, unknown> = {},
  write: (level: Level, line: string) => void = defaultWrite,
): Logger {
  const log =
    (level: Level) =>
    (data: Record<string, unknown>, msg: string): void => {
      if (levelRank[level] < levelRank[minLevel]) return;
      const entry = { time: new Date().toISOString(), level, msg, ...base, ...data };
      write(level, JSON.stringify(redact(entry, 0)));
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

function defaultWrite(level: Level, line: string): void {
  if (level === "warn" || level === "error") console.error(line);
  else console.log(line);
}

/** Bring the schema up to date, then wrap the client in drizzle. Call once per process/isolate. */
export async function openDatabase(client: Client, logger: Logger): Promise<Db> {
  const started = Date.now();
  const { applied } = await migrate(client);
  if (applied.length > 0) logger.info({ applied, ms: Date.now() - started }, "database migrated");
  return createDb(client);
}
