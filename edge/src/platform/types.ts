/**
 * The few platform seams of the edge. Everything outside `platform/` receives
 * these through `EdgeDeps` and never asks which runtime it runs on (Node or Workers).
 */
import type { Db } from "@gosip/drizzle";
import type { EdgeConfig } from "../config.ts";

/** Wall clock, injectable so lockouts and session expiry are testable. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Structured logger; messages never carry secrets or unmasked phone numbers. */
export interface Logger {
  debug(data: Record<string, unknown>, msg: string): void;
  info(data: Record<string, unknown>, msg: string): void;
  warn(data: Record<string, unknown>, msg: string): void;
  error(data: Record<string, unknown>, msg: string): void;
}

/**
 * Completes an authenticated relay's WebSocket upgrade on this runtime (Workers: the
 * RelayLink Durable Object). The relay feature checks the relay token, then calls it.
 */
export interface RelayLinkPort {
  accept(request: Request, relay: { id: string; name: string }): Promise<Response>;
  /** Close the live sockets of this relay token (it was revoked). */
  disconnect(relayId: string): Promise<void>;
}

/** What every request handler can reach. Built once per process (Node) or per isolate (Workers). */
export interface EdgeDeps {
  db: Db;
  clock: Clock;
  config: EdgeConfig;
  logger: Logger;
  /** Runtime name for health output only; code must not branch on it. */
  runtime: "node" | "workers";
  /** Set where the runtime terminates relay WebSockets through the app (Workers). */
  relayLink?: RelayLinkPort;
}
