/**
 * RelayLink: the Durable Object that holds the on-prem relay's WebSocket on
 * Workers. The Worker forwards the upgrade here only after the relay token was
 * checked (the relay id and name arrive in RELAY_ID_HEADER / RELAY_NAME_HEADER).
 * Hibernation API: the object may be evicted between messages while the socket
 * stays open, so what must outlive a message lives in the socket's attachment
 * (relay id, hello details, acknowledged config version); the database handle is
 * rebuilt from env as the Worker builds it.
 *
 * Frames are answered by the runtime-neutral session (relay/session.ts), exactly
 * as on Node. The Worker reaches the relay through RPC: `send` (config deltas),
 * `command` (waits for the relay's result while the call is open, so the object
 * stays in memory for it), `status` and `disconnect`.
 *
 * The object's alarm also drives the outbox between the Worker's once-a-minute Cron
 * Trigger: `wakeJobs` (after an enqueue) asks for an alarm now, `armJobAlarm` for one
 * at the next due job; the alarm runs due jobs with this object as the relay channel
 * and re-arms itself for the next one. One object per installation, so one alarm.
 */

import { DurableObject } from "cloudflare:workers";
import {
  CLOSE_REPLACED,
  CLOSE_TOKEN_REVOKED,
  type EdgeMessage,
  encodeMessage,
  type RelayCommand,
} from "@gosip/drizzle";
import { nextJobDueAt, runDueJobs } from "../../jobs/runner.ts";
import { DEFAULT_COMMAND_TIMEOUT_MS, PendingCommands } from "../../relay/commands.ts";
import {
  handleRelayFrame,
  linkStatus,
  newSocketState,
  type RelaySessionContext,
  type RelaySocket,
  type RelaySocketState,
  SerialQueue,
} from "../../relay/session.ts";
import { type EdgeDeps, type RelayCommandOutcome, type RelayLinkStatus, systemClock } from "../types.ts";
import { openWorkerRuntime, type WorkerEnv } from "./env.ts";

/** Header the Worker sets on the forwarded upgrade once the relay token is valid. */
export const RELAY_ID_HEADER = "X-GoSIP-Relay-Id";
/** The token's name, URI-encoded, for the status page. */
export const RELAY_NAME_HEADER = "X-GoSIP-Relay-Name";

/** Smallest gap between two job alarms, so jobs still due after a run (its cap, a busy breaker) cannot spin. */
export const JOB_ALARM_MIN_GAP_MS = 1_000;

function logError(msg: string, err: unknown): void {
  console.error(
    JSON.stringify({ level: "error", msg, err: err instanceof Error ? err.message : String(err) }),
  );
}

/**
 * Close codes 1005 (no status) and 1006 (abnormal) are reported to the peer's
 * close handler but may not be sent; passing them to `ws.close()` throws.
 */
export function closeCodeToSend(received: number): number {
  return received === 1005 || received === 1006 ? 1000 : received;
}

function adapter(ws: WebSocket): RelaySocket {
  return {
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    getState: () => ws.deserializeAttachment() as RelaySocketState,
    setState: (state) => ws.serializeAttachment(state),
  };
}

export class RelayLink extends DurableObject<WorkerEnv> {
  // Per instance, rebuilt after eviction: a cache and in-flight work, never state.
  private context: Promise<RelaySessionContext> | undefined;
  private readonly queue = new SerialQueue();
  private readonly commands = new PendingCommands();

  private jobDeps: Promise<EdgeDeps> | undefined;

  private sessionContext(): Promise<RelaySessionContext> {
    this.context ??= openWorkerRuntime(this.env, "relay-link").then((rt) => ({
      deps: { db: rt.db, logger: rt.logger, blobs: rt.blobs, clock: systemClock },
      commands: this.commands,
    }));
    this.context.catch(() => {
      this.context = undefined;
    });
    return this.context;
  }

  /** What outbox handlers get here: the Worker's deps, with this object as the relay channel. */
  private outboxDeps(): Promise<EdgeDeps> {
    this.jobDeps ??= openWorkerRuntime(this.env, "jobs").then(
      (rt): EdgeDeps => ({
        ...rt,
        clock: systemClock,
        runtime: "workers",
        relayChannel: {
          send: (message) => this.send(message),
          command: (command, timeoutMs) => this.command(command, timeoutMs),
          status: () => this.status(),
        },
        jobs: {
          wake: () => {
            this.armAt(Date.now()).catch((err: unknown) => logError("job alarm not set", err));
          },
        },
      }),
    );
    this.jobDeps.catch(() => {
      this.jobDeps = undefined;
    });
    return this.jobDeps;
  }

