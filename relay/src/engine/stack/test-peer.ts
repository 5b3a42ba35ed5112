// Raw UDP/TCP SIP peers for the stack's tests and benchmark: they send exact text and collect what comes back,
// so the tests see the wire the way a phone would (no SIP library on the far side).
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import { StreamFramer } from "../sip/message.ts";

export interface Received {
  text: string;
  address: string;
  port: number;
  /** performance.now() at arrival. */
  at: number;
}

/** Collects messages and lets a test wait for the next one matching a predicate. */
class Inbox {
  readonly all: Received[] = [];
  private waiters: { match: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];
  private cursor = 0;

  push(m: Received): void {
    this.all.push(m);
    const i = this.waiters.findIndex((w) => w.match(m));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      this.cursor = this.all.length;
      w?.resolve(m);
    }
  }

  /** Next message (not yet returned by next()) matching `match`, waiting up to timeoutMs. */
  next(match: (m: Received) => boolean = () => true, timeoutMs = 10_000): Promise<Received> {
    for (let i = this.cursor; i < this.all.length; i++) {
      const m = this.all[i];
      if (m && match(m)) {
        this.cursor = i + 1;
        return Promise.resolve(m);
      }
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: Received) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching message within ${timeoutMs} ms (got ${this.all.length} in total)`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  count(match: (m: Received) => boolean): number {
    return this.all.filter(match).length;
  }
}

export class UdpPeer extends Inbox {
  private constructor(
    readonly socket: UdpSocket,
    readonly port: number,
  ) {
    super();
  }

  static async open(): Promise<UdpPeer> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    // bursts of responses (the 2,000-transaction test) must not overflow the default kernel buffer
    socket.setRecvBufferSize(4 * 1024 * 1024);
    const peer = new UdpPeer(socket, socket.address().port);
    socket.on("message", (msg, rinfo) =>
      peer.push({
        text: msg.toString("utf8"),
        address: rinfo.address,
        port: rinfo.port,
        at: performance.now(),
      }),
    );
    return peer;
  }

  send(text: string | Buffer, port: number, address = "127.0.0.1"): void {
    this.socket.send(typeof text === "string" ? Buffer.from(text) : text, port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export class TcpPeer extends Inbox {
  keepalivePongs = 0;

  private constructor(readonly socket: Socket) {
    super();
  }

  static async connect(port: number, address = "127.0.0.1"): Promise<TcpPeer> {
    const socket = connect({ port, host: address });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    return TcpPeer.wrap(socket);
  }

  static wrap(socket: Socket): TcpPeer {
    const peer = new TcpPeer(socket);
    const framer = new StreamFramer(
      (raw) =>
        peer.push({
          text: raw.toString("utf8"),
          address: socket.remoteAddress ?? "",
          port: socket.remotePort ?? 0,
          at: performance.now(),
        }),
      () => {},
      () => socket.destroy(),
    );
    socket.on("data", (chunk: Buffer) => {
      // A bare CRLF between messages is the RFC 5626 pong to our ping.
      if (chunk.length === 2 && chunk[0] === 13 && chunk[1] === 10) peer.keepalivePongs++;
      else framer.push(chunk);
    });
    socket.on("error", () => {});
    return peer;
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface RequestOptions {
  method: string;
  /** sent-by port in the Via (the peer's own port). */
  viaPort: number;
  viaHost?: string;
  transport?: "UDP" | "TCP";
  branch?: string;
  callId?: string;
  cseq?: number;
  fromTag?: string;
  toTag?: string;
  rport?: boolean;
  uri?: string;
  body?: string;
  extra?: string[];
}

let seq = 0;

/** A syntactically complete request as a phone would send it. */
export function sipRequest(o: RequestOptions): string {
  seq++;
  const branch = o.branch ?? `z9hG4bKtest${seq}`;
  const body = o.body ?? "";
  const lines = [
    `${o.method} ${o.uri ?? "sip:bob@127.0.0.1"} SIP/2.0`,
    `Via: SIP/2.0/${o.transport ?? "UDP"} ${o.viaHost ?? "127.0.0.1"}:${o.viaPort};branch=${branch}${o.rport ? ";rport" : ""}`,
    "Max-Forwards: 70",
    `From: <sip:alice@127.0.0.1>;tag=${o.fromTag ?? "ft1"}`,
    `To: <sip:bob@127.0.0.1>${o.toTag ? `;tag=${o.toTag}` : ""}`,
    `Call-ID: ${o.callId ?? `call-${seq}`}`,
    `CSeq: ${o.cseq ?? 1} ${o.method}`,
    ...(o.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ];
  return lines.join("\r\n");
}

/** Polls until `cond` holds (tests on a loaded machine must not depend on fixed sleeps for things that happen). */
export async function until(cond: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Status code of a response text, or 0 for a request. */
export function statusOf(text: string): number {
  return text.startsWith("SIP/2.0 ") ? Number(text.slice(8, 11)) : 0;
}

/** Value of the first header line with this (long) name, case-insensitive. */
export function headerOf(text: string, name: string): string | undefined {
  const lower = `\r\n${name.toLowerCase()}:`;
  const i = text.toLowerCase().indexOf(lower);
  if (i < 0) return undefined;
  const start = i + lower.length;
  const end = text.indexOf("\r\n", start);
  return text.slice(start, end < 0 ? undefined : end).trim();
}

/** Builds a response text to a request text (copies Via/From/To/Call-ID/CSeq), as a far-end UAS would. */
export function sipResponse(request: string, status: number, reason: string, toTag?: string): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const line of request.split("\r\n")) {
    const name = line.slice(0, line.indexOf(":")).toLowerCase();
    if (name === "via" || name === "from" || name === "call-id" || name === "cseq") lines.push(line);
    if (name === "to") lines.push(toTag && !line.includes("tag=") ? `${line};tag=${toTag}` : line);
  }
  lines.push("Content-Length: 0", "", "");
  return lines.join("\r\n");
}
