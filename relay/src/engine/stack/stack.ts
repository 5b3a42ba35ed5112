// SipStack: owns the transports and the transaction layer and is the single object the agent talks to.
import type { SipRequest, SipResponse } from "../sip/message.ts";
import { StackError } from "./errors.ts";
import type {
  ClientTransaction,
  IncomingAck,
  IncomingRequest,
  Peer,
  ServerTransaction,
  StackOptions,
  StackStats,
  TransportName,
} from "./index.ts";

export interface StackEvents {
  /** A new server transaction (never ACK or CANCEL). */
  request: (st: ServerTransaction, msg: IncomingRequest) => void;
  /** ACK to a 2xx (or stray). `msg.transaction` is set when it matched an Accepted INVITE transaction. */
  ack: (msg: IncomingAck) => void;
  /** The stack answered 200 to the CANCEL and 487 to the INVITE already. */
  cancel: (st: ServerTransaction, cancel: IncomingRequest) => void;
  "parse-error": (reason: string, source: Peer) => void;
  /** A response that matched no client transaction (e.g. 2xx retransmission after the transaction ended). */
  "stray-response": (res: SipResponse, raw: Buffer, source: Peer) => void;
}

export class SipStack {
  /** What we listen on (resolved ports when 0 was given). */
  readonly hostports: { transport: TransportName; address: string; port: number }[] = [];

  /** Binds UDP and TCP on opts.host:opts.port and resolves once both listen. */
  static async listen(_opts: StackOptions): Promise<SipStack> {
    throw new StackError("bind", "not implemented yet");
  }

  on<E extends keyof StackEvents>(_event: E, _cb: StackEvents[E]): this {
    return this;
  }

  off<E extends keyof StackEvents>(_event: E, _cb: StackEvents[E]): this {
    return this;
  }

  /** Starts a client transaction; prepends our top Via (branch z9hG4bK…, rport) unless already ours. */
  sendRequest(_req: SipRequest, _dest: Peer): ClientTransaction {
    throw new StackError("closed", "not implemented yet");
  }

  /** Stateless send of an ACK for a 2xx (fresh top Via/branch); returns the wire text. */
  sendAck(_ack: SipRequest, _dest: Peer): string {
    throw new StackError("closed", "not implemented yet");
  }

  /** RFC 3263-lite: host[:port][;transport=]; numeric IPs and localhost only. Throws StackError("unresolvable"). */
  resolve(_uri: string): Peer {
    throw new StackError("unresolvable", "not implemented yet");
  }

  /** The address/port we advertise to `dest` (externalAddress outside localNetworks), for Via and Contact. */
  advertisedAddress(_dest: Peer): Peer {
    throw new StackError("closed", "not implemented yet");
  }

  stats(): StackStats {
    throw new StackError("closed", "not implemented yet");
  }

  async close(): Promise<void> {}
}
