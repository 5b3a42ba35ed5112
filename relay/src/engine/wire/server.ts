// The admin TCP server drachtio-srf applications connect to: shared-secret authentication, ping/pong,
// per-method routes with round-robin selection among the connected apps, and one AppSession per connection
// that tracks what the app has in flight so it can be cleaned up when the app goes away.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { encodeFrame, FrameDecoder, type FramingError, MAX_FRAME_BYTES } from "./framing.ts";
import { type AppMessage, failLeader, parseAppMessage, replyLeader } from "./protocol.ts";

/** What the SIP side of the engine does with application traffic. */
export interface AppHandler {
  /** A `sip` message from an authenticated app (tokens after the type, and the raw SIP). */
  onSip(app: AppSession, msg: AppMessage): void;
  /** A `proxy` message (srf req.proxy()): forward the received request to the app's destinations. */
  onProxy(app: AppSession, msg: AppMessage): void;
  /** The app's connection closed: release everything it owned. */
  onAppClosed(app: AppSession): void;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  secret: string;
  /**
   * `udp/1.2.3.4:5060,tcp/1.2.3.4:5060`, returned to apps on authentication (srf's 'connect' hostport): the
   * addresses others reach us at, the external address when one is configured.
   */
  hostports: string;
  /** The same for the addresses actually bound (srf's 'connect' 4th argument, drachtio's local hostports). */
  localHostports?: string;
  /** drachtio-server version string we claim (>= v0.8.2 enables srf pings). */
  version: string;
  handler: AppHandler;
  /** Close connections that have not authenticated within this time, ms. */
  authTimeout?: number;
  onError?: (err: Error) => void;
}

let sessionCounter = 0;
/** Frame size limit before authentication (an authenticate frame is a few dozen bytes). */
const UNAUTHENTICATED_MAX_FRAME = 4096;
/** Bytes queued to an app that does not read before it is disconnected. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;

/** One connected application. */
export class AppSession {
  readonly id = ++sessionCounter;
  authenticated = false;
  closed = false;
  tags: string[] = [];
  readonly routes = new Set<string>();
  /** Ids of incoming requests delivered to this app that still await its final response. */
  readonly netTxns = new Set<string>();
  /** Ids of requests this app sent that still await a final response. */
  readonly appTxns = new Set<string>();
  /** Dialog ids this app owns. */
  readonly dialogs = new Set<string>();

  constructor(readonly socket: Socket) {}

  get remote(): string {
    return `${this.socket.remoteAddress ?? "?"}:${this.socket.remotePort ?? 0}`;
  }

  private corked = false;

  /**
   * Write one frame (leader + optional raw SIP) as one buffer. Frames produced in the same event-loop turn are
   * corked and leave in one writev, so a burst of SIP traffic costs one syscall instead of one per message.
   * `flush` sends what is queued at once: used for frames that make srf create a Dialog, so that a request in
   * that dialog queued right after is not in the same TCP read (srf would handle it before the app's code that
   * awaits the Dialog has attached its listeners).
   */
  send(leader: string, sip?: Buffer | string, flush = false): void {
    if (this.closed || this.socket.destroyed) return;
    if (this.socket.writableLength > MAX_PENDING_BYTES) {
      // the app stopped reading: drop it rather than buffer without bound (its calls are cleaned up on close)
      this.socket.destroy();
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    this.socket.write(encodeFrame(leader, sip));
    if (flush) this.uncork();
  }

  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  };

  reply(msgId: string, ok: boolean, extra?: string): void {
    this.send(replyLeader(msgId, ok, extra));
  }

  /**
   * A refused `sip`/`proxy` request: `NOK|<reason>`, as drachtio-server's route_api_response writes it (its
   * `NO` is only used for the connection-level messages: authenticate, route, unknown types).
   */
  fail(msgId: string, reason: string): void {
    this.send(failLeader(msgId, reason));
  }
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

export class AdminServer {
  private readonly server: Server;
  private readonly sessions = new Set<AppSession>();
  /** method (lower-case) → apps that routed it, in routing order */
  private readonly routes = new Map<string, AppSession[]>();
  private readonly offsets = new Map<string, number>();
  private readonly secretDigest: Buffer;
  port = 0;

  private constructor(private readonly opts: AdminServerOptions) {
    this.secretDigest = digest(opts.secret);
    this.server = createServer((socket) => this.accept(socket));
    this.server.on("error", (err) => opts.onError?.(err));
  }

