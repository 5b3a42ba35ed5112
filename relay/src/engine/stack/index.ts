// Public face of the SIP stack (Contract 2): transports (UDP, TCP), RFC 3581 rport/received,
// RFC 3261 §18 response routing and §17 transactions with the RFC 6026 Accepted state.
// The drachtio wire-protocol layer (engine/wire, engine/dialog) builds on these types only.
import type { SipRequest, SipResponse } from "../sip/message.ts";
import type { RespondOptions } from "./transactions.ts";

export { StackError, type StackErrorCode } from "./errors.ts";
export { SipStack } from "./stack.ts";
export type { RespondOptions } from "./transactions.ts";

export type TransportName = "udp" | "tcp";

/** A remote (or local) transport address. Addresses are numeric IPs (IPv6 without brackets). */
export interface Peer {
  transport: TransportName;
  address: string;
  port: number;
}

export interface TimerOptions {
  /** RTT estimate, ms (default 500). */
  T1?: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, ms (default 4000). */
  T2?: number;
  /** Maximum duration a message will remain in the network, ms (default 5000). */
  T4?: number;
}

export interface StackOptions {
  /** Bind address, e.g. "127.0.0.1", "0.0.0.0", "::". */
  host: string;
  /** Bind port for both UDP and TCP; 0 = ephemeral (UDP picks, TCP binds the same number). */
  port: number;
  /** Transports to open (default both). */
  transports?: TransportName[];
  /** Advertised in Via (and by the agent in Contact) for peers outside localNetworks. */
  externalAddress?: string;
  /** CIDRs that are "inside": peers here get the local address, never externalAddress. */
  localNetworks?: string[];
  timers?: TimerOptions;
  /** Largest accepted message (datagram or framed TCP message), bytes. Default 65535. */
  maxMessageSize?: number;
  /** TCP connections without traffic for this long are closed, ms. Default 600000 (10 min). */
  tcpIdleTimeout?: number;
  /** Upper bound of simultaneous TCP connections (inbound + outbound). Default 10000. */
  maxConnections?: number;
}

/** A request as it arrived, after the stack added received/rport to its top Via. */
export interface IncomingRequest {
  request: SipRequest;
  /** The exact bytes received (before the top Via was touched). */
  raw: Buffer;
  source: Peer;
  /** Date.now() at arrival. */
  receivedAt: number;
  /** Our own listening address/port the message arrived on. */
  local: Peer;
}

/** An ACK to a 2xx (end-to-end, no transaction of its own) or a stray ACK. */
export interface IncomingAck extends IncomingRequest {
  /** The INVITE server transaction whose 2xx this ACK acknowledges (RFC 6026 Accepted state), if still known. */
  transaction?: ServerTransaction;
}

export interface StackStats {
  /** Live server transactions, including the compact records that absorb retransmissions until timer J/L. */
  serverTransactions: number;
  /** Live client transactions, including the compact records of timers D/K. */
  clientTransactions: number;
  /** INVITE server transactions in Accepted state (2xx retransmitted, waiting for ACK or timer L). */
  accepted: number;
  connections: number;
  timers: number;
  received: number;
  sent: number;
  parseErrors: number;
  transportErrors: number;
  /** Messages dropped: too large, stray responses, framing errors, connection limits. */
  dropped: number;
  /** Responses that matched no client transaction (also counted in dropped). */
  strayResponses: number;
  /** Exceptions caught at socket/timer boundaries or thrown by event listeners. */
  internalErrors: number;
}

export type ServerTransactionState =
  | "trying"
  | "proceeding"
  | "completed"
  | "accepted"
  | "confirmed"
  | "terminated";
export type ClientTransactionState =
  | "calling"
  | "trying"
  | "proceeding"
  | "completed"
  | "accepted"
  | "terminated";

