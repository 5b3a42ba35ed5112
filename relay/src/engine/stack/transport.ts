// UDP and TCP transports on one host/port (RFC 3261 §18): datagram receive/send, TCP listen/connect with
// connection reuse keyed by remote address (inbound and outbound alike), StreamFramer framing, RFC 5626 CRLF
// keepalive answers, idle close and size/connection limits. Everything that comes off a socket is handed to the
// sink inside try/catch, so a bad message or a bug in a handler never takes the process down.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { lookup as dnsLookup, type LookupOneOptions } from "node:dns";
import {
  isIP,
  connect as netConnect,
  createServer as netCreateServer,
  type Server,
  type Socket,
} from "node:net";
import { StreamFramer } from "../sip/message.ts";
import { StackError } from "./errors.ts";
import type { Peer, TransportName } from "./index.ts";
import { ipv6Bytes } from "./network.ts";

/** Receives what the transports read. */
export interface TransportSink {
  onMessage(data: Buffer, source: Peer, local: Peer, conn: Connection | undefined): void;
  /** Framing error on a TCP stream (the connection is closed afterwards). */
  onStreamError(reason: string, source: Peer): void;
  /** Any exception caught at the socket boundary. */
  onInternalError(err: unknown): void;
}

/** Told when a send to it failed (connect refused, reset before the data left). */
export interface SendErrorTarget {
  onTransportError(err: Error): void;
}

export interface TransportOptions {
  host: string;
  port: number;
  transports: TransportName[];
  maxMessageSize: number;
  tcpIdleTimeout: number;
  maxConnections: number;
}

/** Largest amount of unsent data we queue for a slow TCP peer before dropping the connection. */
const MAX_TCP_BACKLOG = 4 * 1024 * 1024;
const CRLF = Buffer.from("\r\n");
const UDP_BUFFER = 4 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

export function peerKey(transport: TransportName, address: string, port: number): string {
  return `${transport}:${address}:${port}`;
}

/** One TCP connection, inbound or outbound, shared by every transaction with that remote address. */
export class Connection {
  lastActivity = Date.now();
  closed = false;
  corked = false;
  /** Error targets waiting for the connect to finish (outbound only). */
  waiters: SendErrorTarget[] | undefined;
  readonly remote: Peer;
  local: Peer;

  constructor(
    readonly socket: Socket,
    readonly key: string,
    address: string,
    port: number,
  ) {
    this.remote = { transport: "tcp", address, port };
    this.local = { transport: "tcp", address: socket.localAddress ?? "", port: socket.localPort ?? 0 };
  }
}

