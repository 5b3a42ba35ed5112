// Address helpers for the defence and the registrar: trusted-network matching (CIDR lists, IPv4 and IPv6,
// IPv4-mapped IPv6 treated as IPv4) and private/loopback address detection (NAT heuristics).
import { BlockList, isIP } from "node:net";

/** A set of CIDR networks ("192.168.1.0/24", "10.0.0.0/8", "fd00::/8", a bare address = one host). */
export class NetworkSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    let n = 0;
    for (const cidr of cidrs) if (this.add(cidr)) n++;
    this.size = n;
  }

  private add(cidr: string): boolean {
    const [addr = "", bits] = cidr.trim().split("/");
    const family = isIP(addr);
    if (family === 0) return false;
    const type = family === 4 ? "ipv4" : "ipv6";
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return false;
    this.list.addSubnet(addr, prefix, type);
    return true;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const a = unmapped(address);
    const family = isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? "ipv4" : "ipv6");
  }
}

/** "::ffff:192.0.2.1" → "192.0.2.1" (dual-stack sockets report IPv4 peers that way). */
export function unmapped(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

const PRIVATE = new NetworkSet([
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10", // carrier-grade NAT
  "169.254.0.0/16",
  "127.0.0.0/8",
  "fc00::/7",
  "fe80::/10",
  "::1/128",
]);

/** Dotted-quad IPv4 to its 32-bit value, or undefined (the registrar's hot path: no BlockList objects). */
function ipv4(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3) return undefined;
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

const PRIVATE_V4: readonly [number, number][] = [
  [0x0a000000, 8],
  [0xac100000, 12],
  [0xc0a80000, 16],
  [0x64400000, 10],
  [0xa9fe0000, 16],
  [0x7f000000, 8],
];

/** RFC 1918 / CGNAT / link-local / loopback / ULA: an address that only means something behind a NAT. */
export function isPrivateAddress(address: string): boolean {
  const v4 = ipv4(unmapped(address));
  if (v4 !== undefined)
    return PRIVATE_V4.some(
      ([net, bits]) => Math.floor(v4 / 2 ** (32 - bits)) === Math.floor(net / 2 ** (32 - bits)),
    );
  return PRIVATE.has(address);
}
