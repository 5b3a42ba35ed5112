// Where to send a request for a registered contact. A phone behind NAT registers a Contact with its private
// address (or a port its NAT does not map); only the address its REGISTER came from reaches it. So the
// Request-URI stays the Contact URI (the phone expects to see its own URI) and the request is sent to the
// source address as next hop: drachtio-srf's `proxy` option (srf.createUAC(uri, { proxy }),
// srf.createB2BUA(req, res, uri, { proxy }), srf.request(uri, { method, proxy })) does exactly that.
import Srf from "drachtio-srf";
import type { Contact } from "../context.ts";
import { isPrivateAddress, unmapped } from "../defence/networks.ts";

/** What to put in the Request-URI, and the next hop to send it to (undefined: resolve the URI itself). */
export interface RequestTarget {
  uri: string;
  proxy: string | undefined;
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** Host and port a Contact URI names (port 5060 when absent), or undefined when it does not parse. */
export function contactHostPort(contactUri: string): { host: string; port: number } | undefined {
  try {
    const u = Srf.parseUri(contactUri);
    if (!u.host) return undefined;
    const port = Number(u.port ?? 0) || (u.scheme === "sips" ? 5061 : 5060);
    return { host: stripBrackets(u.host).toLowerCase(), port };
  } catch {
    return undefined;
  }
}

/**
 * True when the contact is not reachable at its Contact URI, only through the address its REGISTER came from:
 * another host than the source, a private Contact host from a public source, or (UDP, where the source port is
 * the phone's own listening port unless a NAT rewrote it) another port.
 */
export function isBehindNat(
  c: Pick<Contact, "contactUri" | "sourceAddress" | "sourcePort" | "transport">,
): boolean {
  const hp = contactHostPort(c.contactUri);
  if (hp === undefined) return true;
  const source = unmapped(c.sourceAddress).toLowerCase();
  if (hp.host !== source) return true;
  if (isPrivateAddress(hp.host) && !isPrivateAddress(source)) return true;
  return c.transport === "udp" && hp.port !== c.sourcePort;
}

/** The next hop that reaches the contact's source address over the transport it registered with. */
export function sourceHop(c: Pick<Contact, "sourceAddress" | "sourcePort" | "transport">): string {
  const host = unmapped(c.sourceAddress);
  const h = host.includes(":") ? `[${host}]` : host;
  return `sip:${h}:${c.sourcePort};transport=${c.transport}`;
}

/**
 * How to reach a registered contact: `{ uri: contact URI, proxy: source address (only when behind NAT) }`.
 * Use as `srf.createUAC(t.uri, { proxy: t.proxy, ... })`.
 */
export function contactTarget(contact: Contact): RequestTarget {
  return { uri: contact.contactUri, proxy: isBehindNat(contact) ? sourceHop(contact) : undefined };
}
