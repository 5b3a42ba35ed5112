// Address helpers: CIDR membership for localNetworks, loopback detection, and which local interface address
// a peer reaches us on when we are bound to a wildcard address (what goes into Via/Contact).
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

function ipv4Bytes(address: string): Uint8Array | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** 16 bytes of an IPv6 address (IPv4-mapped tails and zone ids allowed); undefined when invalid. */
export function ipv6Bytes(address: string): Uint8Array | undefined {
  let addr = address;
  const zone = addr.indexOf("%");
  if (zone >= 0) addr = addr.slice(0, zone);
  // IPv4-mapped tail (::ffff:1.2.3.4)
  let tail: Uint8Array | undefined;
  const lastColon = addr.lastIndexOf(":");
  if (addr.includes(".", lastColon)) {
    tail = ipv4Bytes(addr.slice(lastColon + 1));
    if (tail === undefined) return undefined;
    addr = `${addr.slice(0, lastColon)}:0:0`;
  }
  const halves = addr.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const groups = [...head, ...new Array<string>(missing).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const n = Number.parseInt(groups[i] ?? "", 16);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff) return undefined;
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** Parses "10.0.0.0/8", "fd00::/8" or a bare address (full-length prefix). Undefined when invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = "", len] = text.trim().split("/");
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return undefined;
  const bytes = family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr);
  if (!bytes) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { family, bytes, prefix };
}

/** True when `address` lies inside `cidr` (IPv4-mapped IPv6 addresses match IPv4 ranges). */
export function cidrContains(cidr: Cidr, address: string): boolean {
  let family = isIP(address);
  let bytes = family === 4 ? ipv4Bytes(address) : family === 6 ? ipv6Bytes(address) : undefined;
  if (!bytes) return false;
  if (family === 6 && cidr.family === 4 && address.toLowerCase().startsWith("::ffff:")) {
    bytes = bytes.slice(12);
    family = 4;
  }
  if (family !== cidr.family) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

export function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127.");
}

export function isWildcard(address: string): boolean {
  return address === "0.0.0.0" || address === "::" || address === "";
}

/** Host part for a Via sent-by / URI: IPv6 in brackets. */
export function hostForUri(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}

/** Strips IPv6 brackets from a Via/URI host. */
export function bareHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Chooses the local interface address a peer most likely reaches us on: loopback for loopback peers,
 * else the interface whose subnet holds the peer, else the first external interface of the same family.
 */
export class InterfacePicker {
  private readonly cache = new Map<string, string>();

  pick(dest: string): string {
    const hit = this.cache.get(dest);
    if (hit !== undefined) return hit;
    const picked = this.compute(dest);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(dest, picked);
    return picked;
  }

  private compute(dest: string): string {
    const v6 = isIP(dest) === 6 && !dest.toLowerCase().startsWith("::ffff:");
    if (isLoopback(dest)) return v6 ? "::1" : "127.0.0.1";
    let fallback: string | undefined;
    for (const list of Object.values(networkInterfaces())) {
      for (const nic of list ?? []) {
        if (nic.internal || (nic.family === "IPv6") !== v6) continue;
        const cidr = parseCidr(nic.cidr ?? "");
        if (cidr && cidrContains(cidr, dest)) return nic.address;
        if (fallback === undefined && !(v6 && nic.address.startsWith("fe80"))) fallback = nic.address;
      }
    }
    return fallback ?? (v6 ? "::1" : "127.0.0.1");
  }
}