function normalizeAddress(address: string): string {
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; SIP headers want the plain IPv4 form.
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

export class Transports {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  /** Connections per remote address, oldest first; the newest carries new traffic (a peer may hold two). */
  private readonly connections = new Map<string, Connection[]>();
  /** Every open connection, for limits, idle sweeps and shutdown. */
  private readonly open = new Set<Connection>();
  private idleSweep: NodeJS.Timeout | undefined;
  private closed = false;
  udpLocal: Peer | undefined;
  tcpLocal: Peer | undefined;
  sent = 0;
  received = 0;
  dropped = 0;
  transportErrors = 0;

  private constructor(
    private readonly opts: TransportOptions,
    private readonly sink: TransportSink,
  ) {}

  static async open(opts: TransportOptions, sink: TransportSink): Promise<Transports> {
    const t = new Transports(opts, sink);
    try {
      let port = opts.port;
      // With port 0, UDP picks a free port first and TCP binds the same number; retry if TCP collides.
      for (let attempt = 0; ; attempt++) {
        try {
          if (opts.transports.includes("udp")) port = await t.bindUdp(opts.host, port);
          if (opts.transports.includes("tcp")) port = await t.bindTcp(opts.host, port);
          break;
        } catch (err) {
          await t.closeSockets();
          if (opts.port !== 0 || attempt >= 10) throw err;
          port = 0;
        }
      }
    } catch (err) {
      throw new StackError("bind", `cannot listen on ${opts.host}:${opts.port}`, { cause: err });
    }
    t.idleSweep = setInterval(() => t.sweepIdle(), Math.max(50, Math.min(opts.tcpIdleTimeout / 4, 30_000)));
    t.idleSweep.unref();
    return t;
  }

  get connectionCount(): number {
    return this.open.size;
  }

  private bindUdp(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const sock = createSocket({
        type: isIP(host) === 6 ? "udp6" : "udp4",
        reuseAddr: false,
        lookup: isIP(host) === 6 ? numericLookup6 : numericLookup,
      });
      sock.once("error", reject);
      sock.bind(port, host, () => {
        sock.off("error", reject);
        // Bursts (a registration storm, a load test) must not overflow the default ~200 KB kernel buffer;
        // the kernel caps this at net.core.rmem_max/wmem_max.
        try {
          sock.setRecvBufferSize(UDP_BUFFER);
          sock.setSendBufferSize(UDP_BUFFER);
        } catch {
          // keep the default size
        }
        sock.on("error", (err) => {
          this.transportErrors++;
          this.sink.onInternalError(err);
        });
        sock.on("message", (msg, rinfo) => this.onDatagram(msg, rinfo));
        const addr = sock.address();
        this.udp = sock;
        this.udpLocal = { transport: "udp", address: addr.address, port: addr.port };
        resolve(addr.port);
      });
    });
  }

  private bindTcp(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = netCreateServer({ noDelay: true }, (sock) => this.onInbound(sock));
      server.maxConnections = this.opts.maxConnections;
      server.once("error", reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off("error", reject);
        server.on("error", (err) => {
          this.transportErrors++;
          this.sink.onInternalError(err);
        });
        const addr = server.address();
        const actual = typeof addr === "object" && addr ? addr.port : port;
        this.tcp = server;
        this.tcpLocal = { transport: "tcp", address: host, port: actual };
        resolve(actual);
      });
    });
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    this.received++;
    if (msg.length > this.opts.maxMessageSize) {
      this.dropped++;
      return;
    }
    // Keepalives: CRLF pings need no answer over UDP; a STUN Binding request (RFC 5626 §4.4.2) gets its
    // Binding response; any other STUN or non-SIP binary is dropped.
    const first = msg[0];
    if (first === undefined || first === 0x0d || first === 0x0a || first === 0x00 || first === 0x01) {
      if (isBlank(msg)) return;
      if (first === 0x00 || first === 0x01) {
        const answer = stunBindingResponse(msg, normalizeAddress(rinfo.address), rinfo.port);
        if (answer && this.udp) this.udp.send(answer, rinfo.port, rinfo.address, this.onUdpSent);
        return;
      }
    }
    const local = this.udpLocal;
    if (local === undefined) return;
    try {
      this.sink.onMessage(
        msg,
        { transport: "udp", address: normalizeAddress(rinfo.address), port: rinfo.port },
        local,
        undefined,
      );
    } catch (err) {
      this.sink.onInternalError(err);
    }
  }

  private onInbound(sock: Socket): void {
    const address = normalizeAddress(sock.remoteAddress ?? "");
    const port = sock.remotePort ?? 0;
    if (address === "" || this.open.size >= this.opts.maxConnections) {
      sock.destroy();
      this.dropped++;
      return;
    }
    const key = peerKey("tcp", address, port);
    const conn = new Connection(sock, key, address, port);
    // A peer that also holds our outbound connection keeps both; new traffic goes over the newest.
    this.track(conn);
    this.wire(conn);
  }

  /** Attaches framing and lifecycle handlers to a connection's socket. */
  private wire(conn: Connection): void {
    const sock = conn.socket;
    sock.setNoDelay(true);
    const framer = new StreamFramer(
      (raw: Buffer) => {
        this.received++;
        try {
          this.sink.onMessage(raw, conn.remote, conn.local, conn);
        } catch (err) {
          this.sink.onInternalError(err);
        }
      },
      () => {
        // RFC 5626 §3.5.1: answer a double-CRLF ping with a single CRLF pong.
        if (!conn.closed) sock.write(CRLF);
      },
      (reason: string) => {
        this.dropped++;
        try {
          this.sink.onStreamError(reason, conn.remote);
        } catch (err) {
          this.sink.onInternalError(err);
        }
        this.closeConnection(conn);
      },
      { maxMessageSize: this.opts.maxMessageSize },
    );
    sock.on("data", (chunk: Buffer) => {
      conn.lastActivity = Date.now();
      try {
        framer.push(chunk);
      } catch (err) {
        this.sink.onInternalError(err);
        this.closeConnection(conn);
      }
    });
    sock.on("error", (err) => {
      this.transportErrors++;
      this.failWaiters(conn, err);
    });
    sock.on("close", () => {
      conn.closed = true;
      this.failWaiters(conn, new StackError("transport", "connection closed"));
      this.forget(conn);
    });
  }

  private failWaiters(conn: Connection, err: Error): void {
    const waiters = conn.waiters;
    conn.waiters = undefined;
    if (!waiters) return;
    for (const w of waiters) {
      try {
        w.onTransportError(err);
      } catch (e) {
        this.sink.onInternalError(e);
      }
    }
  }

  /** An open connection to this remote address, if any. */
  findConnection(address: string, port: number): Connection | undefined {
    const list = this.connections.get(peerKey("tcp", address, port));
    const c = list?.[list.length - 1];
    return c && !c.closed ? c : undefined;
  }

  /**
   * Sends one message. TCP: over `conn` when given and open, else over the connection to dest (reused or newly
   * opened). Failures are reported to `errorTarget` (asynchronously for connect errors).
   */
  send(dest: Peer, data: Buffer, conn?: Connection, errorTarget?: SendErrorTarget): void {
    if (this.closed) {
      this.dropped++;
      return;
    }
    this.sent++;
    // A bad destination (port 0 in a Via, a garbage address from a peer or an app) is a failed send, never a throw.
    const portOk = Number.isInteger(dest.port) && dest.port > 0 && dest.port < 65536;
    if (!portOk || isIP(dest.address) === 0) {
      this.reportSync(errorTarget, new StackError("transport", "invalid destination address"));
      return;
    }
    if (dest.transport === "udp") {
      const udp = this.udp;
      if (udp === undefined) {
        this.reportSync(errorTarget, new StackError("transport", "UDP transport not open"));
        return;
      }
      if (errorTarget) {
        udp.send(data, dest.port, dest.address, (err) => {
          if (err) {
            this.transportErrors++;
            errorTarget.onTransportError(err);
          }
        });
      } else udp.send(data, dest.port, dest.address, this.onUdpSent);
      return;
    }
    let c = conn && !conn.closed ? conn : this.findConnection(dest.address, dest.port);
    if (c === undefined) {
      if (this.tcp === undefined) {
        this.reportSync(errorTarget, new StackError("transport", "TCP transport not open"));
        return;
      }
      c = this.connect(dest);
      if (c === undefined) {
        this.reportSync(errorTarget, new StackError("transport", "too many connections"));
        return;
      }
    }
    if (errorTarget && c.waiters) c.waiters.push(errorTarget);
    if (c.socket.writableLength > MAX_TCP_BACKLOG) {
      this.dropped++;
      this.closeConnection(c);
      this.reportSync(errorTarget, new StackError("transport", "peer not reading"));
      return;
    }
    c.lastActivity = Date.now();
    // Messages sent to one connection in the same tick (a burst of responses, 100 + 180 + 200) leave in one writev.
    if (!c.corked) {
      c.corked = true;
      c.socket.cork();
      process.nextTick(uncork, c);
    }
    c.socket.write(data);
  }

  private readonly onUdpSent = (err: Error | null): void => {
    if (err) this.transportErrors++;
  };

  private reportSync(target: SendErrorTarget | undefined, err: Error): void {
    this.transportErrors++;
    if (!target) return;
    // Reported on the next tick so callers always finish setting up before the error arrives.
    queueMicrotask(() => target.onTransportError(err));
  }

  private connect(dest: Peer): Connection | undefined {
    if (this.open.size >= this.opts.maxConnections) return undefined;
    const sock = netConnect({ host: dest.address, port: dest.port, noDelay: true });
    const key = peerKey("tcp", dest.address, dest.port);
    const conn = new Connection(sock, key, dest.address, dest.port);
    conn.waiters = [];
    // A black-holed destination would otherwise hold the attempt (and queued messages) for the OS timeout.
    sock.setTimeout(CONNECT_TIMEOUT_MS, () => {
      sock.destroy(new StackError("transport", `TCP connect to ${dest.address}:${dest.port} timed out`));
    });
    sock.once("connect", () => {
      sock.setTimeout(0);
      conn.waiters = undefined;
      conn.local = { transport: "tcp", address: sock.localAddress ?? "", port: sock.localPort ?? 0 };
    });
    this.track(conn);
    this.wire(conn);
    return conn;
  }

  private track(conn: Connection): void {
    this.open.add(conn);
    const list = this.connections.get(conn.key);
    if (list) list.push(conn);
    else this.connections.set(conn.key, [conn]);
  }

  private forget(conn: Connection): void {
    conn.closed = true;
    if (!this.open.delete(conn)) return;
    const list = this.connections.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.connections.delete(conn.key);
  }

  private closeConnection(conn: Connection): void {
    this.forget(conn);
    conn.socket.destroy();
  }

  private sweepIdle(): void {
    const limit = Date.now() - this.opts.tcpIdleTimeout;
    for (const conn of [...this.open]) {
      if (conn.lastActivity < limit) this.closeConnection(conn);
    }
  }

  private async closeSockets(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idleSweep) clearInterval(this.idleSweep);
    for (const conn of [...this.open]) this.closeConnection(conn);
    await this.closeSockets();
  }
}

