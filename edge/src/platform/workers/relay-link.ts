/**
 * RelayLink: the Durable Object that holds the on-prem relay's WebSocket on
 * Workers. The Worker forwards the upgrade here only after the relay token was
 * checked (the relay id arrives in RELAY_ID_HEADER). Hibernation API: the object
 * may be evicted between messages while the socket stays open, so no state lives
 * in memory; each socket carries its relay id as an attachment.
 *
 * Messages are answered by the runtime-neutral relay protocol (relay/protocol.ts),
 * exactly as on Node; for now that is `hello` → `hello-ack`, the sync protocol
 * comes later.
 */
import { DurableObject } from "cloudflare:workers";
import { answerRelayMessage, CLOSE_REPLACED, CLOSE_TOKEN_REVOKED } from "../../relay/protocol.ts";

/** Header the Worker sets on the forwarded upgrade once the relay token is valid. */
export const RELAY_ID_HEADER = "X-GoSIP-Relay-Id";

interface SocketAttachment {
  relayId: string;
  connectedAt: number;
}

/**
 * Close codes 1005 (no status) and 1006 (abnormal) are reported to the peer's
 * close handler but may not be sent; passing them to `ws.close()` throws.
 */
export function closeCodeToSend(received: number): number {
  return received === 1005 || received === 1006 ? 1000 : received;
}

export class RelayLink extends DurableObject {
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
    // One live link per installation: a reconnecting relay replaces the old socket.
    for (const old of this.ctx.getWebSockets()) {
      old.close(CLOSE_REPLACED, "replaced by a newer connection");
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [relayId]);
    const attachment: SocketAttachment = { relayId, connectedAt: Date.now() };
    server.serializeAttachment(attachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const { relayId } = ws.deserializeAttachment() as SocketAttachment;
    const reply = answerRelayMessage(message, { id: relayId }, Date.now());
    if (reply.kind === "send") ws.send(reply.data);
    else ws.close(reply.code, reply.reason);
  }

  /** RPC from the Worker: close the sockets of a relay whose token was revoked; returns how many. */
  async disconnect(relayId: string): Promise<number> {
    const sockets = this.ctx.getWebSockets(relayId);
    for (const ws of sockets) ws.close(CLOSE_TOKEN_REVOKED, "relay token revoked");
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
