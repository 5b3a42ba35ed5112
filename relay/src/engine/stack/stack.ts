// SipStack: owns the transports and the transaction layer and is the single object the agent talks to.
// Inbound path: socket → parse → RFC 3581 received/rport on the top Via → transaction matching (§17.1.3 /
// §17.2.3) → events. Outbound path: our Via (advertised address, rport, fresh branch) → client transaction.
import { isIP } from "node:net";
import { newTag } from "../sip/ids.ts";
import {
  createResponse,
  formatVia,
  parseCSeq,
  parseMessage,
  parseUri,
  parseVia,
  type SipRequest,
  type SipResponse,
  serializeMessage,
} from "../sip/message.ts";
import { tagOf } from "../sip/response.ts";
import { Emitter } from "./emitter.ts";
import { StackError } from "./errors.ts";
import { BRANCH_PREFIX, newBranch } from "./ids.ts";
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
import {
  bareHost,
  cidrContains,
  hostForUri,
  InterfacePicker,
  isLoopback,
  isWildcard,
  parseCidr,
} from "./network.ts";
import { TimerWheel } from "./timer-wheel.ts";
import {
  ClientTx,
  type CompletedClientTx,
  type CompletedServerTx,
  ServerTx,
  type TransactionHost,
} from "./transactions.ts";
import { type Connection, Transports } from "./transport.ts";

type StackEvents = {
  /** A new server transaction (never ACK or CANCEL). */
  request: [st: ServerTransaction, msg: IncomingRequest];
  /** ACK to a 2xx (or stray). `msg.transaction` is set when it matched an Accepted INVITE transaction. */
  ack: [msg: IncomingAck];
  /** The stack answered 200 to the CANCEL and 487 to the INVITE already. */
  cancel: [st: ServerTransaction, cancel: IncomingRequest];
  "parse-error": [reason: string, source: Peer];
  /** A response that matched no client transaction (e.g. 2xx retransmission after the transaction ended). */
  "stray-response": [res: SipResponse, raw: Buffer, source: Peer];
  /** An exception caught at a socket or timer boundary, or thrown by an event listener. */
  "internal-error": [err: unknown];
};

const DEFAULT_PORT = 5060;

export class SipStack extends Emitter<StackEvents> implements TransactionHost {
  /** What we listen on (resolved ports when 0 was given). */
  readonly hostports: { transport: TransportName; address: string; port: number }[] = [];
  readonly externalAddress: string | undefined;
  readonly T1: number;
  readonly T2: number;
  readonly T4: number;
  readonly wheel: TimerWheel;
  private transportsOrUndefined: Transports | undefined;
  private readonly serverTx = new Map<string, ServerTx | CompletedServerTx>();
  private readonly clientTx = new Map<string, ClientTx | CompletedClientTx>();
  /** INVITE server transactions in Accepted state, by Call-ID|CSeq number|From tag (for the 2xx ACK). */
  private readonly accepted = new Map<string, ServerTx>();
  private readonly localNetworks: NonNullable<ReturnType<typeof parseCidr>>[];
  private readonly insideCache = new Map<string, boolean>();
  private readonly picker = new InterfacePicker();
  private readonly maxMessageSize: number;
  private nextId = 0;
  private closed = false;
  private parseErrors = 0;
  private internalErrors = 0;
  private stray = 0;

  private constructor(opts: StackOptions) {
    super();
    this.T1 = opts.timers?.T1 ?? 500;
    this.T2 = opts.timers?.T2 ?? 4000;
    this.T4 = opts.timers?.T4 ?? 5000;
    this.externalAddress = opts.externalAddress || undefined;
    this.maxMessageSize = opts.maxMessageSize ?? 65535;
    this.localNetworks = [];
    for (const text of opts.localNetworks ?? []) {
      const cidr = parseCidr(text);
      if (!cidr) throw new StackError("bind", `localNetworks: "${text}" is not a CIDR (e.g. 192.168.0.0/16)`);
      this.localNetworks.push(cidr);
    }
    const tick = Math.max(1, Math.min(10, Math.floor(this.T1 / 10)));
    this.wheel = new TimerWheel(tick, (err) => this.listenerError(err));
  }

  /** Binds UDP and TCP (or opts.transports) on opts.host:opts.port and resolves once they listen. */
  static async listen(opts: StackOptions): Promise<SipStack> {
    const stack = new SipStack(opts);
    const transports = await Transports.open(
      {
        host: opts.host,
        port: opts.port,
        transports: opts.transports ?? ["udp", "tcp"],
        maxMessageSize: stack.maxMessageSize,
        tcpIdleTimeout: opts.tcpIdleTimeout ?? 600_000,
        maxConnections: opts.maxConnections ?? 10_000,
      },
      {
        onMessage: (data, source, local, conn) => stack.onMessage(data, source, local, conn),
        onStreamError: (reason, source) => {
          stack.parseErrors++;
          stack.emit("parse-error", reason, source);
        },
        onInternalError: (err) => stack.listenerError(err),
      },
    );
    stack.transportsOrUndefined = transports;
    if (transports.udpLocal) stack.hostports.push({ ...transports.udpLocal });
    if (transports.tcpLocal) stack.hostports.push({ ...transports.tcpLocal });
    return stack;
  }