/**
 * dgram resolves every destination through dns.lookup, which for an IP literal still defers the send to the next
 * tick. The stack only ever sends to numeric addresses, so answer synchronously; names still go to the resolver.
 */
function numericLookup(
  address: string,
  family: number | LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const kind = isIP(address);
  if (kind !== 0) callback(null, address, kind);
  else dnsLookup(address, { family: typeof family === "number" ? family : (family.family ?? 0) }, callback);
}

/** Same for a dual-stack IPv6 socket (bound to "::"): IPv4 peers are addressed as IPv4-mapped IPv6. */
function numericLookup6(
  address: string,
  family: number | LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  if (isIP(address) === 4) callback(null, `::ffff:${address}`, 6);
  else numericLookup(address, family, callback);
}

const STUN_MAGIC = 0x2112a442;

/**
 * RFC 5389 Binding success response with XOR-MAPPED-ADDRESS for a Binding request (the RFC 5626 keepalive over
 * UDP, which also tells the phone its public address). Undefined for anything else.
 */
export function stunBindingResponse(req: Buffer, address: string, port: number): Buffer | undefined {
  if (req.length < 20 || req.readUInt16BE(0) !== 0x0001 || req.readUInt32BE(4) !== STUN_MAGIC)
    return undefined;
  if (req.readUInt16BE(2) !== req.length - 20) return undefined;
  const v4 = isIP(address) === 4;
  if (!v4 && isIP(address) !== 6) return undefined;
  const addrLen = v4 ? 4 : 16;
  const res = Buffer.alloc(20 + 4 + 4 + addrLen);
  res.writeUInt16BE(0x0101, 0);
  res.writeUInt16BE(4 + 4 + addrLen, 2);
  req.copy(res, 4, 4, 20); // magic cookie + transaction id
  res.writeUInt16BE(0x0020, 20); // XOR-MAPPED-ADDRESS
  res.writeUInt16BE(4 + addrLen, 22);
  res.writeUInt8(v4 ? 0x01 : 0x02, 25);
  res.writeUInt16BE(port ^ (STUN_MAGIC >>> 16), 26);
  if (v4) {
    const parts = address.split(".").map(Number);
    for (let i = 0; i < 4; i++) res.writeUInt8((parts[i] ?? 0) ^ (res[4 + i] ?? 0), 28 + i);
  } else {
    const bytes = ipv6Bytes(address) ?? new Uint8Array(16);
    // XOR with magic cookie + transaction id (bytes 4..19 of the header)
    for (let i = 0; i < 16; i++) res.writeUInt8((bytes[i] ?? 0) ^ (res[4 + i] ?? 0), 28 + i);
  }
  return res;
}

function uncork(conn: Connection): void {
  conn.corked = false;
  conn.socket.uncork();
}

function isBlank(msg: Buffer): boolean {
  for (const b of msg) if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09) return false;
  return true;
}
