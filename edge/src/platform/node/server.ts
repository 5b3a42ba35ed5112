/**
 * The embedded edge on Node: validated config → data directory → libSQL
 * database (file by default, Turso with DATABASE_URL/DATABASE_AUTH_TOKEN) with
 * migrations applied → the shared app on @hono/node-server, with the outbox's
 * job timer and SMTP through nodemailer. Only wiring lives here; everything else
 * is runtime-neutral.
 */
import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { createNodeWebSocket } from "@hono/node-ws";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "../../app.ts";
import { FsBlobStore } from "../../blobs/fs.ts";
import { type EdgeConfig, loadConfig } from "../../config.ts";
import type { AppEnv } from "../../env.ts";
import { runDueJobs } from "../../jobs/runner.ts";
import { attachNodeRelayLink, NodeRelayLink } from "../../relay/node-link.ts";
import { openDatabase } from "../shared.ts";
import { type EdgeDeps, type Logger, systemClock } from "../types.ts";
import { nodeClientIp } from "./client-ip.ts";
import { openNodeClient } from "./database.ts";
import { NodeJobTimer } from "./job-timer.ts";
import { createNodeLogger } from "./logger.ts";
import { nodeSmtpTransport } from "./smtp.ts";

export interface NodeEdge {
  app: OpenAPIHono<AppEnv>;
  deps: EdgeDeps;
  config: EdgeConfig;
  server: Server;
  /** The port actually bound (differs from config.port when PORT=0). */
  port: number;
  /** Base URL to reach this server on loopback, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Stop accepting connections, finish in-flight requests (up to `graceMs`), close the database. */
  close(graceMs?: number): Promise<void>;
}

export interface NodeEdgeOptions {
  /** Logger override (tests, benchmarks); default pino on stdout at LOG_LEVEL. */
  logger?: Logger;
  /** false: no outbox timer (a test drives runDueJobs itself); default on, ticking every second. */
  jobTimer?: boolean;
}

/**
 * Start the edge on Node from environment variables. Throws ConfigError on a bad
 * variable (the message names it); resolves once the server listens.
 */
export async function startNodeEdge(
  env: Record<string, string | undefined>,
  options: NodeEdgeOptions = {},
): Promise<NodeEdge> {
  const config = loadConfig(env);
  const logger = options.logger ?? createNodeLogger(config.logLevel);
  await mkdir(config.dataDir, { recursive: true });

  const client = await openNodeClient(config);
  let deps: EdgeDeps;
  try {
    const db = await openDatabase(client, logger);
    deps = {
      db,
      clock: systemClock,
      config,
      logger,
      runtime: "node",
      relayChannel: new NodeRelayLink(),
      blobs: new FsBlobStore(join(config.dataDir, "blobs")),
      mail: nodeSmtpTransport,
    };
  } catch (err) {
    client.close();
    throw err;
  }

  const runnerDeps = deps;
  const jobTimer =
    options.jobTimer === false ? undefined : new NodeJobTimer(() => runDueJobs(runnerDeps), logger);
  if (jobTimer) deps.jobs = jobTimer;

  const app = createApp(deps, { clientIp: nodeClientIp });
  // The relay's WebSocket (GET /api/relay/connect) is upgraded on this same server.
  const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app });
  attachNodeRelayLink(deps, upgradeWebSocket);
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  injectWebSocket(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  jobTimer?.start();
  const port = (server.address() as AddressInfo).port;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (graceMs = 5000): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (deps.relayChannel instanceof NodeRelayLink) deps.relayChannel.shutdown();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      // Jobs after requests: a request finishing in the grace period may still enqueue work.
      await closed;
      clearTimeout(timer);
      await jobTimer?.stop(graceMs);
      client.close();
    })();
    return closing;
  };

  return { app, deps, config, server, port, url, close };
}
