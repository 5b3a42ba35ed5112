/**
 * The few platform seams of the edge. Everything outside `platform/` receives
 * these through `EdgeDeps` and never asks which runtime it runs on (Node or Workers).
 */
import type { Db, EdgeMessage, RelayCommand } from "@gosip/drizzle";
import type { BlobStore } from "../blobs/store.ts";
import type { EdgeConfig } from "../config.ts";

/** Wall clock, injectable so lockouts and session expiry are testable. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Structured logger; messages never carry secrets or unmasked phone numbers. */
export interface Logger {
  debug(data: Record<string, unknown>, msg: string): void;
  info(data: Record<string, unknown>, msg: string): void;
  warn(data: Record<string, unknown>, msg: string): void;
  error(data: Record<string, unknown>, msg: string): void;
}

/**
 * Completes an authenticated relay's WebSocket upgrade on this runtime (Workers: the
 * RelayLink Durable Object). The relay feature checks the relay token, then calls it.
 */
export interface RelayLinkPort {
  accept(request: Request, relay: { id: string; name: string }): Promise<Response>;
  /** Close the live sockets of this relay token (it was revoked). */
  disconnect(relayId: string): Promise<void>;
}

/** What became of a command sent to the relay. */
export type RelayCommandOutcome =
  | { ok: true }
  | {
      ok: false;
      /** offline: no relay connected; timeout: no answer in time; refused: the relay said no. */
      reason: "offline" | "timeout" | "refused";
      error: string;
    };

/** The relay link as the dashboard shows it. */
export interface RelayLinkStatus {
  connected: boolean;
  /** Relay token id of the connected relay. */
  relayId: string | null;
  relayName: string | null;
  /** When the live link's hello arrived (ISO 8601). */
  since: string | null;
  /** From the relay's hello. */
  software: string | null;
  protocolVersion: number | null;
  /** Where the relay's SIP engine listens, e.g. "udp/192.0.2.10:5060". */
  sip: string[];
  /** Last config version the relay acknowledged. */
  configVersion: number | null;
}

/**
 * The edge → relay direction of the live link: config deltas, commands, status.
 * Node holds the socket in memory (relay/node-link.ts); Workers forwards to the
 * RelayLink Durable Object. Pushing never throws for an absent relay: `send`
 * answers false and `command` an "offline" outcome.
 */
export interface RelayChannel {
  /** Sends a frame to the connected relay (after its hello); false when none is connected. */
  send(message: EdgeMessage): Promise<boolean>;
  /** Sends a command and waits for its `command-result` (default 5 s). */
  command(command: RelayCommand, timeoutMs?: number): Promise<RelayCommandOutcome>;
  status(): Promise<RelayLinkStatus>;
}

/**
 * Wakes the outbox's job runner after an enqueue, so work due now (an auto-reply,
 * a voicemail email) starts at once instead of at the next tick. Node: the
 * in-process timer; Workers: the Durable Object alarm.
 */
export interface JobScheduler {
  wake(): void;
}

/** An email ready for a transport: attachments already read from the blob store. */
export interface OutgoingEmail {
  /** Sender, e.g. `"GoSIP" <pbx@example.com>`. */
  from: string;
  to: { address: string; name?: string };
  subject: string;
  text: string;
  html?: string;
  attachments: { filename: string; contentType: string; content: Uint8Array }[];
  /** Stable per outbox job, so a resent copy is recognisably the same message. */
  messageId?: string;
}

/** Where and how to reach an SMTP server (settings `email.smtp`). */
export interface SmtpServerOptions {
  host: string;
  port: number;
  /** TLS from the first byte (465); false: STARTTLS when the server offers it. */
  secure: boolean;
  username?: string;
  password?: string;
}

/**
 * SMTP delivery (Node: nodemailer). Workers have no SMTP transport, so there email
 * goes through Postmark's HTTP API only. A failure throws an Error that may carry
 * SMTP's `responseCode` (5xx: permanent) or a `code` like ECONNECTION / EAUTH.
 */
export interface SmtpTransport {
  send(server: SmtpServerOptions, email: OutgoingEmail): Promise<void>;
}

/** What every request handler can reach. Built once per process (Node) or per isolate (Workers). */
export interface EdgeDeps {
  db: Db;
  clock: Clock;
  config: EdgeConfig;
  logger: Logger;
  /** Runtime name for health output only; code must not branch on it. */
  runtime: "node" | "workers";
  /** Set where the runtime terminates relay WebSockets through the app (Workers). */
  relayLink?: RelayLinkPort;
  /** Pushes config and commands to the relay, and reports the link's state. */
  relayChannel: RelayChannel;
  /** Audio and other binary objects (files on Node, R2 on Workers). */
  blobs: BlobStore;
  /** The outbox runner's wake-up; absent where nothing runs jobs (some unit tests). */
  jobs?: JobScheduler;
  /** SMTP delivery where the runtime has it (Node); absent on Workers. */
  mail?: SmtpTransport;
}
