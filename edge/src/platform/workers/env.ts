/**
 * The Workers bindings (wrangler.toml) and the runtime pieces built from them,
 * shared by the Worker's fetch handler (index.ts) and the RelayLink Durable
 * Object, which opens its own database handle the same way.
 */
import { createClient } from "@libsql/client/web";
import { R2BlobStore } from "../../blobs/r2.ts";
import { ConfigError, type EdgeConfig, loadConfig } from "../../config.ts";
import { createJsonLogger, openDatabase } from "../shared.ts";
import type { EdgeDeps } from "../types.ts";
import type { RelayLink } from "./relay-link.ts";

/** Bindings declared in wrangler.toml (vars and secrets are strings). */
export interface WorkerEnv {
  ASSETS: Fetcher;
  RELAY_LINK: DurableObjectNamespace<RelayLink>;
  /** Recordings and other audio. */
  BLOBS: R2Bucket;
  /** Secret: libsql://<db>-<org>.turso.io (or any Hrana-over-HTTP URL). */
  DATABASE_URL?: string;
  /** Secret: Turso database token. */
  DATABASE_AUTH_TOKEN?: string;
  PUBLIC_URL?: string;
  LOG_LEVEL?: string;
  /** Secrets overriding the wizard's Twilio credentials (`wrangler secret put TWILIO_AUTH_TOKEN`). */
  TWILIO_ACCOUNT_SID?: string;
  TWILIO_AUTH_TOKEN?: string;
  /** Points Twilio REST calls at another base URL (tests: the simulator). */
  TWILIO_API_BASE?: string;
  /** Points Postmark email calls at another base URL (tests). */
  POSTMARK_API_BASE?: string;
}

/** The edge configuration from the Worker's bindings; throws ConfigError naming what is wrong. */
export function workerConfig(env: WorkerEnv): EdgeConfig {
  if (!env.DATABASE_URL) {
    throw new ConfigError(
      "Invalid configuration:\n  DATABASE_URL: required on Workers; set it with `wrangler secret put DATABASE_URL` (libsql://<db>.turso.io)",
    );
  }
  return loadConfig({
    DATABASE_URL: env.DATABASE_URL,
    DATABASE_AUTH_TOKEN: env.DATABASE_AUTH_TOKEN,
    PUBLIC_URL: env.PUBLIC_URL,
    LOG_LEVEL: env.LOG_LEVEL,
    TWILIO_ACCOUNT_SID: env.TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: env.TWILIO_AUTH_TOKEN,
    TWILIO_API_BASE: env.TWILIO_API_BASE,
    POSTMARK_API_BASE: env.POSTMARK_API_BASE,
  });
}

/** Config, logger, migrated database and blob store: everything but the relay channel. */
export async function openWorkerRuntime(
  env: WorkerEnv,
  component: string,
): Promise<Pick<EdgeDeps, "config" | "logger" | "db" | "blobs">> {
  const config = workerConfig(env);
  const logger = createJsonLogger(config.logLevel, { runtime: "workers", component });
  const client = createClient({ url: config.databaseUrl, authToken: config.databaseAuthToken });
  const db = await openDatabase(client, logger);
  return { config, logger, db, blobs: new R2BlobStore(env.BLOBS) };
}
