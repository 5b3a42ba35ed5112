// RFC 3261 §17 transaction state machines with the RFC 6026 Accepted state: INVITE/non-INVITE client and server.
// Every timer runs on the stack's shared TimerWheel (targets + kind numbers, no closures); a terminated
// transaction leaves every map and drops its listeners, so nothing outlives its last timer.

import { newTag } from "../sip/ids.ts";
import { createResponse, type SipRequest, type SipResponse, serializeMessage } from "../sip/message.ts";
import { inviteSibling } from "../sip/request.ts";
import { tagOf } from "../sip/response.ts";
import { Emitter } from "./emitter.ts";
import type {
  ClientTransaction,
  ClientTransactionState,
  IncomingAck,
  IncomingRequest,
  Peer,
  ServerTransaction,
  ServerTransactionState,
} from "./index.ts";
import type { Timer, TimerTarget, TimerWheel } from "./timer-wheel.ts";
import type { Connection, SendErrorTarget, Transports } from "./transport.ts";

/** What transactions need from the stack that owns them. */
export interface TransactionHost {
  readonly wheel: TimerWheel;
  readonly transports: Transports;
  readonly T1: number;
  readonly T2: number;
  readonly T4: number;
  serverTerminated(st: ServerTx | CompletedServerTx): void;
  /** Replaces a finished non-INVITE transaction's map entry by its compact Completed record. */
  serverCompleted(record: CompletedServerTx): void;
  clientTerminated(ct: ClientTx | CompletedClientTx): void;
  /** Registers an INVITE server transaction that sent a 2xx so the end-to-end ACK can find it. */
  serverAccepted(st: ServerTx): void;
  /** Registers a client transaction under its matching key (once its request is really sent). */
  clientStarted(ct: ClientTx | CompletedClientTx): void;
  listenerError(err: unknown): void;
}

/**
 * A transaction that gets no final response is dropped after this long anyway, so an app that never answers (or
 * a peer that never sends a final) cannot leak transactions. Longer than any sane ringing time.
 */
const ABANDON_MS = 10 * 60_000;

const RETRANSMIT = 1;
const END = 2;

/** Options of ServerTransaction.respond. */
export interface RespondOptions {
  /** The response is being proxied (see ServerTransaction.respond). */
  proxied?: boolean;
}

/**
 * Buffers kept by the compact records live 64*T1 and all expire in about the order they were made, so they are
 * packed into dedicated 64 KiB slabs (freed as a whole once their records are gone). Left in Node's shared 8 KiB
 * pool they would pin slabs mostly filled with short-lived data (frames to apps, parse scratch), which is how RSS
 * balloons at thousands of transactions per second while the JS heap stays small.
 */
const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabOffset = 0;

function own(buf: Buffer): Buffer {
  const len = buf.length;
  if (len > SLAB_SIZE / 8) {
    const copy = Buffer.allocUnsafeSlow(len);
    buf.copy(copy);
    return copy;
  }
  if (slabOffset + len > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabOffset = 0;
  }
  const view = slab.subarray(slabOffset, slabOffset + len);
  buf.copy(view);
  slabOffset += (len + 7) & ~7;
  return view;
}

// ---------------------------------------------------------------------------------------------------------------
// Server transactions (§17.2)

type ServerEvents = {
  ack: [ack: IncomingAck];
  "ack-timeout": [];
  cancel: [cancel: IncomingRequest];
  "transport-error": [err: Error];
  terminated: [];
};