export interface ServerTransaction {
  /** Unique per stack instance ("s" + counter). */
  readonly id: string;
  readonly method: string;
  /** The request that created the transaction (top Via already carries received/rport). */
  readonly request: SipRequest;
  readonly source: Peer;
  readonly state: ServerTransactionState;
  /**
   * Sends a response (routing per §18.2.2 + RFC 3581) and returns the exact wire text.
   * A final 2xx to INVITE enters the Accepted state: it is retransmitted (T1 doubling to T2) until the ACK
   * arrives ("ack") or 64*T1 passes ("ack-timeout"). Further 2xx in Accepted are sent too (TU retransmits).
   * With `{ proxied: true }` a 2xx to INVITE is sent once and not retransmitted by the stack (its ACK goes end to
   * end, not to us): the transaction stays Accepted until timer L so the TU can forward 2xx retransmissions from
   * downstream through respond(), and never emits "ack"/"ack-timeout".
   * Calling respond once the transaction is done (after a non-2xx final, e.g. the stack's 487 to a CANCEL, or
   * after the ACK of its 2xx, or after a non-INVITE final) is ignored and returns "". A missing To tag on a non-100 response is filled in (same tag for the whole transaction).
   */
  respond(res: SipResponse, opts?: RespondOptions): string;
  /**
   * INVITE in Accepted without an ACK yet: the dialog has ended (e.g. a BYE), so stop retransmitting the 2xx and
   * never emit "ack-timeout". A late ACK is still absorbed. No effect in any other state.
   */
  stopRetransmitting(): void;
  on(event: "ack", cb: (ack: IncomingAck) => void): this;
  on(event: "ack-timeout", cb: () => void): this;
  /** The stack already answered 200 to the CANCEL and 487 to this INVITE. */
  on(event: "cancel", cb: (cancel: IncomingRequest) => void): this;
  on(event: "transport-error", cb: (err: Error) => void): this;
  /**
   * INVITE: after timer H/I (non-2xx), at the ACK of the 2xx or at ack-timeout. Non-INVITE: as soon as the final
   * response is sent. (The stack keeps absorbing retransmissions of the request for the rest of 64*T1 in a compact
   * record, invisible to the TU.)
   */
  on(event: "terminated", cb: () => void): this;
}

export interface ClientTransaction {
  /** Unique per stack instance ("c" + counter). */
  readonly id: string;
  readonly method: string;
  /** The request as sent (our top Via included). */
  readonly request: SipRequest;
  /** Exact text sent. */
  readonly wire: string;
  readonly destination: Peer;
  /** The branch of our top Via. */
  readonly branch: string;
  readonly state: ClientTransactionState;
  /**
   * Provisional and final responses, and for INVITE 2xx retransmissions too (RFC 6026 Accepted state),
   * so the TU can re-send its ACK. Response retransmissions of non-2xx finals are absorbed.
   */
  on(event: "response", cb: (res: SipResponse, raw: Buffer, source: Peer) => void): this;
  /** Timer B/F fired: the caller should treat it as 408. */
  on(event: "timeout", cb: () => void): this;
  /** Connect/send failure: the caller should treat it as 503. */
  on(event: "transport-error", cb: (err: Error) => void): this;
  /**
   * Right after a final response, except a 2xx to INVITE (then after timer M, 64*T1, which passes 2xx
   * retransmissions up). Over UDP a compact record keeps absorbing retransmitted finals (re-sending the ACK for a
   * non-2xx INVITE final) until timer D/K, invisible to the TU.
   */
  on(event: "terminated", cb: () => void): this;
  /**
   * Sends a CANCEL for this pending INVITE (§9.1): same Request-URI, Call-ID, To, From, CSeq number and top Via.
   * If no provisional response arrived yet, the CANCEL is held and sent when the first one arrives.
   * Returns undefined when this is not an INVITE or a final response was already received.
   * `extraHeaders` are appended to the CANCEL (e.g. Reason).
   */
  cancel(extraHeaders?: [name: string, value: string][]): ClientTransaction | undefined;
}
