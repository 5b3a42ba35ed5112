/**
 * Test support: a small edge that speaks the sync protocol faithfully on
 * 127.0.0.1 (a `ws` server behind a plain HTTP server, so the upgrade can be
 * refused with 401 like the real edge does). Every relay frame is validated
 * with `parseRelayMessage`; an invalid one closes the socket with the parser's
 * code and is recorded, so a test can assert the relay never sent one.
 *
 * Knobs let a test break the link in the ways the real world does: refuse the
 * token, stop answering pings, cut the socket mid-stream, nack events, send
 * frames that do not validate.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import {
  type ConfigMessage,
  type EdgeMessage,
  encodeMessage,
  parseRelayMessage,
  type RelayCommand,
  type RelayEvent,
  type RelayMessage,
} from "@gosip/drizzle";
import WebSocket, { WebSocketServer } from "ws";
import { RELAY_CONNECT_PATH } from "./edge-link.ts";

type Hello = Extract<RelayMessage, { type: "hello" }>;
type EventFrame = Extract<RelayMessage, { type: "event" }>;

export interface FakeEdgeOptions {
  token: string;
  /** The config snapshot sent after hello-ack (none when undefined). */
  snapshot?: () => ConfigMessage | undefined;
}

export interface FakeConnection {
  ws: WebSocket;
  hello: Hello | undefined;
  /** Keys of event frames received on this connection, in order. */
  keys: string[];
  /** The close code the socket ended with (undefined while open). */
  closeCode: number | undefined;
}

export class FakeEdge {
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #opts: FakeEdgeOptions;
  port = 0;

  /** What the upgrade answers: 101, or refuse with this HTTP status. */
  refuseWith: number | undefined;
  answerPings = true;
  /** Ack events as they come (false: a test acks with `ackAll`). */
  autoAck = true;
  /** Events for which this returns an error string are nacked instead of stored. */
  nackIf: ((event: RelayEvent) => string | undefined) | undefined;
  /** Called for every event frame after it was stored (before its ack), e.g. to cut the link. */
  onEvent: ((frame: EventFrame, conn: FakeConnection) => void) | undefined;

  readonly connections: FakeConnection[] = [];
  /** Upgrade requests seen, refused ones included. */
  upgrades = 0;
  /** Stored events by idempotency key: each key once, whatever the repeats. */
  readonly stored = new Map<string, RelayEvent>();
  /** Every event frame, repeats included. */
  readonly received: EventFrame[] = [];
  readonly acksSent = new Map<string, number>();
  readonly nacked: string[] = [];
  readonly configAcks: number[] = [];
  /** Frames from the relay that failed validation: must stay empty. */
  readonly invalid: string[] = [];
  readonly pings: number[] = [];
  #commandSeq = 0;
  #pending = new Map<string, (r: { ok: boolean; error?: string }) => void>();
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(options: FakeEdgeOptions) {
    this.#opts = options;
    this.#wss = new WebSocketServer({ noServer: true });
    this.#http = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    this.#http.on("upgrade", (req, socket, head) => this.#upgrade(req, socket, head));
    this.#wss.on("connection", (ws) => this.#connection(ws));
  }