export class ServerTx
  extends Emitter<ServerEvents>
  implements ServerTransaction, TimerTarget, SendErrorTarget
{
  state: ServerTransactionState;
  readonly isInvite: boolean;
  /** Key in the dialog-level map of Accepted transactions (Call-ID|CSeq number|From tag). */
  acceptKey: string | undefined;
  private last: Buffer | undefined;
  private toTag: string | undefined;
  private retransmitTimer: Timer | undefined;
  private endTimer: Timer | undefined;
  private interval = 0;
  private acked = false;
  private proxied = false;
  /** The TU ended the dialog before the ACK came (stopRetransmitting): Accepted goes on silently. */
  private retransmissionsStopped = false;
  private acceptedAt = 0;

  constructor(
    private readonly host: TransactionHost,
    readonly id: string,
    /** Matching key (§17.2.3): branch|sent-by|method (ACK uses INVITE). */
    readonly key: string,
    readonly request: SipRequest,
    readonly source: Peer,
    /** Where responses go (§18.2.2 + RFC 3581); for TCP the fallback when `conn` has closed. */
    private readonly replyTo: Peer,
    private readonly conn: Connection | undefined,
  ) {
    super();
    this.isInvite = request.method === "INVITE";
    this.state = this.isInvite ? "proceeding" : "trying";
    this.endTimer = host.wheel.schedule(this.isInvite ? ABANDON_MS : 64 * host.T1 + host.T4, this, END);
  }

  get method(): string {
    return this.request.method;
  }

  private get reliable(): boolean {
    return this.replyTo.transport !== "udp";
  }

  respond(res: SipResponse, opts?: RespondOptions): string {
    const state = this.state;
    if (state === "terminated" || state === "completed" || state === "confirmed") return "";
    const status = res.status;
    if (state === "accepted" && (status < 200 || status >= 300)) return "";
    if (status > 100) this.fixToTag(res);
    const buf = serializeMessage(res);
    this.last = buf;
    this.send(buf);
    if (status < 200) {
      this.state = "proceeding";
      return buf.toString("utf8");
    }
    const wheel = this.host.wheel;
    const T1 = this.host.T1;
    if (this.isInvite && status < 300) {
      if (state !== "accepted") {
        // RFC 6026 Accepted until timer L. As the UAS core we retransmit the 2xx ourselves until the ACK arrives;
        // a proxied 2xx is end-to-end (its ACK does not come to us): the TU forwards retransmissions itself.
        this.state = "accepted";
        this.acceptedAt = performance.now();
        this.interval = T1;
        wheel.cancel(this.endTimer);
        this.endTimer = wheel.schedule(64 * T1, this, END);
        if (opts?.proxied) this.proxied = true;
        else {
          this.retransmitTimer = wheel.schedule(T1, this, RETRANSMIT);
          this.host.serverAccepted(this);
        }
      }
    } else if (this.isInvite) {
      this.state = "completed";
      wheel.cancel(this.endTimer);
      if (!this.reliable) {
        this.interval = T1;
        this.retransmitTimer = wheel.schedule(T1, this, RETRANSMIT); // timer G
      }
      this.endTimer = wheel.schedule(64 * T1, this, END); // timer H
    } else {
      // Nothing is left for the TU to do. Over UDP, §17.2.2 Completed (absorb retransmissions until timer J)
      // is kept by a compact record so that 64*T1 of traffic does not pin every request in memory.
      if (!this.reliable) {
        this.host.serverCompleted(
          new CompletedServerTx(this.host, this.key, own(buf), this.replyTo, 64 * T1),
        );
      }
      this.terminate();
    }
    return buf.toString("utf8");
  }

  /**
   * The To tag this transaction's responses carry, chosen now if none was sent yet: the 200 to a CANCEL repeats
   * it so that it matches the INVITE's 18x and 487 (RFC 3261 §9.2).
   */
  localTag(): string {
    this.toTag ??= newTag();
    return this.toTag;
  }

  /** Keeps one To tag for every non-100 response of this transaction (the app's, or ours if it gave none). */
  private fixToTag(res: SipResponse): void {
    const to = res.headers.get("to");
    if (to === undefined) return;
    const tag = tagOf(to);
    if (tag !== undefined) {
      this.toTag ??= tag;
      return;
    }
    this.toTag ??= newTag();
    res.headers.set("To", `${to};tag=${this.toTag}`);
  }

  private send(buf: Buffer): void {
    this.host.transports.send(this.replyTo, buf, this.conn, this.reliable ? this : undefined);
  }

  /** A retransmission of the request (§17.2.1 / §17.2.2). */
  onRetransmission(): void {
    const s = this.state;
    if ((s === "proceeding" || s === "completed") && this.last) this.send(this.last);
  }

  /** An ACK with our INVITE's branch. Returns false when it is not ours to absorb (2xx ACK). */
  onAck(): boolean {
    if (this.state === "completed") {
      this.state = "confirmed";
      const wheel = this.host.wheel;
      wheel.cancel(this.retransmitTimer);
      wheel.cancel(this.endTimer);
      this.retransmitTimer = undefined;
      if (this.reliable) this.terminate();
      else this.endTimer = wheel.schedule(this.host.T4, this, END); // timer I
      return true;
    }
    return this.state === "confirmed";
  }

  /**
   * The end-to-end ACK for our 2xx arrived (matched by dialog). The rest of the Accepted state (absorbing INVITE
   * retransmissions until timer L) is handed to a compact record and this transaction terminates.
   */
  onAck2xx(ack: IncomingAck): void {
    if (this.state !== "accepted" || this.acked) return;
    this.acked = true;
    this.host.wheel.cancel(this.retransmitTimer);
    this.retransmitTimer = undefined;
    this.emit("ack", ack);
    const left = 64 * this.host.T1 - (performance.now() - this.acceptedAt);
    if (left > 0)
      this.host.serverCompleted(new CompletedServerTx(this.host, this.key, undefined, this.replyTo, left));
    this.terminate();
  }

  /**
   * The dialog our 2xx created has ended (BYE) before its ACK arrived: stop retransmitting the 2xx (RFC 3261
   * §13.3.1.4 lets the UAS stop once the dialog is gone) and do not report "ack-timeout". The transaction stays
   * Accepted until timer L, absorbing INVITE retransmissions and a late ACK.
   */
  stopRetransmitting(): void {
    if (this.state !== "accepted" || this.acked) return;
    this.retransmissionsStopped = true;
    this.host.wheel.cancel(this.retransmitTimer);
    this.retransmitTimer = undefined;
  }

  /** A CANCEL matched this transaction; the 200 to the CANCEL is sent by the caller. */
  onCancel(cancel: IncomingRequest): boolean {
    if (!this.isInvite || this.state !== "proceeding") return false;
    this.respond(createResponse(this.request, 487, "Request Terminated"));
    this.emit("cancel", cancel);
    return true;
  }

  onTimer(kind: number): void {
    const state = this.state;
    if (kind === RETRANSMIT) {
      this.retransmitTimer = undefined;
      const accepting = state === "accepted" && !this.acked && !this.retransmissionsStopped;
      if (!(state === "completed" || accepting) || !this.last) return;
      this.send(this.last);
      this.interval = Math.min(this.interval * 2, this.host.T2);
      this.retransmitTimer = this.host.wheel.schedule(this.interval, this, RETRANSMIT);
      return;
    }
    this.endTimer = undefined;
    if (state === "accepted" && !this.acked && !this.proxied && !this.retransmissionsStopped)
      this.emit("ack-timeout");
    this.terminate();
  }

  onTransportError(err: Error): void {
    if (this.state === "terminated") return;
    this.emit("transport-error", err);
    this.terminate();
  }

  terminate(): void {
    if (this.state === "terminated") return;
    this.state = "terminated";
    const wheel = this.host.wheel;
    wheel.cancel(this.retransmitTimer);
    wheel.cancel(this.endTimer);
    this.retransmitTimer = undefined;
    this.endTimer = undefined;
    this.last = undefined;
    this.host.serverTerminated(this);
    this.emit("terminated");
    this.removeAllListeners();
  }

  protected override onListenerError(err: unknown): void {
    this.host.listenerError(err);
  }
}

