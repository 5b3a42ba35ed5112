/**
 * The relay link on Node: the authenticated GET /api/relay/connect is upgraded
 * by @hono/node-ws, and the socket is held in memory here. The Node entry wires it
 * once, after building the app:
 *
 *   const relayLink = new NodeRelayLink();
 *   const deps = { ..., relayChannel: relayLink };
 *   const app = createApp(deps, ...);
 *   const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app });
 *   attachNodeRelayLink(deps, upgradeWebSocket);
 *
 * Frames are handled by the runtime-neutral session (session.ts), one at a time
 * per socket; pushes from the API queue behind them, so a delta never overtakes
 * the snapshot it follows. One live link per installation: a relay that connects
 * again replaces its older (possibly half-open) socket.
 */
import {
  CLOSE_REPLACED,
  CLOSE_TOKEN_REVOKED,
  type EdgeMessage,
  encodeMessage,
  type RelayCommand,
} from "@gosip/drizzle";
import type { Context } from "hono";
import type { UpgradeWebSocket, WSContext } from "hono/ws";
import type { AppEnv } from "../env.ts";
import type { EdgeDeps, RelayChannel, RelayCommandOutcome, RelayLinkStatus } from "../platform/types.ts";
import { DEFAULT_COMMAND_TIMEOUT_MS, PendingCommands } from "./commands.ts";
import {
  handleRelayFrame,
  linkStatus,
  newSocketState,
  type RelaySocket,
  type RelaySocketState,
  SerialQueue,
} from "./session.ts";
import type { RelayIdentity } from "./tokens.ts";

/** Completes the upgrade of an authenticated relay request. */
export type RelayUpgrade = (c: Context<AppEnv>, relay: RelayIdentity) => Promise<Response>;

export { CLOSE_TOKEN_REVOKED };

interface LiveSocket {
  ws: WSContext;
  state: RelaySocketState;
  queue: SerialQueue;
  adapter: RelaySocket;
}

/** The Node RelayChannel: the live socket, its queue and the commands waiting on it. */
export class NodeRelayLink implements RelayChannel {
  private live: LiveSocket | undefined;
  private readonly commands = new PendingCommands();
  upgrade: RelayUpgrade | undefined;

  /** Wires the WebSocket helper; `deps` are the app's (database, logger, blobs). */
  attach(deps: EdgeDeps, upgradeWebSocket: UpgradeWebSocket): void {
    const ctx = { deps, commands: this.commands };
    this.upgrade = (c, relay) => {
      let mine: LiveSocket | undefined;
      return upgradeWebSocket(c, {
        onOpen: (_evt, ws) => {
          this.live?.ws.close(CLOSE_REPLACED, "replaced by a newer connection");
          this.commands.failAll();
          const entry: LiveSocket = {
            ws,
            state: newSocketState(relay, deps.clock.now()),
            queue: new SerialQueue(),
            adapter: {
              send: (data) => ws.send(data),
              close: (code, reason) => ws.close(code, reason),
              getState: () => entry.state,
              setState: (s) => {
                entry.state = s;
              },
            },
          };
          mine = entry;
          this.live = entry;
          deps.logger.info({ relayId: relay.id }, "relay connected");
        },
        onMessage: (evt, _ws) => {
          const entry = mine;
          if (!entry) return;
          void entry.queue.run(() => handleRelayFrame(ctx, entry.adapter, evt.data));
        },
        onClose: (evt) => {
          if (mine && this.live === mine) {
            this.live = undefined;
            this.commands.failAll();
          }
          deps.logger.info({ relayId: relay.id, code: evt.code }, "relay disconnected");
        },
      });
    };
  }

  /** Sends once the relay has said hello; queued behind the frames being handled. */
  async send(message: EdgeMessage): Promise<boolean> {
    const entry = this.live;
    if (!entry?.state.hello) return false;
    let sent = false;
    await entry.queue.run(async () => {
      if (this.live !== entry || !entry.state.hello) return;
      entry.ws.send(encodeMessage(message));
      sent = true;
    });
    return sent;
  }

  async command(command: RelayCommand, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<RelayCommandOutcome> {
    return this.commands.run(command, timeoutMs, (message) => this.send(message));
  }

  async status(): Promise<RelayLinkStatus> {
    return linkStatus(this.live?.state);
  }

  /**
   * Closes the live socket with 1001 "going away" (the edge is shutting down): an upgraded socket is not an
   * HTTP connection the server's close would end, and the relay reconnects to the next edge by itself.
   */
  shutdown(): void {
    const entry = this.live;
    if (!entry) return;
    entry.ws.close(1001, "edge shutting down");
    this.live = undefined;
    this.commands.failAll();
  }

  /** Closes the socket of a relay token (it was revoked); returns how many closed. */
  disconnect(tokenId: string): number {
    const entry = this.live;
    if (!entry || entry.state.relayId !== tokenId) return 0;
    entry.ws.close(CLOSE_TOKEN_REVOKED, "relay token revoked");
    this.live = undefined;
    this.commands.failAll();
    return 1;
  }
}

/** Wires the Node WebSocket helper for the relay endpoint of the app built with `deps`. */
export function attachNodeRelayLink(deps: EdgeDeps, upgradeWebSocket: UpgradeWebSocket): void {
  if (!(deps.relayChannel instanceof NodeRelayLink)) {
    throw new TypeError("attachNodeRelayLink: deps.relayChannel must be a NodeRelayLink");
  }
  deps.relayChannel.attach(deps, upgradeWebSocket);
}

/** The Node upgrade for this app, when the Node entry wired one. */
export function nodeRelayUpgrade(deps: EdgeDeps): RelayUpgrade | undefined {
  return deps.relayChannel instanceof NodeRelayLink ? deps.relayChannel.upgrade : undefined;
}

/** Closes every open socket of a relay token (after it was revoked). */
export function closeRelayConnections(deps: EdgeDeps, tokenId: string): void {
  if (deps.relayChannel instanceof NodeRelayLink) deps.relayChannel.disconnect(tokenId);
}