  static async start(options: FakeEdgeOptions, port = 0): Promise<FakeEdge> {
    const edge = new FakeEdge(options);
    await new Promise<void>((resolve, reject) => {
      edge.#http.once("error", reject);
      edge.#http.listen(port, "127.0.0.1", () => resolve());
    });
    edge.port = (edge.#http.address() as AddressInfo).port;
    return edge;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The newest connection, when open. */
  get live(): FakeConnection | undefined {
    const last = this.connections.at(-1);
    return last && last.ws.readyState === WebSocket.OPEN ? last : undefined;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades++;
    // A client that gives up mid-handshake resets the socket; that is not the test's failure.
    socket.on("error", () => {});
    this.#settle();
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const status =
      path !== RELAY_CONNECT_PATH
        ? 404
        : req.headers.authorization !== `Bearer ${this.#opts.token}`
          ? 401
          : this.refuseWith;
    if (status !== undefined) {
      socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#wss.emit("connection", ws, req));
  }

  #connection(ws: WebSocket): void {
    const conn: FakeConnection = { ws, hello: undefined, keys: [], closeCode: undefined };
    this.connections.push(conn);
    ws.on("message", (data, isBinary) => {
      const parsed = parseRelayMessage(isBinary ? data : data.toString());
      if (!parsed.ok) {
        this.invalid.push(parsed.reason);
        ws.close(parsed.code, parsed.reason);
        return;
      }
      this.#frame(conn, parsed.message);
      this.#settle();
    });
    ws.on("close", (code) => {
      conn.closeCode = code;
      this.#settle();
    });
    this.#settle();
  }

  #send(ws: WebSocket, message: EdgeMessage): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(encodeMessage(message));
  }

  #frame(conn: FakeConnection, message: RelayMessage): void {
    const { ws } = conn;
    if (!conn.hello && message.type !== "hello") {
      this.invalid.push(`${message.type} before hello`);
      ws.close(1008, "hello first");
      return;
    }
    switch (message.type) {
      case "hello": {
        conn.hello = message;
        this.#send(ws, { type: "hello-ack", v: 1, relayId: "relay-test", serverTime: Date.now() });
        const snapshot = this.#opts.snapshot?.();
        if (snapshot) this.#send(ws, snapshot);
        return;
      }
      case "event": {
        this.received.push(message);
        conn.keys.push(message.key);
        const error = this.nackIf?.(message.event);
        if (error !== undefined) {
          this.nacked.push(message.key);
          this.#send(ws, { type: "nack", key: message.key, error });
          return;
        }
        if (!this.stored.has(message.key)) this.stored.set(message.key, message.event);
        this.onEvent?.(message, conn);
        if (this.autoAck) this.ack(ws, [message.key]);
        return;
      }
      case "config-ack":
        this.configAcks.push(message.version);
        return;
      case "command-result": {
        const resolve = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        resolve?.(
          message.error === undefined ? { ok: message.ok } : { ok: message.ok, error: message.error },
        );
        return;
      }
      case "ping":
        this.pings.push(message.t);
        if (this.answerPings) this.#send(ws, { type: "pong", t: message.t });
        return;
    }
  }

  ack(ws: WebSocket, keys: string[]): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    for (const k of keys) this.acksSent.set(k, (this.acksSent.get(k) ?? 0) + 1);
    for (let i = 0; i < keys.length; i += 1000)
      this.#send(ws, { type: "ack", keys: keys.slice(i, i + 1000) });
  }

  /** Acknowledges every stored event on the live connection. */
  ackAll(): void {
    const live = this.live;
    if (live) this.ack(live.ws, [...this.stored.keys()]);
  }

  sendConfig(message: ConfigMessage): void {
    const live = this.live;
    if (!live) throw new Error("no relay connected");
    this.#send(live.ws, message);
  }

  /** A raw text (or binary) frame, for the relay's validation. */
  sendRaw(data: string | Buffer): void {
    const live = this.live;
    if (!live) throw new Error("no relay connected");
    live.ws.send(data);
  }

  command(command: RelayCommand): Promise<{ ok: boolean; error?: string }> {
    const live = this.live;
    if (!live) throw new Error("no relay connected");
    const id = `cmd-${++this.#commandSeq}`;
    const result = new Promise<{ ok: boolean; error?: string }>((resolve) => this.#pending.set(id, resolve));
    this.#send(live.ws, { type: "command", id, command });
    return result;
  }

  /** Cuts every socket without a close frame (as a crash or a dead network does). */
  terminateAll(): void {
    for (const c of this.connections) c.ws.terminate();
  }

  /** Closes the live socket with a code, as the edge does for a revoked token or another version. */
  closeLive(code: number, reason: string): void {
    this.live?.ws.close(code, reason);
  }

  /**
   * Resolves when `check` holds: re-evaluated on every frame, connection and close, and
   * every 20 ms for conditions on the relay's side (its outbox depth).
   */
  until(check: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const poll = setInterval(() => this.#settle(), 20);
      const timer = setTimeout(() => {
        clearInterval(poll);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`fake edge: timed out waiting for ${what}`));
      }, timeoutMs);
      const waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }

  #settle(): void {
    for (const w of [...this.#waiters]) {
      if (w.check()) {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.resolve();
      }
    }
  }

  async close(): Promise<void> {
    this.terminateAll();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }
}
