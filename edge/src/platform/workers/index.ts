/**
 * Cloudflare Workers entry: wires the runtime-neutral edge app to Workers
 * bindings. The database is Turso (libSQL over HTTP, `@libsql/client/web`) from the
 * DATABASE_URL / DATABASE_AUTH_TOKEN secrets, migrated once per isolate before the
 * first API request; the client IP is CF-Connecting-IP; the relay link lives in
 * the RelayLink Durable Object, audio in the R2 bucket BLOBS. Static assets (the UI) are served by the ASSETS
 * binding; with `run_worker_first = ["/api/*"]` only API requests reach this code.
 *
 * The outbox runs here in two ways: the Cron Trigger (`scheduled`, every minute)
 * runs due jobs in this isolate, and the RelayLink object's alarm runs them between
 * ticks (retries due in a second, work enqueued by a request). An enqueue wakes the
 * object (`wake()` → an alarm now); the request keeps that call alive with waitUntil.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "../../app.ts";
import type { AppEnv } from "../../env.ts";
import { errorBody } from "../../http/errors.ts";
import { runDueJobs } from "../../jobs/runner.ts";
import {
  type EdgeDeps,
  type JobScheduler,
  type RelayChannel,
  type RelayLinkPort,
  systemClock,
} from "../types.ts";
import { openWorkerRuntime, type WorkerEnv } from "./env.ts";
import { RELAY_ID_HEADER, RELAY_NAME_HEADER } from "./relay-link.ts";

export type { WorkerEnv } from "./env.ts";
export { RelayLink } from "./relay-link.ts";

/** The client address as Cloudflare saw it; X-Forwarded-For is client-controlled and ignored. */
export function workersClientIp(req: Request): string {
  return req.headers.get("CF-Connecting-IP") ?? "unknown";
}

/** The one RelayLink Durable Object of this installation. */
function relayLinkStub(env: WorkerEnv) {
  return env.RELAY_LINK.get(env.RELAY_LINK.idFromName("installation"));
}

/** The relay link on Workers: upgrades and revocations go to the Durable Object. */
function durableRelayLink(env: WorkerEnv): RelayLinkPort {
  return {
    accept: async (request, relay) => {
      const headers = new Headers(request.headers);
      headers.set(RELAY_ID_HEADER, relay.id);
      headers.set(RELAY_NAME_HEADER, encodeURIComponent(relay.name));
      return relayLinkStub(env).fetch(new Request(request, { headers }));
    },
    disconnect: async (relayId) => {
      await relayLinkStub(env).disconnect(relayId);
    },
  };
}

/** Pushes and commands, by RPC to the Durable Object that holds the socket. */
function durableRelayChannel(env: WorkerEnv): RelayChannel {
  return {
    send: (message) => relayLinkStub(env).send(message),
    command: (command, timeoutMs) => relayLinkStub(env).command(command, timeoutMs),
    status: () => relayLinkStub(env).status(),
  };
}

/**
 * wake() on Workers: ask the RelayLink object for an alarm now. The RPC is started at
 * once; `pendingWake` lets the request that enqueued keep it alive (waitUntil), so it
 * is not cancelled when the response is sent.
 */
let pendingWake: Promise<void> | undefined;

function durableJobScheduler(env: WorkerEnv): JobScheduler {
  return {
    wake: () => {
      pendingWake ??= relayLinkStub(env)
        .wakeJobs()
        .catch((err: unknown) => {
          // The Cron Trigger runs the job within a minute anyway.
          console.error(
            JSON.stringify({
              level: "warn",
              msg: "job wake-up not delivered",
              err: err instanceof Error ? err.message : String(err),
            }),
          );
        })
        .finally(() => {
          pendingWake = undefined;
        });
    },
  };
}

interface WorkerRuntime {
  app: OpenAPIHono<AppEnv>;
  deps: EdgeDeps;
}

async function buildRuntime(env: WorkerEnv): Promise<WorkerRuntime> {
  const runtime = await openWorkerRuntime(env, "worker");
  const deps: EdgeDeps = {
    ...runtime,
    clock: systemClock,
    runtime: "workers",
    relayLink: durableRelayLink(env),
    relayChannel: durableRelayChannel(env),
    jobs: durableJobScheduler(env),
  };
  return { app: createApp(deps, { clientIp: workersClientIp }), deps };
}

// One app (config, libSQL client, migrated schema) per isolate, built on the first API request.
let ready: Promise<WorkerRuntime> | undefined;

async function runtimeFor(env: WorkerEnv): Promise<WorkerRuntime> {
  ready ??= buildRuntime(env);
  try {
    return await ready;
  } catch (err) {
    // Retry on the next request (e.g. the database was briefly unreachable).
    ready = undefined;
    throw err;
  }
}

/** The Cron Trigger's work: run what is due, then have the RelayLink alarm cover the next due job. */
async function scheduledRun(env: WorkerEnv): Promise<void> {
  const { deps } = await runtimeFor(env);
  const result = await runDueJobs(deps);
  if (result.ran > 0) deps.logger.info({ ...result }, "cron: outbox jobs run");
  await relayLinkStub(env).armJobAlarm();
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname !== "/api" && !pathname.startsWith("/api/")) return env.ASSETS.fetch(request);
    let app: OpenAPIHono<AppEnv>;
    try {
      app = (await runtimeFor(env)).app;
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
    const response = await app.fetch(request, env, ctx);
    if (pendingWake) ctx.waitUntil(pendingWake);
    return response;
  },

  async scheduled(_controller, env, ctx): Promise<void> {
    ctx.waitUntil(
      scheduledRun(env).catch((err: unknown) => {
        console.error(
          JSON.stringify({
            level: "error",
            msg: "cron: outbox run failed",
            err: err instanceof Error ? err.message : String(err),
          }),
        );
      }),
    );
  },
} satisfies ExportedHandler<WorkerEnv>;