  /** Sets the alarm to `at` unless one is already due earlier. */
  private async armAt(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /** RPC from the Worker after an enqueue: run the outbox now. */
  async wakeJobs(): Promise<void> {
    await this.armAt(Date.now());
  }

  /** RPC (after the Cron Trigger's run) and after each alarm: an alarm at the next due job, if any. */
  async armJobAlarm(): Promise<number | null> {
    const next = await nextJobDueAt(await this.outboxDeps());
    if (!next) return null;
    const at = Math.max(next.getTime(), Date.now() + JOB_ALARM_MIN_GAP_MS);
    await this.armAt(at);
    return at;
  }

  override async alarm(): Promise<void> {
    try {
      await runDueJobs(await this.outboxDeps());
    } catch (err) {
      // The database was unreachable: try again in a minute (the Cron Trigger also will).
      logError("outbox run in the alarm failed", err);
      await this.armAt(Date.now() + 60_000);
      return;
    }
    try {
      await this.armJobAlarm();
    } catch (err) {
      logError("job alarm not re-armed", err);
    }
  }

  /** The socket that said hello (one live link per installation). */
  private liveSocket(): WebSocket | undefined {
    return this.ctx
      .getWebSockets()
      .find(
        (ws) =>
          ws.readyState === WebSocket.OPEN && (ws.deserializeAttachment() as RelaySocketState | null)?.hello,
      );
  }

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json(
        { error: { code: "bad_request", message: "Expected a WebSocket upgrade" } },
        { status: 426 },
      );
    }
    const relayId = request.headers.get(RELAY_ID_HEADER);
    if (!relayId) {
      return Response.json(
        { error: { code: "unauthorized", message: "Relay not authenticated" } },
        { status: 401 },
      );
    }
    let relayName = relayId;
    try {
      relayName = decodeURIComponent(request.headers.get(RELAY_NAME_HEADER) ?? relayId);
    } catch {
      // keep the id
    }
    // One live link per installation: a reconnecting relay replaces the old socket.
    for (const old of this.ctx.getWebSockets()) {
      old.close(CLOSE_REPLACED, "replaced by a newer connection");
    }
    this.commands.failAll();
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [relayId]);
    server.serializeAttachment(newSocketState({ id: relayId, name: relayName }, Date.now()));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.queue.run(async () => {
      let ctx: RelaySessionContext;
      try {
        ctx = await this.sessionContext();
      } catch (err) {
        console.error(
          JSON.stringify({
            level: "error",
            msg: "relay link has no database",
            err: err instanceof Error ? err.message : String(err),
          }),
        );
        ws.close(1011, "edge not ready, reconnect later");
        return;
      }
      await handleRelayFrame(ctx, adapter(ws), message);
    });
  }

  /** RPC: sends a frame to the relay once it said hello; false when none is connected. */
  async send(message: EdgeMessage): Promise<boolean> {
    let sent = false;
    // Behind the frame being handled, so a delta never overtakes the snapshot after a hello.
    await this.queue.run(async () => {
      const ws = this.liveSocket();
      if (!ws) return;
      ws.send(encodeMessage(message));
      sent = true;
    });
    return sent;
  }

  /** RPC: sends a command and waits for the relay's command-result. */
  async command(command: RelayCommand, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<RelayCommandOutcome> {
    return this.commands.run(command, timeoutMs, (message) => this.send(message));
  }

  /** RPC: the link as the status page shows it. */
  async status(): Promise<RelayLinkStatus> {
    const ws = this.liveSocket();
    return linkStatus(ws ? (ws.deserializeAttachment() as RelaySocketState) : undefined);
  }

  /** RPC from the Worker: close the sockets of a relay whose token was revoked; returns how many. */
  async disconnect(relayId: string): Promise<number> {
    const sockets = this.ctx.getWebSockets(relayId);
    for (const ws of sockets) ws.close(CLOSE_TOKEN_REVOKED, "relay token revoked");
    if (sockets.length > 0) this.commands.failAll();
    return sockets.length;
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    ws.close(closeCodeToSend(code), reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "relay link socket error",
        err: error instanceof Error ? error.message : String(error),
      }),
    );
    ws.close(1011, "socket error");
  }
}
