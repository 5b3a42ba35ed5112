/**
 * The relay's end of the sync link: one WebSocket to `${EDGE_URL}/api/relay/connect`,
 * authenticated with the relay token, speaking drizzle's sync protocol.
 *
 * - Reconnects with exponential backoff and jitter (0.5 s doubling to 30 s); the
 *   backoff resets once a connection has stayed up a while, so a flapping edge is
 *   not hammered. A rejected token (401/403 at the upgrade, or close 4001) and a
 *   protocol version mismatch (4002) are logged as such and retried slowly: they
 *   need an admin, not a tight loop.
 * - hello → hello-ack starts the outbox sender; config → directory (stored) →
 *   config-ack; command → command bus → command-result; ack/nack → outbox.
 * - Pings every 20 s; two pings unanswered mark the link dead (a half-open TCP
 *   connection never reports a close by itself), the socket is terminated and a
 *   new one opened.
 * - A frame that fails validation is logged and ignored: the edge may be newer
 *   than the relay, and dropping the link would only lose the frames after it.
 */
import {
  CLOSE_PROTOCOL_VERSION,
  CLOSE_REPLACED,
  CLOSE_TOKEN_REVOKED,
  type EdgeMessage,
  encodeMessage,
  MAX_SYNC_MESSAGE_BYTES,
  parseEdgeMessage,
  type RelayMessage,
  SYNC_PROTOCOL_VERSION,
} from "@gosip/drizzle";
import type { Logger } from "pino";
import WebSocket, { type RawData } from "ws";
import type { CommandRouter } from "./commands.ts";
import type { LocalDirectory } from "./directory.ts";
import type { Outbox } from "./outbox.ts";

/** Path of the relay endpoint on the edge. */
export const RELAY_CONNECT_PATH = "/api/relay/connect";

export interface EdgeLinkTimings {
  /** Between pings (default 20 s). */
  pingIntervalMs: number;
  /** Pings in a row without an answer that mark the link dead (default 2). */
  maxMissedPongs: number;
  /** From the socket opening to hello-ack (default 10 s). */
  helloTimeoutMs: number;
  /** First reconnect delay (default 0.5 s), doubling up to `maxBackoffMs` (default 30 s). */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Retry delay after the edge refused the token or the protocol version (default 60 s). */
  slowRetryMs: number;
  /** A connection up this long resets the backoff (default 10 s). */
  stableAfterMs: number;
  /** How long `close()` waits for the edge to answer the close frame (default 2 s). */
  closeTimeoutMs: number;
}

export const defaultEdgeLinkTimings: EdgeLinkTimings = {
  pingIntervalMs: 20_000,
  maxMissedPongs: 2,
  helloTimeoutMs: 10_000,
  minBackoffMs: 500,
  maxBackoffMs: 30_000,
  slowRetryMs: 60_000,
  stableAfterMs: 10_000,
  closeTimeoutMs: 2_000,
};

export interface EdgeLinkOptions {
  /** The edge's base URL, http(s) or ws(s). */
  edgeUrl: string;
  relayToken: string;
  /** Relay software version for the edge's dashboard. */
  software: string;
  /** The SIP engine's host-ports, read at each hello (they are known only once srf connected). */
  hostports: () => readonly string[];
  directory: LocalDirectory;
  outbox: Outbox;
  commands: CommandRouter;
  log: Logger;
  now?: () => number;
  timings?: Partial<EdgeLinkTimings>;
  /** [0, 1) source for the backoff jitter (tests pin it). */
  random?: () => number;
}

export interface EdgeLinkStatus {
  /** hello-ack received and the socket still open. */
  connected: boolean;
  /** When the current state (connected or not) began, ms since the epoch. */
  since: number;
  /** Connection attempts after the first one (failed attempts included). */
  reconnects: number;
  /** Why the last connection ended or failed (never contains the token). */
  lastError: string | null;
  /** Frames from the edge that failed validation and were ignored. */
  invalidFrames: number;
}

/** The WebSocket URL of the relay endpoint for an edge base URL (http→ws, https→wss). */
export function relayConnectUrl(edgeUrl: string): string {
  const url = new URL(edgeUrl);
  const protocols: Record<string, string> = {
    "http:": "ws:",
    "https:": "wss:",
    "ws:": "ws:",
    "wss:": "wss:",
  };
  const protocol = protocols[url.protocol];
  if (!protocol) throw new Error(`EDGE_URL must be an http(s) or ws(s) URL (got ${url.protocol})`);
  url.protocol = protocol;
  url.pathname = `${url.pathname.replace(/\/+$/, "")}${RELAY_CONNECT_PATH}`;
  url.search = "";
  url.hash = "";
  return url.toString();
}