/**
 * What is left of a server transaction once the TU has nothing more to do with it, kept only to absorb
 * retransmissions of the request until its end timer: a non-INVITE in Completed over UDP (§17.2.2, repeats the
 * final response until timer J) or an INVITE whose 2xx was ACKed (RFC 6026 Accepted, silent until timer L).
 * It holds no request, so the long tail of these timers costs a few hundred bytes per transaction.
 */
export class CompletedServerTx implements TimerTarget {
  constructor(
    private readonly host: TransactionHost,
    readonly key: string,
    /** The final response to repeat; undefined = absorb silently. */
    private readonly last: Buffer | undefined,
    private readonly replyTo: Peer,
    lifetimeMs: number,
  ) {
    host.wheel.schedule(lifetimeMs, this, END);
  }

  onRetransmission(): void {
    if (this.last) this.host.transports.send(this.replyTo, this.last);
  }

  onTimer(): void {
    this.host.serverTerminated(this);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Client transactions (§17.1)

type ClientEvents = {
  response: [res: SipResponse, raw: Buffer, source: Peer];
  timeout: [];
  "transport-error": [err: Error];
  terminated: [];
};

export class ClientTx
  extends Emitter<ClientEvents>
  implements ClientTransaction, TimerTarget, SendErrorTarget
{
  state: ClientTransactionState;
  readonly isInvite: boolean;
  private retransmitTimer: Timer | undefined;
  private endTimer: Timer | undefined;
  private interval = 0;
  private cancelTx: ClientTx | undefined;
  /** A CANCEL waiting for the first provisional response (§9.1). */
  private heldCancel = false;
  private wireText: string | undefined;

  constructor(
    private readonly host: TransactionHost,
    readonly id: string,
    /** Matching key (§17.1.3): branch|CSeq method. */
    readonly key: string,
    readonly branch: string,
    readonly request: SipRequest,
    readonly buf: Buffer,
    readonly destination: Peer,
    private readonly cseq: number,
  ) {
    super();
    this.isInvite = request.method === "INVITE";
    this.state = this.isInvite ? "calling" : "trying";
  }

  get method(): string {
    return this.request.method;
  }

  get wire(): string {
    this.wireText ??= this.buf.toString("utf8");
    return this.wireText;
  }

  private get reliable(): boolean {
    return this.destination.transport !== "udp";
  }

  /** Sends the request and arms timers A/B (INVITE) or E/F (non-INVITE). */
  start(): void {
    this.host.clientStarted(this);
    this.host.transports.send(this.destination, this.buf, undefined, this);
    if (this.state === "terminated") return;
    const T1 = this.host.T1;
    if (!this.reliable) {
      this.interval = T1;
      this.retransmitTimer = this.host.wheel.schedule(T1, this, RETRANSMIT);
    }
    this.endTimer = this.host.wheel.schedule(64 * T1, this, END);
  }

  onResponse(res: SipResponse, raw: Buffer, source: Peer): void {
    const status = res.status;
    const state = this.state;
    const wheel = this.host.wheel;
    if (this.isInvite) {
      if (state === "calling" || state === "proceeding") {
        if (status < 200) {
          this.state = "proceeding";
          if (state === "calling") {
            // Timer A stops; timer B no longer applies, but an abandoned call must still end some day.
            wheel.cancel(this.retransmitTimer);
            wheel.cancel(this.endTimer);
            this.retransmitTimer = undefined;
            this.endTimer = wheel.schedule(ABANDON_MS, this, END);
          }
          this.emit("response", res, raw, source);
          if (this.heldCancel) {
            this.heldCancel = false;
            this.cancelTx?.start();
          }
          return;
        }
        this.stopTimers();
        this.dropHeldCancel();
        if (status < 300) {
          this.state = "accepted"; // RFC 6026: pass 2xx retransmissions up until timer M
          this.endTimer = wheel.schedule(64 * this.host.T1, this, END);
          this.emit("response", res, raw, source);
          return;
        }
        this.state = "completed";
        const ack = this.sendAck(res);
        this.emit("response", res, raw, source);
        // Timer D: over UDP a compact record re-sends the ACK for retransmitted finals; the TU is done.
        if (!this.reliable)
          this.host.clientStarted(
            new CompletedClientTx(this.host, this.key, own(ack), this.destination, 64 * this.host.T1),
          );
        this.terminate();
        return;
      }
      if (state === "accepted" && status >= 200 && status < 300) this.emit("response", res, raw, source);
      return;
    }
    if (state !== "trying" && state !== "proceeding") return;
    if (status < 200) {
      this.state = "proceeding";
      this.emit("response", res, raw, source);
      return;
    }
    this.state = "completed";
    this.stopTimers();
    this.emit("response", res, raw, source);
    // Timer K: over UDP a compact record absorbs retransmitted finals; the TU is done.
    if (!this.reliable) {
      this.host.clientStarted(
        new CompletedClientTx(this.host, this.key, undefined, this.destination, this.host.T4),
      );
    }
    this.terminate();
  }

  /** §17.1.1.3: ACK for a non-2xx final, same branch as the INVITE, To (with tag) from the response. */
  private sendAck(res: SipResponse): Buffer {
    const ack = inviteSibling(this.request, "ACK", { to: res.headers.get("to") });
    const buf = serializeMessage(ack);
    this.host.transports.send(this.destination, buf);
    return buf;
  }

  cancel(extraHeaders?: [name: string, value: string][]): ClientTransaction | undefined {
    if (!this.isInvite || (this.state !== "calling" && this.state !== "proceeding")) return undefined;
    if (this.cancelTx) return this.cancelTx;
    const cancel = inviteSibling(this.request, "CANCEL", { extraHeaders });
    const ct = new ClientTx(
      this.host,
      `${this.id}.cancel`,
      `${this.branch}|CANCEL`,
      this.branch,
      cancel,
      serializeMessage(cancel),
      this.destination,
      this.cseq,
    );
    this.cancelTx = ct;
    if (this.state === "proceeding") ct.start();
    else this.heldCancel = true;
    return ct;
  }

  private dropHeldCancel(): void {
    if (!this.heldCancel) return;
    this.heldCancel = false;
    this.cancelTx?.terminate();
  }

  private stopTimers(): void {
    const wheel = this.host.wheel;
    wheel.cancel(this.retransmitTimer);
    wheel.cancel(this.endTimer);
    this.retransmitTimer = undefined;
    this.endTimer = undefined;
  }

  onTimer(kind: number): void {
    const state = this.state;
    if (kind === RETRANSMIT) {
      this.retransmitTimer = undefined;
      if (state === "calling")
        this.interval *= 2; // timer A doubles without cap
      else if (state === "trying") this.interval = Math.min(this.interval * 2, this.host.T2);
      else if (state === "proceeding" && !this.isInvite) this.interval = this.host.T2;
      else return;
      this.host.transports.send(this.destination, this.buf);
      this.retransmitTimer = this.host.wheel.schedule(this.interval, this, RETRANSMIT);
      return;
    }
    this.endTimer = undefined;
    // Timer B/F (or the abandon guard): no final response in time.
    if (state === "calling" || state === "trying" || state === "proceeding") {
      this.dropHeldCancel();
      this.emit("timeout");
    }
    this.terminate();
  }

  onTransportError(err: Error): void {
    const s = this.state;
    if (s !== "calling" && s !== "trying" && s !== "proceeding") return;
    this.dropHeldCancel();
    this.emit("transport-error", err);
    this.terminate();
  }

  terminate(): void {
    if (this.state === "terminated") return;
    this.state = "terminated";
    this.stopTimers();
    this.host.clientTerminated(this);
    this.emit("terminated");
    this.removeAllListeners();
  }

  protected override onListenerError(err: unknown): void {
    this.host.listenerError(err);
  }
}

/**
 * A client transaction in Completed state over UDP once its final response went to the TU (§17.1.1.2 timer D,
 * §17.1.2.2 timer K): absorbs retransmitted finals, re-sending the ACK for a non-2xx INVITE final.
 */
export class CompletedClientTx implements TimerTarget {
  constructor(
    private readonly host: TransactionHost,
    readonly key: string,
    private readonly ack: Buffer | undefined,
    private readonly destination: Peer,
    lifetimeMs: number,
  ) {
    host.wheel.schedule(lifetimeMs, this, END);
  }

  onResponse(res: SipResponse): void {
    if (this.ack && res.status >= 300) this.host.transports.send(this.destination, this.ack);
  }

  onTimer(): void {
    this.host.clientTerminated(this);
  }
}