  /** The transports; after close() they drop every send silently. */
  get transports(): Transports {
    const t = this.transportsOrUndefined;
    if (!t) throw new StackError("closed", "the SIP stack is not listening");
    return t;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Inbound

  private onMessage(data: Buffer, source: Peer, local: Peer, conn: Connection | undefined): void {
    if (this.closed) return;
    const parsed = parseMessage(data, { maxMessageSize: this.maxMessageSize });
    if (!parsed.ok) {
      this.parseErrors++;
      if (parsed.respondable) this.answerMalformed(parsed.respondable, parsed.status ?? 400, source, conn);
      this.emit("parse-error", parsed.reason, source);
      return;
    }
    const msg = parsed.message;
    if (msg.kind === "request") this.onRequest(msg, data, source, local, conn);
    else this.onResponse(msg, data, source);
  }

  /**
   * Stateless 400 (or 505/513) to a request the parser could not fully read: routed by its top Via when that
   * parses (§18.2.2 + rport), else straight back to the source address (or the connection it came on).
   */
  private answerMalformed(req: SipRequest, status: number, source: Peer, conn: Connection | undefined): void {
    if (req.method === "ACK") return;
    const top = req.headers.top("via");
    const via = top === undefined ? undefined : parseVia(top);
    const dest = via ? replyAddress(source, via.port, via.rport !== undefined) : source;
    const res = createResponse(req, status, undefined, { toTag: newTag() });
    this.transports.send(dest, serializeMessage(res), conn);
  }

  private onRequest(
    req: SipRequest,
    raw: Buffer,
    source: Peer,
    local: Peer,
    conn: Connection | undefined,
  ): void {
    const headers = req.headers;
    const top = headers.top("via");
    const via = top === undefined ? undefined : parseVia(top);
    const cseqText = headers.get("cseq");
    const cseq = cseqText === undefined ? undefined : parseCSeq(cseqText);
    if (!via || !cseq) {
      this.parseErrors++;
      this.emit("parse-error", via ? "bad CSeq" : "bad top Via", source);
      return;
    }
    const sentBy = `${via.host}:${via.port ?? ""}`;
    const rportRequested = via.rport !== undefined;
    // RFC 3261 §18.2.1: record the source address when it differs from the sent-by host. RFC 3581 §4: a sender
    // that asked for rport gets rport=<source port> and received=<source address> "even if it is identical to
    // the value of the sent-by component".
    const host = bareHost(via.host);
    if (host !== source.address || rportRequested) {
      via.received = source.address;
      if (rportRequested) via.rport = source.port;
      headers.removeFirst("via");
      headers.prepend("Via", formatVia(via));
    }
    const branch = via.branch ?? "";
    const method = req.method;
    const msg: IncomingRequest = { request: req, raw, source, receivedAt: Date.now(), local };

    if (method === "ACK") {
      const found = this.serverTx.get(`${branch}|${sentBy}|INVITE`);
      const st = found instanceof ServerTx ? found : undefined;
      if (st?.onAck()) return; // ACK for a non-2xx: absorbed by its transaction
      const ack: IncomingAck = msg;
      const acceptedTx = st ?? this.accepted.get(acceptKey(req, cseq.seq));
      if (acceptedTx && acceptedTx.state === "accepted") {
        ack.transaction = acceptedTx;
        acceptedTx.onAck2xx(ack);
      }
      this.emit("ack", ack);
      return;
    }

    const id = `s${++this.nextId}`;
    // Without a branch (pre-RFC 3261 peer) retransmissions cannot be matched: give it a key nothing looks up.
    const key = branch === "" ? `~${id}` : flat(`${branch}|${sentBy}|${method}`);
    const existing = this.serverTx.get(key);
    if (existing) {
      existing.onRetransmission();
      return;
    }
    const replyTo = replyAddress(source, via.port, rportRequested);
    const st = new ServerTx(this, id, key, req, source, replyTo, conn);
    this.serverTx.set(key, st);

    if (method === "CANCEL") {
      // §9.2: 481 only when no INVITE transaction matches; one that already answered finally still gets 200.
      const invite = this.serverTx.get(`${branch}|${sentBy}|INVITE`);
      const toTag = invite instanceof ServerTx ? invite.localTag() : undefined;
      st.respond(createResponse(req, invite ? 200 : 481, undefined, { toTag }));
      if (invite instanceof ServerTx && invite.onCancel(msg)) this.emit("cancel", invite, msg);
      return;
    }
    if (method === "INVITE") st.respond(createResponse(req, 100)); // §17.2.1: answer 100 at once
    this.emit("request", st, msg);
  }

  private onResponse(res: SipResponse, raw: Buffer, source: Peer): void {
    const top = res.headers.top("via");
    const via = top === undefined ? undefined : parseVia(top);
    const cseqText = res.headers.get("cseq");
    const cseq = cseqText === undefined ? undefined : parseCSeq(cseqText);
    const ct = via?.branch && cseq ? this.clientTx.get(`${via.branch}|${cseq.method}`) : undefined;
    if (!ct) {
      this.stray++;
      this.emit("stray-response", res, raw, source);
      return;
    }
    ct.onResponse(res, raw, source);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Outbound

  /**
   * Starts a client transaction: prepends our top Via (advertised address, rport, fresh z9hG4bK branch). A CANCEL
   * whose top Via is already ours keeps it (same branch as its INVITE); any other request carrying our Via on top
   * gets a fresh one instead. The request object is modified in place.
   */
  sendRequest(req: SipRequest, dest: Peer): ClientTransaction {
    const branch = this.ensureVia(req, dest);
    const cseqText = req.headers.get("cseq");
    const cseq = cseqText === undefined ? undefined : parseCSeq(cseqText);
    // A request without CSeq is a bug in the caller, not a network condition.
    if (!cseq) throw new StackError("invalid-message", "request without a valid CSeq");
    const ct = new ClientTx(
      this,
      `c${++this.nextId}`,
      `${branch}|${req.method}`,
      branch,
      req,
      serializeMessage(req),
      dest,
      cseq.seq,
    );
    if (this.closed) {
      // Never throw at a caller racing with shutdown: the transaction just fails like a dead transport.
      queueMicrotask(() => ct.onTransportError(new StackError("closed", "the SIP stack is closed")));
    } else ct.start();
    return ct;
  }

  /**
   * Stateless send of an ACK for a 2xx (its own fresh branch, §13.2.2.4); returns the wire text. Sending the same
   * request object again re-sends the same ACK (our Via is recognised and kept). After close() nothing is sent.
   */
  sendAck(ack: SipRequest, dest: Peer): string {
    const transports = this.transports;
    this.ensureVia(ack, dest);
    const buf = serializeMessage(ack);
    transports.send(dest, buf);
    return buf.toString("utf8");
  }

  /**
   * Returns the branch of our top Via. A Via of ours already on top is kept for ACK and CANCEL (a re-sent ACK
   * must be the same ACK; a CANCEL must carry its INVITE's branch) and replaced for anything else, so a request
   * object that is sent again (e.g. re-sent with credentials) becomes a new transaction, not a retransmission.
   */
  private ensureVia(req: SipRequest, dest: Peer): string {
    const top = req.headers.top("via");
    if (top?.includes(BRANCH_PREFIX)) {
      const branch = parseVia(top)?.branch;
      if (branch?.startsWith(BRANCH_PREFIX)) {
        if (req.method === "ACK" || req.method === "CANCEL") return branch;
        req.headers.removeFirst("via");
      }
    }
    const branch = newBranch();
    const adv = this.advertisedAddress(dest);
    const proto = dest.transport === "udp" ? "UDP" : "TCP";
    req.headers.prepend(
      "Via",
      `SIP/2.0/${proto} ${hostForUri(adv.address)}:${adv.port};rport;branch=${branch}`,
    );
    return branch;
  }

  /**
   * The address/port to advertise to `dest` in Via and Contact: externalAddress when set and dest is outside
   * localNetworks (loopback always counts as inside), else the bound address, or when bound to a wildcard the
   * interface address that reaches dest.
   */
  advertisedAddress(dest: Peer): Peer {
    const transports = this.transports;
    const listen = dest.transport === "udp" ? transports.udpLocal : transports.tcpLocal;
    const local = listen ?? transports.udpLocal ?? transports.tcpLocal;
    const port = local?.port ?? DEFAULT_PORT;
    if (this.externalAddress !== undefined && !this.isInside(dest.address)) {
      return { transport: dest.transport, address: this.externalAddress, port };
    }
    const bound = local?.address ?? "0.0.0.0";
    const address = isWildcard(bound) ? this.picker.pick(dest.address) : bound;
    return { transport: dest.transport, address, port };
  }

  private isInside(address: string): boolean {
    const hit = this.insideCache.get(address);
    if (hit !== undefined) return hit;
    const inside = isLoopback(address) || this.localNetworks.some((c) => cidrContains(c, address));
    if (this.insideCache.size > 10_000) this.insideCache.clear();
    this.insideCache.set(address, inside);
    return inside;
  }

  /**
   * RFC 3263-lite: sip:/sips: URI (or bare host[:port]) → transport address. transport= param picks TCP/UDP
   * (sips: means TCP here, port 5061). Only numeric hosts and "localhost"; anything else throws
   * StackError("unresolvable").
   */
  resolve(uri: string): Peer {
    const parsed = parseUri(uri.includes(":") && /^sips?:/i.test(uri) ? uri : `sip:${uri}`);
    if (!parsed || (parsed.scheme !== "sip" && parsed.scheme !== "sips")) {
      throw new StackError("unresolvable", "not a SIP URI");
    }
    const secure = parsed.scheme === "sips";
    const param = parsed.params.get("transport")?.toLowerCase();
    const transport: TransportName = secure || param === "tcp" || param === "tls" ? "tcp" : "udp";
    let host = bareHost(parsed.params.get("maddr") ?? parsed.host);
    if (host === "localhost") host = "127.0.0.1";
    if (isIP(host) === 0) throw new StackError("unresolvable", "only numeric hosts can be resolved");
    return { transport, address: host, port: parsed.port ?? (secure ? 5061 : DEFAULT_PORT) };
  }

  // -------------------------------------------------------------------------------------------------------------
  // TransactionHost

  serverTerminated(st: ServerTx | CompletedServerTx): void {
    if (this.serverTx.get(st.key) === st) this.serverTx.delete(st.key);
    if (st instanceof ServerTx && st.acceptKey !== undefined && this.accepted.get(st.acceptKey) === st) {
      this.accepted.delete(st.acceptKey);
    }
  }

  serverCompleted(record: CompletedServerTx): void {
    this.serverTx.set(record.key, record);
  }

  clientTerminated(ct: ClientTx | CompletedClientTx): void {
    if (this.clientTx.get(ct.key) === ct) this.clientTx.delete(ct.key);
  }

  serverAccepted(st: ServerTx): void {
    const cseq = parseCSeq(st.request.headers.get("cseq") ?? "");
    if (!cseq) return;
    st.acceptKey = acceptKey(st.request, cseq.seq);
    this.accepted.set(st.acceptKey, st);
  }

  clientStarted(ct: ClientTx | CompletedClientTx): void {
    this.clientTx.set(ct.key, ct);
  }

  /** Counts an exception caught at a socket/timer boundary or thrown by a listener and reports it. */
  listenerError(err: unknown): void {
    this.internalErrors++;
    this.emit("internal-error", err); // emit() catches a throwing "internal-error" listener itself
  }

  protected override onListenerError(err: unknown, event: keyof StackEvents): void {
    if (event === "internal-error")
      this.internalErrors++; // do not report the reporter's own failure in a loop
    else this.listenerError(err);
  }

  // -------------------------------------------------------------------------------------------------------------

  stats(): StackStats {
    const t = this.transportsOrUndefined;
    return {
      serverTransactions: this.serverTx.size,
      clientTransactions: this.clientTx.size,
      accepted: this.accepted.size,
      connections: t?.connectionCount ?? 0,
      timers: this.wheel.size,
      received: t?.received ?? 0,
      sent: t?.sent ?? 0,
      parseErrors: this.parseErrors,
      transportErrors: t?.transportErrors ?? 0,
      dropped: (t?.dropped ?? 0) + this.stray,
      internalErrors: this.internalErrors,
      strayResponses: this.stray,
    };
  }

  /** Stops timers, drops every transaction silently and closes sockets and connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wheel.shutdown();
    this.serverTx.clear();
    this.clientTx.clear();
    this.accepted.clear();
    await this.transportsOrUndefined?.close();
  }
}

/**
 * §18.2.2 + RFC 3581: where responses to a request go. UDP: the source address, and the source port when rport
 * was requested, else the Via port. TCP: the connection it came on; if that closed, the source address (=
 * received) and the Via sent-by port.
 */
function replyAddress(source: Peer, viaPort: number | undefined, rport: boolean): Peer {
  if (source.transport === "udp" && rport) return source;
  return { transport: source.transport, address: source.address, port: viaPort ?? DEFAULT_PORT };
}

/**
 * A transaction key outlives its request by up to 64*T1. Concatenated from slices of the received text it is a tree
 * of string pieces that keeps them (and the text they were cut from) alive; slice() flattens it into one string
 * holding only the key's own characters.
 */
function flat(s: string): string {
  return `${s} `.slice(0, -1);
}

/** Dialog-level key that ties an end-to-end ACK to the INVITE whose 2xx it acknowledges. */
function acceptKey(req: SipRequest, cseq: number): string {
  const from = req.headers.get("from") ?? "";
  return flat(`${req.headers.get("call-id") ?? ""}|${cseq}|${tagOf(from) ?? ""}`);
}
