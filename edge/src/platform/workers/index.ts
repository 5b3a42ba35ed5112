/**
 * Cloudflare Workers entry: wires the runtime-neutral edge app to Workers
 * bindings. The database is Turso (libSQL over HTTP, `@libsql/client/web`) from the
 * DATABASE_URL / DATABASE_AUTH_TOKEN secrets, migrated once per isolate before the
 * first API request; the client IP is CF-Connecting-IP; the relay link lives in
 * the RelayLink Durable Object. Static assets (the UI) are served by the ASSETS
 * binding; with `run_worker_first = ["/api/*"]` only API requests reach this code.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createClient } from "@libsql/client/web";
import { createApp } from "../../app.ts";
import { ConfigError, loadConfig } from "../../config.ts";
import type { AppEnv } from "../../env.ts";
import { errorBody } from "../../http/errors.ts";
import { createJsonLogger, openDatabase } from "../shared.ts";
import { type EdgeDeps, type RelayLinkPort, systemClock } from "../types.ts";
import { RELAY_ID_HEADER, type RelayLink } from "./relay-link.ts";

export { RelayLink } from "./relay-link.ts";

/** Bindings declared in wrangler.toml (vars and secrets are strings). */
export interface WorkerEnv {
  ASSETS: Fetcher;
  RELAY_LINK: DurableObjectNamespace<RelayLink>;
  /** Secret: libsql://<db>-<org>.turso.io (or any Hrana-over-HTTP URL). */
  DATABASE_URL?: string;
  /** Secret: Turso database token. */
  DATABASE_AUTH_TOKEN?: string;
  PUBLIC_URL?: string;
  LOG_LEVEL?: string;
}

/** The client address as Cloudflare saw it; X-Forwarded-For is client-controlled and ignored. */
export function workersClientIp(req: Request): string {
  return req.headers.get("CF-Connecting-IP") ?? "unknown";
}

/** The relay link on Workers: the one RelayLink Durable Object of this installation. */
function durableRelayLink(env: WorkerEnv): RelayLinkPort {
  const stub = () => env.RELAY_LINK.get(env.RELAY_LINK.idFromName("installation"));
  return {
    accept: async (request, relay) => {
      const headers = new Headers(request.headers);
      headers.set(RELAY_ID_HEADER, relay.id);
      return stub().fetch(new Request(request, { headers }));
    },
    disconnect: async (relayId) => {
      await stub().disconnect(relayId);
    },
  };
}

async function buildApp(env: WorkerEnv): Promise<OpenAPIHono<AppEnv>> {
  if (!env.DATABASE_URL) {
    throw new ConfigError(
      "Invalid configuration:\n  DATABASE_URL: required on Workers; set it with `wrangler secret put DATABASE_URL` (libsql://<db>.turso.io)",
    );
  }
  const config = loadConfig({
    DATABASE_URL: env.DATABASE_URL,
    DATABASE_AUTH_TOKEN: env.DATABASE_AUTH_TOKEN,
    PUBLIC_URL: env.PUBLIC_URL,
    LOG_LEVEL: env.LOG_LEVEL,
  });
  const logger = createJsonLogger(config.logLevel, { runtime: "workers" });
  const client = createClient({ url: config.databaseUrl, authToken: config.databaseAuthToken });
  const db = await openDatabase(client, logger);
  const deps: EdgeDeps = {
    db,
    clock: systemClock,
    config,
    logger,
    runtime: "workers",
    relayLink: durableRelayLink(env),
  };
  return createApp(deps, { clientIp: workersClientIp });
}

// One app (config, libSQL client, migrated schema) per isolate, built on the first API request.
let ready: Promise<OpenAPIHono<AppEnv>> | undefined;

async function appFor(env: WorkerEnv): Promise<OpenAPIHono<AppEnv>> {
  ready ??= buildApp(env);
  try {
    return await ready;
  } catch (err) {
    // Retry on the next request (e.g. the database was briefly unreachable).
    ready = undefined;
    throw err;
  }
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname !== "/api" && !pathname.startsWith("/api/")) return env.ASSETS.fetch(request);
    let app: OpenAPIHono<AppEnv>;
    try {
      app = await appFor(env);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.error(JSON.stringify({ level: "error", msg: "edge failed to start", err: message }));
      return Response.json(
        errorBody("internal", "The edge is not configured or its database is unreachable"),
        {
          status: 503,
        },
      );
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<WorkerEnv>;
