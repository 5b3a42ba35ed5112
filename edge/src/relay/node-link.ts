/**
 * The relay link on Node: the authenticated GET /api/relay/connect is upgraded
 * by @hono/node-ws. The Node entry wires it once, after building the app:
 *
 *   const app = createApp(deps, ...);
 *   const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app });
 *   attachNodeRelayLink(deps, upgradeWebSocket);
 *   injectWebSocket(serve({ fetch: app.fetch, port }));
 *
 * Only the `(c, events)` form of hono's UpgradeWebSocket is used, so any
 * runtime helper with that shape fits. Live sockets are tracked per relay
 * token so revoking a token disconnects its relay at once. Like the Workers
 * Durable Object, there is one live link per installation: a relay that
 * connects again replaces its older (possibly half-open) socket.
 */
import type { Context } from "hono";
import type { UpgradeWebSocket, WSContext } from "hono/ws";
import type { AppEnv } from "../env.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { answerRelayMessage, CLOSE_REPLACED, CLOSE_TOKEN_REVOKED } from "./protocol.ts";
import type { RelayIdentity } from "./tokens.ts";

/** Completes the upgrade of an authenticated relay request. */
export type RelayUpgrade = (c: Context<AppEnv>, relay: RelayIdentity) => Promise<Response>;

// Re-exported for callers that imported it from here first.
export { CLOSE_TOKEN_REVOKED };

interface NodeLink {
  upgrade: RelayUpgrade;
  /** Open sockets by relay token id. */
  sockets: Map<string, Set<WSContext>>;
}

// Keyed by the app's deps, so two apps in one process (tests) stay apart.
const links = new WeakMap<EdgeDeps, NodeLink>();

/** Wires the Node WebSocket helper for the relay endpoint of the app built with `deps`. */
export function attachNodeRelayLink(deps: EdgeDeps, upgradeWebSocket: UpgradeWebSocket): void {
  const sockets = new Map<string, Set<WSContext>>();
  const upgrade: RelayUpgrade = (c, relay) =>
    upgradeWebSocket(c, {
      onOpen: (_evt, ws) => {
        for (const old of [...sockets.values()].flatMap((s) => [...s])) {
          old.close(CLOSE_REPLACED, "replaced by a newer connection");
        }
        sockets.clear();
        const set = sockets.get(relay.id) ?? new Set<WSContext>();
        sockets.set(relay.id, set);
        set.add(ws);
        deps.logger.info({ relayId: relay.id }, "relay connected");
      },
      onMessage: (evt, ws) => {
        const reply = answerRelayMessage(evt.data, relay, deps.clock.now());
        if (reply.kind === "send") ws.send(reply.data);
        else ws.close(reply.code, reply.reason);
      },
      onClose: (evt, ws) => {
        sockets.get(relay.id)?.delete(ws);
        deps.logger.info({ relayId: relay.id, code: evt.code }, "relay disconnected");
      },
    });
  links.set(deps, { upgrade, sockets });
}

/** The Node upgrade for this app, when the Node entry wired one. */
export function nodeRelayUpgrade(deps: EdgeDeps): RelayUpgrade | undefined {
  return links.get(deps)?.upgrade;
}

/** Closes every open socket of a relay token (after it was revoked). */
export function closeRelayConnections(deps: EdgeDeps, tokenId: string): void {
  const set = links.get(deps)?.sockets.get(tokenId);
  if (!set) return;
  for (const ws of set) ws.close(CLOSE_TOKEN_REVOKED, "relay token revoked");
  set.clear();
}