function frameText(data: RawData, isBinary: boolean): unknown {
  // A binary frame is handed to the parser as bytes, which it refuses as "text frames only".
  if (isBinary) return data;
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

type Retry = "backoff" | "slow";

export class EdgeLink {
  readonly #url: string;
  readonly #opts: EdgeLinkOptions;
  readonly #t: EdgeLinkTimings;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;

  #ws: WebSocket | undefined;
  #started = false;
  #closing = false;
  #attempt = 0;
  #attempts = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #helloTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #stableTimer: NodeJS.Timeout | undefined;
  #awaitingPong = false;
  #missedPongs = 0;
  #connected = false;
  #since: number;
  #lastError: string | null = null;
  #lastLogged: string | null = null;
  #invalidFrames = 0;
  #upWaiters: (() => void)[] = [];

  constructor(options: EdgeLinkOptions) {
    this.#url = relayConnectUrl(options.edgeUrl);
    this.#opts = options;
    this.#t = { ...defaultEdgeLinkTimings, ...options.timings };
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#since = this.#now();
  }

  /** Opens the link (and keeps it open until `close`). */
  start(): void {
    if (this.#started || this.#closing) return;
    this.#started = true;
    this.#connect();
  }

  status(): EdgeLinkStatus {
    return {
      connected: this.#connected,
      since: this.#since,
      reconnects: Math.max(0, this.#attempts - 1),
      lastError: this.#lastError,
      invalidFrames: this.#invalidFrames,
    };
  }

  /** Resolves once the link is up (hello-ack received), however long that takes (never, after `close`); for tests. */
  whenConnected(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    return new Promise((resolve) => this.#upWaiters.push(resolve));
  }

  /** Closes the link cleanly (close frame 1000) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    this.#clearSessionTimers();
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) {
      this.#down();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, this.#t.closeTimeoutMs);
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "relay shutting down");
      else ws.terminate();
    });
    this.#down();
  }

  #connect(): void {
    if (this.#closing) return;
    this.#attempts++;
    let rejectedStatus: number | undefined;
    const ws = new WebSocket(this.#url, {
      headers: { Authorization: `Bearer ${this.#opts.relayToken}` },
      maxPayload: MAX_SYNC_MESSAGE_BYTES,
      handshakeTimeout: this.#t.helloTimeoutMs,
    });
    this.#ws = ws;

    ws.on("unexpected-response", (_req, res) => {
      rejectedStatus = res.statusCode;
      res.resume();
      ws.terminate();
    });
    ws.on("error", (err) => {
      this.#lastError = err.message;
    });
    ws.on("open", () => {
      this.#helloTimer = setTimeout(() => {
        this.#lastError = "no hello-ack from the edge";
        ws.terminate();
      }, this.#t.helloTimeoutMs);
      let hostports: readonly string[] = [];
      try {
        hostports = this.#opts.hostports().slice(0, 16);
      } catch (err) {
        // A hello without the SIP address is still a hello.
        this.#log.warn({ err }, "edge link: SIP host-ports unavailable for hello");
      }
      const version = this.#opts.directory.configVersion();
      this.#sendOn(ws, {
        type: "hello",
        v: SYNC_PROTOCOL_VERSION,
        software: this.#opts.software.slice(0, 64),
        ...(version !== undefined ? { configVersion: version } : {}),
        ...(hostports.length > 0 ? { sip: [...hostports] } : {}),
      });
    });
    ws.on("message", (data, isBinary) => {
      if (this.#ws !== ws) return;
      this.#onFrame(ws, frameText(data, isBinary));
    });
    ws.on("close", (code, reasonBuf) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#clearSessionTimers();
      this.#down();
      if (this.#closing) return;
      const reason = reasonBuf.toString("utf8");
      this.#scheduleRetry(this.#classify(code, reason, rejectedStatus));
    });
  }

  #classify(code: number, reason: string, rejectedStatus: number | undefined): Retry {
    if (rejectedStatus === 401 || rejectedStatus === 403) {
      this.#lastError = `relay token rejected by the edge (HTTP ${rejectedStatus})`;
      this.#logOnce(
        "error",
        `${this.#lastError}: check RELAY_TOKEN (create a relay token in the admin UI); retrying slowly`,
      );
      return "slow";
    }
    if (rejectedStatus !== undefined) {
      this.#lastError = `edge refused the upgrade (HTTP ${rejectedStatus})`;
      this.#logOnce("warn", this.#lastError);
      return "backoff";
    }
    if (code === CLOSE_TOKEN_REVOKED) {
      this.#lastError = "relay token rejected by the edge (revoked)";
      this.#logOnce("error", `${this.#lastError}: set RELAY_TOKEN to a new relay token; retrying slowly`);
      return "slow";
    }
    if (code === CLOSE_PROTOCOL_VERSION) {
      this.#lastError = `edge speaks another sync protocol version: ${reason || "no reason given"}`;
      this.#logOnce(
        "error",
        `${this.#lastError} (this relay speaks v${SYNC_PROTOCOL_VERSION}); update the relay or the edge; retrying slowly`,
      );
      return "slow";
    }
    if (code === CLOSE_REPLACED) {
      this.#lastError = "replaced by a newer connection of this installation's relay";
      this.#logOnce(
        "warn",
        `edge link closed: ${this.#lastError} (is a second relay running with this token?)`,
      );
      return "backoff";
    }
    if (code !== 1005 && code !== 1006)
      this.#lastError = `closed by the edge (${code}${reason ? `: ${reason}` : ""})`;
    this.#logOnce("warn", `edge link down: ${this.#lastError ?? `closed (${code})`}`);
    return "backoff";
  }

  /** Repeating the same failure every retry would flood the log while the edge is away. */
  #logOnce(level: "warn" | "error", message: string): void {
    if (message === this.#lastLogged) this.#log.debug(message);
    else this.#log[level](message);
    this.#lastLogged = message;
  }

  #scheduleRetry(kind: Retry): void {
    let delay: number;
    if (kind === "slow") {
      delay = this.#t.slowRetryMs * (0.8 + 0.4 * this.#random());
    } else {
      const base = Math.min(this.#t.maxBackoffMs, this.#t.minBackoffMs * 2 ** this.#attempt);
      // Equal jitter: never sooner than half the base, so relays restarting together spread out.
      delay = base / 2 + (base / 2) * this.#random();
      this.#attempt = Math.min(this.#attempt + 1, 30);
    }
    this.#log.debug({ delayMs: Math.round(delay) }, "edge link: reconnecting");
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #up(ws: WebSocket): void {
    clearTimeout(this.#helloTimer);
    this.#connected = true;
    this.#since = this.#now();
    this.#lastLogged = null;
    this.#log.info({ reconnects: this.status().reconnects }, "edge link up");
    this.#stableTimer = setTimeout(() => {
      this.#attempt = 0;
    }, this.#t.stableAfterMs);
    this.#awaitingPong = false;
    this.#missedPongs = 0;
    this.#ping(ws);
    this.#pingTimer = setInterval(() => this.#ping(ws), this.#t.pingIntervalMs);
    this.#opts.outbox.start((frame) => {
      if (ws.readyState !== WebSocket.OPEN) return false;
      ws.send(frame);
      return true;
    });
    for (const resolve of this.#upWaiters.splice(0)) resolve();
  }

  #down(): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.#since = this.#now();
    this.#opts.outbox.stop();
  }

  #clearSessionTimers(): void {
    clearTimeout(this.#helloTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#stableTimer);
  }

  #ping(ws: WebSocket): void {
    if (this.#awaitingPong) {
      this.#missedPongs++;
      if (this.#missedPongs >= this.#t.maxMissedPongs) {
        this.#lastError = `no answer to ${this.#missedPongs} pings: link dead`;
        this.#log.warn(`edge link: ${this.#lastError}; reconnecting`);
        ws.terminate();
        return;
      }
    }
    this.#awaitingPong = true;
    this.#sendOn(ws, { type: "ping", t: this.#now() });
  }

  #sendOn(ws: WebSocket, message: RelayMessage): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(encodeMessage(message));
  }

  #onFrame(ws: WebSocket, data: unknown): void {
    const parsed = parseEdgeMessage(data);
    if (!parsed.ok) {
      this.#invalidFrames++;
      // The first few in full, then a sample: a broken edge must not flood the log.
      if (this.#invalidFrames <= 10 || this.#invalidFrames % 1000 === 0) {
        this.#log.warn(
          { code: parsed.code, count: this.#invalidFrames },
          `edge sent an invalid frame, ignored: ${parsed.reason}`,
        );
      }
      return;
    }
    // Any valid frame shows the link is alive, not only a pong.
    this.#awaitingPong = false;
    this.#missedPongs = 0;
    this.#handle(ws, parsed.message);
  }

  #handle(ws: WebSocket, message: EdgeMessage): void {
    switch (message.type) {
      case "hello-ack":
        if (message.v !== SYNC_PROTOCOL_VERSION) {
          ws.close(CLOSE_PROTOCOL_VERSION, `relay speaks v${SYNC_PROTOCOL_VERSION}, edge v${message.v}`);
          return;
        }
        if (!this.#connected) this.#up(ws);
        return;
      case "config":
        this.#opts.directory.applyConfig(message).then(
          () => this.#sendOn(ws, { type: "config-ack", version: message.version }),
          (err: unknown) => {
            // Nothing was applied; a new connection starts with a full snapshot, which repairs it.
            this.#lastError = "could not store a config message";
            this.#log.error(
              { err, version: message.version, full: message.full },
              "edge link: config not applied; reconnecting for a snapshot",
            );
            ws.terminate();
          },
        );
        return;
      case "command":
        void this.#opts.commands.dispatch(message.command).then((result) =>
          this.#sendOn(ws, {
            type: "command-result",
            id: message.id,
            ok: result.ok,
            ...(result.ok ? {} : { error: result.error }),
          }),
        );
        return;
      case "ack":
        this.#opts.outbox.acked(message.keys);
        return;
      case "nack":
        this.#opts.outbox.nacked(message.key, message.error);
        return;
      case "pong":
        return;
    }
  }
}
