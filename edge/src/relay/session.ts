/**
 * The edge's side of the relay sync protocol (@gosip/drizzle sync/protocol.ts),
 * written once for both runtimes: the Node link (node-link.ts) and the Workers
 * Durable Object (platform/workers/relay-link.ts) hand every frame to
 * `handleRelayFrame` with a small socket adapter and keep nothing else.
 *
 * - `hello` → `hello-ack`, then the full config snapshot; a relay speaking another
 *   protocol version is closed with CLOSE_PROTOCOL_VERSION.
 * - `event` → stored idempotently (events.ts), then `ack` (a duplicate too);
 *   an event that can never be stored → `nack`; a storage failure closes with
 *   1011 so the relay reconnects and resends from its outbox.
 * - `command-result` settles the waiting command; `config-ack` is noted for the
 *   status page; `ping` → `pong`.
 * - A frame that is not a valid message closes the socket with the protocol's code
 *   and a reason; nothing a relay sends can crash the edge.
 */
import {
  CLOSE_POLICY_VIOLATION,
  CLOSE_PROTOCOL_VERSION,
  type EdgeMessage,
  encodeMessage,
  parseRelayMessage,
  type RelayMessage,
  SYNC_PROTOCOL_VERSION,
} from "@gosip/drizzle";
import type { Clock, RelayLinkStatus } from "../platform/types.ts";
import type { PendingCommands } from "./commands.ts";
import { configDelta, configSnapshot } from "./config.ts";
import { applyRelayEvent, type EventDeps } from "./events.ts";

/** Close code for "try again": the edge could not store an event right now. */
export const CLOSE_INTERNAL_ERROR = 1011;

/** What a link remembers about one socket; plain JSON (a Durable Object keeps it as the socket's attachment). */
export interface RelaySocketState {
  relayId: string;
  relayName: string;
  connectedAt: number;
  hello: { v: number; software: string | null; sip: string[]; at: number } | null;
  /** Last config version the relay acknowledged. */
  configVersion: number | null;
}

/** One relay socket, as the runtime holds it. */
export interface RelaySocket {
  send(data: string): void;
  close(code: number, reason: string): void;
  getState(): RelaySocketState;
  setState(state: RelaySocketState): void;
}

export interface RelaySessionContext {
  deps: EventDeps & { clock: Clock };
  commands: PendingCommands;
}

export function newSocketState(relay: { id: string; name: string }, now: number): RelaySocketState {
  return { relayId: relay.id, relayName: relay.name, connectedAt: now, hello: null, configVersion: null };
}

/** The status page's view of a socket (or of no socket). */
export function linkStatus(state: RelaySocketState | undefined): RelayLinkStatus {
  if (!state?.hello) {
    return {
      connected: false,
      relayId: null,
      relayName: null,
      since: null,
      software: null,
      protocolVersion: null,
      sip: [],
      configVersion: null,
    };
  }
  return {
    connected: true,
    relayId: state.relayId,
    relayName: state.relayName,
    since: new Date(state.hello.at).toISOString(),
    software: state.hello.software,
    protocolVersion: state.hello.v,
    sip: state.hello.sip,
    configVersion: state.configVersion,
  };
}

function send(socket: RelaySocket, message: EdgeMessage): void {
  socket.send(encodeMessage(message));
}

/**
 * An `event` frame whose envelope is sound but whose event is not: answered with a
 * nack (the relay drops it) instead of closing the link over one bad outbox entry.
 */
function nackableKey(data: unknown): string | undefined {
  if (typeof data !== "string") return undefined;
  try {
    const frame = JSON.parse(data) as { type?: unknown; key?: unknown; seq?: unknown };
    if (frame.type !== "event" || typeof frame.key !== "string") return undefined;
    return frame.key.length >= 8 && frame.key.length <= 200 ? frame.key : undefined;
  } catch {
    return undefined;
  }
}

/** Handles one frame from an authenticated relay. Never throws. */
export async function handleRelayFrame(
  ctx: RelaySessionContext,
  socket: RelaySocket,
  data: unknown,
): Promise<void> {
  const parsed = parseRelayMessage(data);
  if (!parsed.ok) {
    const key = parsed.code === CLOSE_POLICY_VIOLATION ? nackableKey(data) : undefined;
    if (key !== undefined) {
      ctx.deps.logger.warn({ reason: parsed.reason }, "relay event refused");
      send(socket, { type: "nack", key, error: parsed.reason });
    } else {
      ctx.deps.logger.warn({ code: parsed.code, reason: parsed.reason }, "relay frame refused");
      socket.close(parsed.code, parsed.reason);
    }
    return;
  }
  try {
    await handleMessage(ctx, socket, parsed.message);
  } catch (err) {
    ctx.deps.logger.error(
      { err: err instanceof Error ? err.message : String(err), type: parsed.message.type },
      "relay message failed",
    );
    socket.close(CLOSE_INTERNAL_ERROR, "edge error, reconnect and resend");
  }
}

async function handleMessage(
  ctx: RelaySessionContext,
  socket: RelaySocket,
  message: RelayMessage,
): Promise<void> {
  const { deps } = ctx;
  const state = socket.getState();
  switch (message.type) {
    case "hello": {
      if (message.v !== SYNC_PROTOCOL_VERSION) {
        socket.close(
          CLOSE_PROTOCOL_VERSION,
          `protocol version ${message.v} not supported; this edge speaks ${SYNC_PROTOCOL_VERSION}`,
        );
        return;
      }
      const now = deps.clock.now();
      send(socket, { type: "hello-ack", v: SYNC_PROTOCOL_VERSION, relayId: state.relayId, serverTime: now });
      const snapshot = await configSnapshot(deps.db, deps.clock);
      send(socket, snapshot);
      socket.setState({
        ...state,
        hello: { v: message.v, software: message.software ?? null, sip: message.sip ?? [], at: now },
      });
      deps.logger.info(
        { relayId: state.relayId, software: message.software, devices: snapshot.devices.length },
        "relay said hello",
      );
      return;
    }
    case "event": {
      if (!state.hello) {
        socket.close(CLOSE_POLICY_VIOLATION, "hello first");
        return;
      }
      const outcome = await applyRelayEvent(deps, message);
      if (outcome.kind === "invalid") {
        deps.logger.warn(
          { kind: message.event.kind, seq: message.seq, error: outcome.error },
          "relay event nacked",
        );
        send(socket, { type: "nack", key: message.key, error: outcome.error });
        return;
      }
      send(socket, { type: "ack", keys: [message.key] });
      if (outcome.kind === "stored" && outcome.followUp) {
        send(socket, await configDelta(deps.db, deps.clock, { upsert: outcome.followUp.upsertDevices }));
      }
      return;
    }
    case "config-ack":
      socket.setState({ ...state, configVersion: Math.max(message.version, state.configVersion ?? 0) });
      return;
    case "command-result":
      if (!ctx.commands.settle(message.id, message.ok, message.error)) {
        deps.logger.debug({ id: message.id }, "command result for no waiting command");
      }
      return;
    case "ping":
      send(socket, { type: "pong", t: message.t });
      return;
  }
}

/** Runs tasks one after another (a link applies one relay's frames in order). */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  run(task: () => Promise<void>): Promise<void> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
