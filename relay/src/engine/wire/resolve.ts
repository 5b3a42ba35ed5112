// Next-hop resolution for requests apps send to host names (e.g. a Twilio SIP Domain): the stack resolves numeric
// addresses itself; for names this does RFC 3263-lite with the system resolver: SRV (_sip._udp / _sip._tcp) when
// no port is given, then the address of the host (A/AAAA via getaddrinfo, so /etc/hosts works). Results are
// cached briefly so a burst of calls does not become a burst of DNS queries.
import { lookup, resolveSrv } from "node:dns/promises";
import { isIP } from "node:net";
import { parseUri } from "../sip/message.ts";
import type { Peer, SipStack, TransportName } from "../stack/index.ts";

const CACHE_MS = 60_000;
const cache = new Map<string, { peer: Peer; until: number }>();

export class ResolveError extends Error {
  override readonly name = "ResolveError";
}

/** The destination for a SIP URI: synchronous for numeric hosts, a promise when DNS is needed. */
export function resolveTarget(stack: SipStack, uri: string): Peer | Promise<Peer> {
  try {
    return stack.resolve(uri);
  } catch (err) {
    const parsed = parseUri(/^sips?:/i.test(uri) ? uri : `sip:${uri}`);
    if (parsed === undefined || parsed.host === "" || isIP(parsed.host.replace(/^\[|\]$/g, "")) !== 0)
      throw err;
    const secure = parsed.scheme === "sips";
    const param = parsed.params.get("transport")?.toLowerCase();
    const transport: TransportName = secure || param === "tcp" || param === "tls" ? "tcp" : "udp";
    const host = parsed.params.get("maddr") ?? parsed.host;
    const key = `${transport}|${host}|${parsed.port ?? ""}`;
    const hit = cache.get(key);
    if (hit !== undefined && hit.until > Date.now()) return hit.peer;
    return lookupPeer(host, parsed.port, transport).then((peer) => {
      cache.set(key, { peer, until: Date.now() + CACHE_MS });
      return peer;
    });
  }
}

async function lookupPeer(host: string, port: number | undefined, transport: TransportName): Promise<Peer> {
  let target = host;
  let targetPort = port;
  if (port === undefined) {
    try {
      const srv = await resolveSrv(`_sip._${transport}.${host}`);
      srv.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
      const best = srv[0];
      if (best !== undefined) {
        target = best.name;
        targetPort = best.port;
      }
    } catch {
      // no SRV records: use the host's address records (RFC 3263 §4.2)
    }
  }
  try {
    const { address } = await lookup(target);
    return { transport, address, port: targetPort ?? 5060 };
  } catch {
    throw new ResolveError(`cannot resolve ${host}`);
  }
}