  /** Listen on host:port (port 0 = ephemeral) and resolve once bound. */
  static listen(opts: AdminServerOptions): Promise<AdminServer> {
    const admin = new AdminServer(opts);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      admin.server.once("error", onError);
      admin.server.listen(opts.port, opts.host, () => {
        admin.server.off("error", onError);
        const addr = admin.server.address();
        admin.port = typeof addr === "object" && addr !== null ? addr.port : opts.port;
        resolve(admin);
      });
    });
  }

  /** Connected, authenticated apps. */
  get apps(): AppSession[] {
    return [...this.sessions].filter((s) => s.authenticated && !s.closed);
  }

  /** The methods (and cdr:* record types) at least one connected app routes, lower-case. */
  routedMethods(): IterableIterator<string> {
    return this.routes.keys();
  }

  /** Round-robin over the apps that routed this method; undefined when none did. */
  selectApp(method: string): AppSession | undefined {
    const key = method.toLowerCase();
    const list = this.routes.get(key);
    if (list === undefined || list.length === 0) return undefined;
    const i = (this.offsets.get(key) ?? 0) % list.length;
    this.offsets.set(key, i + 1);
    return list[i];
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    const app = new AppSession(socket);
    this.sessions.add(app);
    const authTimer = setTimeout(() => {
      if (!app.authenticated) socket.destroy();
    }, this.opts.authTimeout ?? 10_000);
    authTimer.unref();
    const decoder = new FrameDecoder(
      (payload) => {
        const wasAuthenticated = app.authenticated;
        this.onFrame(app, payload);
        // until it has authenticated, a connection may only send small frames
        if (!wasAuthenticated && app.authenticated) decoder.maxFrame = MAX_FRAME_BYTES;
      },
      (err: FramingError) => {
        this.opts.onError?.(new Error(`app ${app.remote}: ${err.message}; closing`));
        socket.destroy();
      },
      UNAUTHENTICATED_MAX_FRAME,
    );
    socket.on("data", (chunk: Buffer) => decoder.push(chunk));
    socket.on("error", () => {
      // 'close' follows; nothing else to do
    });
    socket.on("close", () => {
      clearTimeout(authTimer);
      decoder.stop();
      this.drop(app);
    });
  }

  private drop(app: AppSession): void {
    if (app.closed) return;
    app.closed = true;
    this.sessions.delete(app);
    for (const method of app.routes) this.unroute(app, method);
    if (app.authenticated) this.opts.handler.onAppClosed(app);
  }

  private unroute(app: AppSession, method: string): void {
    const list = this.routes.get(method);
    if (list === undefined) return;
    const i = list.indexOf(app);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.routes.delete(method);
  }

  private onFrame(app: AppSession, payload: Buffer): void {
    if (app.closed) return;
    const msg = parseAppMessage(payload);
    if (msg === undefined) {
      this.opts.onError?.(new Error(`app ${app.remote}: frame without message id/type; closing`));
      app.socket.destroy();
      return;
    }
    if (!app.authenticated) {
      if (msg.type !== "authenticate") {
        app.reply(msg.msgId, false, "not authenticated");
        app.socket.end();
        return;
      }
      this.authenticate(app, msg);
      return;
    }
    switch (msg.type) {
      case "sip":
        this.opts.handler.onSip(app, msg);
        return;
      case "ping":
        app.reply(msg.msgId, true, "pong");
        return;
      case "proxy":
        this.opts.handler.onProxy(app, msg);
        return;
      case "route": {
        const method = (msg.args[0] ?? "").toLowerCase();
        if (method === "") {
          app.reply(msg.msgId, false, "Route request includes unsupported verb");
          return;
        }
        if (!app.routes.has(method)) {
          app.routes.add(method);
          const list = this.routes.get(method);
          if (list === undefined) this.routes.set(method, [app]);
          else list.push(app);
        }
        app.reply(msg.msgId, true);
        return;
      }
      case "remove_route": {
        const method = (msg.args[0] ?? "").toLowerCase();
        app.routes.delete(method);
        this.unroute(app, method);
        app.reply(msg.msgId, true);
        return;
      }
      case "authenticate":
        app.reply(msg.msgId, true, this.loginReply());
        return;
      default:
        // drachtio-server (client.cpp processClientMessage) answers unknown types with this NO (and then drops
        // the connection; we keep it: srf never sends other types, and a probe should not cost the app its calls)
        app.reply(msg.msgId, false, "Unknown message type");
    }
  }

  private authenticate(app: AppSession, msg: AppMessage): void {
    const given = digest(msg.args[0] ?? "");
    if (!timingSafeEqual(given, this.secretDigest)) {
      app.reply(msg.msgId, false, "incorrect secret");
      app.socket.end();
      return;
    }
    app.authenticated = true;
    const tags = msg.args[1];
    if (tags) app.tags = tags.split(",").filter((t) => t.length > 0);
    app.reply(msg.msgId, true, this.loginReply());
  }

  /** `<hostports>|<version>|<local hostports>`, as drachtio-server's processAuthentication answers. */
  private loginReply(): string {
    const { hostports, version, localHostports } = this.opts;
    return `${hostports}|${version}|${localHostports ?? hostports}`;
  }
}
