/**
 * Client address on Node: the TCP peer of the socket, as @hono/node-server's
 * getConnInfo reports it. Headers (X-Forwarded-For, Forwarded, X-Real-IP,
 * CF-Connecting-IP) are never consulted: any client can write them.
 */
import type { IncomingMessage } from "node:http";

/** For `createApp({ clientIp })` on @hono/node-server, whose env bindings carry the raw request. */
export function nodeClientIp(_req: Request, env: unknown): string {
  const incoming = (env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const address = incoming?.socket.remoteAddress;
  if (!address) return "unknown";
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; count them as the IPv4 address.
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
