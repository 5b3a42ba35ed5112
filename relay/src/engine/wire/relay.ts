// Relaying between the SIP stack and drachtio-srf applications: incoming requests to the app that routes the
// method (503 if none), app responses onto the server transaction, app-originated requests (new, in-dialog from
// stubs, ACK, CANCEL) onto client transactions, and every resulting message back to the app with the meta tokens
// drachtio-server sends. Dialog state lives in ../dialog; this module decides when dialogs start and end. What the
// app sees (reply texts, ids, CDRs, requests the server answers itself, session timers, reliable provisionals) was
// checked against drachtio-server's source; wire-compat.int.test.ts holds one test per behaviour.
import { networkInterfaces } from "node:os";
import { type Dialog, DialogTable, dialogIdFor, tagOf, uriOf } from "../dialog/dialog.ts";
import {
  buildInDialogRequest,
  contactFor,
  dialogDestination,
  inferContentType,
  LOCALHOST_HEADERS,
  rewriteLocalhost,
  rewriteLocalhostHeaders,
} from "../dialog/requests.ts";
import {
  MIN_SE,
  parseSessionExpires,
  type SessionTimerActions,
  startSessionTimer,
  stopSessionTimer,
} from "../dialog/session-timer.ts";
import {
  createResponse,
  headerKey,
  newCallId,
  newTag,
  parseCSeq,
  SipHeaders,
  type SipRequest,
  type SipResponse,
  serializeMessage,
} from "../sip/message.ts";
import { inviteSibling } from "../sip/request.ts";
import type {
  ClientTransaction,
  IncomingAck,
  IncomingRequest,
  Peer,
  ServerTransaction,
  SipStack,
} from "../stack/index.ts";
import { parseAppSip } from "./app-sip.ts";
import { type Cancelable, LooseRouter } from "./loose-route.ts";
import {
  type AppMessage,
  metaFor,
  newId,
  sentLeader,
  sipLeader,
  type WireMeta,
  wireTime,
} from "./protocol.ts";
import { ProxyOperation } from "./proxy.ts";
import { resolveTarget } from "./resolve.ts";
import type { AdminServer, AppHandler, AppSession } from "./server.ts";

/** An incoming request handed to an app, waiting for its final response. */
interface NetTxn {
  readonly id: string;
  readonly st: ServerTransaction;
  readonly app: AppSession;
  readonly request: SipRequest;
  readonly source: Peer;
  readonly createdAt: number;
  /** Set for requests inside an existing dialog. */
  readonly dialog?: Dialog;
  /** Our To tag for a response to an out-of-dialog request (chosen once, kept for all responses). */
  localTag?: string;
  /** drachtio id the dialog will have if this request (INVITE/SUBSCRIBE) creates one. */
  readonly dialogId: string;
  /** The early dialog our provisional response created (INVITE). */
  early?: Dialog;
  /** RSeq of the last reliable provisional response (RFC 3262) the app sent on this INVITE. */
  rseq?: number;
  /** The reliable provisional response being retransmitted until its PRACK arrives. */
  reliable?: { res: SipResponse; rseq: number; timer: NodeJS.Timeout };
}

/** A request an app sent, waiting for its final response. */
interface AppTxn {
  readonly id: string;
  readonly ct: ClientTransaction;
  readonly app: AppSession;
  readonly dest: Peer;
  /** Dialog the request was sent in. */
  readonly dialog?: Dialog;
  /** For an initial INVITE/SUBSCRIBE: the id of the dialog its 2xx creates. */
  readonly dialogId?: string;
  final: boolean;
  /** The app sent CANCEL for this INVITE. */
  canceled?: boolean;
  /** Early dialog created by the callee's provisional response with a To tag (initial INVITE). */
  early?: Dialog;
}

export interface RelayLogger {
  warn(obj: object, msg: string): void;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Headers of an app's CANCEL stub that are not copied to the CANCEL (canonical keys). */
const CANCEL_FIXED_HEADERS: ReadonlySet<string> = new Set([
  "via",
  "route",
  "record-route",
  "rseq",
  "content-length",
  "from",
  "to",
  "contact",
  "p-asserted-identity",
  "call-id",
  "cseq",
  "max-forwards",
]);
/** The methods drachtio-server knows (drachtio.cpp methodType), in the order an Allow header lists them. */
const SIP_METHODS: ReadonlySet<string> = new Set([
  "INVITE",
  "ACK",
  "CANCEL",
  "BYE",
  "OPTIONS",
  "REGISTER",
  "PRACK",
  "UPDATE",
  "INFO",
  "REFER",
  "MESSAGE",
  "SUBSCRIBE",
  "NOTIFY",
  "PUBLISH",
]);
const INVITE_DIALOG_METHODS = ["ACK", "BYE", "PRACK", "UPDATE", "INFO", "REFER"];
const STALE_NON_INVITE_MS = 32_000;
const STALE_INVITE_MS = 300_000;

export class Relay implements AppHandler {
  readonly dialogs = new DialogTable();
  private readonly netTxns = new Map<string, NetTxn>();
  /** server transaction id → NetTxn, to find the app for a CANCEL */
  private readonly netByStId = new Map<string, NetTxn>();
  private readonly appTxns = new Map<string, AppTxn>();
  /** server transaction id → proxy operation (or loose-routed re-INVITE) forwarding that request */
  private readonly proxies = new Map<string, Cancelable>();
  private readonly looseRouter: LooseRouter;
  private admin: AdminServer | undefined;
  private closing = false;
  /** Addresses of this host's interfaces, for loop detection when the stack listens on a wildcard address. */
  private readonly localAddresses = new Set<string>(
    Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
  );
  private readonly sweeper: NodeJS.Timeout;
  private readonly sessionActions: SessionTimerActions = {
    refresh: (d, seconds) => this.refreshSession(d, seconds),
    expire: (d) => this.teardown(d, "Session timer expired", true, "session-expired"),
  };

  constructor(
    private readonly stack: SipStack,
    private readonly log: RelayLogger,
  ) {
    this.looseRouter = new LooseRouter(
      stack,
      (type, source, raw, extra) => this.cdr(type, source, raw, extra),
      this.proxies,
    );
    stack.on("request", (st, msg) => this.onRequest(st, msg));
    stack.on("ack", (ack) => this.onAck(ack));
    stack.on("cancel", (st, cancel) => this.onCancel(st, cancel));
    stack.on("stray-response", (res) => this.onStrayResponse(res));
    this.sweeper = setInterval(() => this.sweep(), 5_000);
    this.sweeper.unref();
  }

  attach(admin: AdminServer): void {
    this.admin = admin;
  }

  /** Stop timers; after this, app disconnects (the admin server closing) no longer touch the stack. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweeper);
  }

  /** Counts for tests and health: what is still tracked. */
  stats(): { netTxns: number; appTxns: number; dialogs: number } {
    return { netTxns: this.netTxns.size, appTxns: this.appTxns.size, dialogs: this.dialogs.size };
  }

  // ---------------------------------------------------------------- network → app

  private onRequest(st: ServerTransaction, msg: IncomingRequest): void {
    const req = msg.request;
    const toTag = tagOf(req.headers.get("to"));
    if (toTag !== undefined) {
      this.onInDialogRequest(st, msg, toTag);
      return;
    }
    // drachtio-server (controller.cpp processMessageStatelessly) answers these itself, before any app sees them
    if (req.method === "BYE" || req.method === "UPDATE") {
      st.respond(createResponse(req, 481));
      return;
    }
    if (req.method === "REGISTER" && isWildcardRegisterWithExpiry(req)) {
      st.respond(createResponse(req, 400));
      return;
    }
    const fromTag = tagOf(req.headers.get("from")) ?? "";
    const dialogId = dialogIdFor(req.headers.get("call-id") ?? "", fromTag);
    const existing = req.method === "INVITE" ? this.dialogs.get(dialogId) : undefined;
    if (existing !== undefined && existing.role === "uas" && existing.early === undefined) {
      // the caller's INVITE again, on a new transaction, after we answered it: drachtio
      // (controller.cpp processRequestInsideDialog) answers 491 rather than offering the app a second call
      // with the same dialog id
      st.respond(createResponse(req, 491));
      return;
    }
    const app = this.admin?.selectApp(req.method);
    if (app === undefined && !SIP_METHODS.has(req.method)) {
      // a method we do not recognise (RFC 3261 §8.2.1): 501 with what we do take, rather than "try later"
      const res = createResponse(req, 501);
      res.headers.append("Allow", this.allowed());
      st.respond(res);
      return;
    }
    if (app === undefined) {
      // pending-request-controller.cpp processNewRequest: 503; an INVITE still gets its attempt and stop records
      const wire = st.respond(createResponse(req, 503));
      if (req.method === "INVITE") {
        this.cdr("attempt", "network", msg.raw);
        if (wire !== "") this.cdr("stop", "application", wire, "call-rejected");
      }
      return;
    }
    const txn: NetTxn = {
      id: newId(),
      st,
      app,
      request: req,
      source: msg.source,
      createdAt: msg.receivedAt,
      dialogId,
    };
    this.track(txn);
    app.send(sipLeader(networkMeta(msg), txn.id, "", `${msg.local.address}|${msg.local.port}`), rawOf(msg));
    if (req.method === "INVITE") this.cdr("attempt", "network", msg.raw);
  }

  /**
   * The Allow list: the standard methods some app routes, with the ones that follow from them (inside an INVITE
   * dialog the engine delivers ACK, BYE, PRACK, UPDATE, INFO and REFER to the dialog's app; NOTIFY in a
   * subscription), and CANCEL, which the stack answers itself.
   */
  private allowed(): string {
    const allow = new Set<string>();
    for (const key of this.admin?.routedMethods() ?? []) {
      const method = key.toUpperCase();
      if (SIP_METHODS.has(method)) allow.add(method);
    }
    if (allow.has("INVITE")) for (const m of INVITE_DIALOG_METHODS) allow.add(m);
    if (allow.has("SUBSCRIBE")) allow.add("NOTIFY");
    if (allow.size > 0) allow.add("CANCEL");
    return [...SIP_METHODS].filter((m) => allow.has(m)).join(", ");
  }

  private onInDialogRequest(st: ServerTransaction, msg: IncomingRequest, toTag: string): void {
    // in a dialog we record-routed as a proxy: it goes on, no app sees it
    if (this.looseRouter.forward(st, msg)) return;
    const req = msg.request;
    const d = this.dialogs.match(req.headers.get("call-id") ?? "", toTag);
    if (d === undefined || d.app.closed) {
      st.respond(createResponse(req, 481));
      return;
    }
    if (d.early !== undefined && d.role === "uas" && req.method === "BYE") {
      this.earlyBye(st, msg, d);
      return;
    }
    const cseq = parseCSeq(req.headers.get("cseq") ?? "");
    if (cseq !== undefined) {
      if (d.remoteSeq !== undefined && cseq.seq < d.remoteSeq) {
        st.respond(createResponse(req, 500, "Out of order CSeq"));
        return;
      }
      d.remoteSeq = cseq.seq;
    }
    if (d.routeSet.length === 0) d.peer = msg.source;
    if (
      (req.method === "INVITE" || req.method === "UPDATE") &&
      d.kind === "INVITE" &&
      !this.sessionRefresh(st, d, req)
    )
      return;
    if (req.method === "PRACK" && d.early !== undefined) this.onPrack(d, req);
    if (req.method === "INVITE" || req.method === "UPDATE") {
      const target = uriOf(req.headers.top("contact"));
      if (target !== undefined) d.remoteTarget = target;
    } else if (req.method === "SUBSCRIBE" && d.kind === "SUBSCRIBE") {
      refreshSubscription(d, req.headers.get("expires"));
    }
    const txn: NetTxn = {
      id: newId(),
      st,
      app: d.app,
      request: req,
      source: msg.source,
      createdAt: msg.receivedAt,
      dialog: d,
      dialogId: d.id,
    };
    this.track(txn);
    d.app.send(sipLeader(networkMeta(msg), txn.id, d.id), rawOf(msg));
    if (req.method === "BYE" && d.kind === "INVITE") this.cdr("stop", "network", msg.raw, "normal-release");
    // drachtio ends the dialog when the BYE (or final NOTIFY of a subscription) arrives
    if (req.method === "BYE" || (req.method === "NOTIFY" && d.kind === "SUBSCRIBE" && isTerminated(req))) {
      this.dialogs.remove(d);
    }
  }

  /**
   * A re-INVITE/UPDATE from the peer restarts the session timer from its Session-Expires, or stops it when there is
   * none; one below our Min-SE is refused with 422 (drachtio processRequestInsideDialog). False when refused.
   */
  private sessionRefresh(st: ServerTransaction, d: Dialog, req: SipRequest): boolean {
    const weWere = d.session?.weRefresh ?? false;
    stopSessionTimer(d);
    const se = parseSessionExpires(req.headers.get("session-expires"));
    if (se === undefined) return true;
    if (se.seconds < MIN_SE) {
      const res = createResponse(req, 422);
      res.headers.append("Min-SE", String(MIN_SE));
      st.respond(res);
      return false;
    }
    const theyRefresh = (se.refresher === undefined && weWere) || se.refresher === "uac";
    startSessionTimer(d, se.seconds, !theyRefresh, this.sessionActions);
    return true;
  }

  /**
   * Retransmit a reliable provisional response, T1 doubling, until its PRACK, the final response, or 64*T1 (RFC 3262
   * §3; sofia does this for drachtio's nta_reliable_treply).
   */
  private retransmitReliable(txn: NetTxn, res: SipResponse, rseq: number): void {
    this.stopReliable(txn);
    const T1 = this.stack.T1;
    let interval = T1;
    let elapsed = 0;
    const tick = (): void => {
      elapsed += interval;
      if (txn.reliable?.rseq !== rseq || elapsed >= 64 * T1 || txn.st.respond(res) === "") {
        if (txn.reliable?.rseq === rseq) txn.reliable = undefined;
        return;
      }
      interval *= 2;
      const timer = setTimeout(tick, interval);
      timer.unref();
      txn.reliable = { res, rseq, timer };
    };
    const timer = setTimeout(tick, interval);
    timer.unref();
    txn.reliable = { res, rseq, timer };
  }

  private stopReliable(txn: NetTxn): void {
    if (txn.reliable === undefined) return;
    clearTimeout(txn.reliable.timer);
    txn.reliable = undefined;
  }

  /** A PRACK in the early dialog acknowledges the reliable provisional response its RAck names. */
  private onPrack(d: Dialog, req: SipRequest): void {
    const invite = this.netTxns.get(d.early?.inviteTxnId ?? "");
    const pending = invite?.reliable;
    if (invite === undefined || pending === undefined) return;
    const rseq = Number.parseInt(req.headers.get("rack") ?? "", 10);
    if (rseq === pending.rseq) this.stopReliable(invite);
  }

  /** A 200 to an INVITE we (the app) sent: its Session-Expires starts the timer, we refresh unless refresher=uas. */
  private uacSession(d: Dialog, res: SipResponse): void {
    const se = parseSessionExpires(res.headers.get("session-expires"));
    if (se !== undefined) startSessionTimer(d, se.seconds, se.refresher !== "uas", this.sessionActions);
  }

  /**
   * The caller hung up an early dialog with BYE (RFC 3261 §15): answer it, end the INVITE with 487, and tell the
   * app the way srf understands, as a CANCEL of its pending INVITE.
   */
  private earlyBye(st: ServerTransaction, msg: IncomingRequest, d: Dialog): void {
    st.respond(createResponse(msg.request, 200));
    this.dialogs.remove(d);
    const invite = this.netTxns.get(d.early?.inviteTxnId ?? "");
    if (invite === undefined) return;
    this.forgetNet(invite);
    invite.st.respond(createResponse(invite.request, 487, undefined, { toTag: invite.localTag }));
    const cancel = inviteSibling(invite.request, "CANCEL"); // as if the caller had canceled (§9.1)
    const raw = serializeMessage(cancel);
    const meta = { ...networkMeta(msg), bytes: raw.length };
    if (!invite.app.closed) invite.app.send(sipLeader(meta, invite.id, invite.dialogId), raw);
    this.cdr("stop", "network", raw, "call-canceled");
  }

  private track(txn: NetTxn): void {
    this.netTxns.set(txn.id, txn);
    this.netByStId.set(txn.st.id, txn);
    txn.app.netTxns.add(txn.id);
    txn.st.on("terminated", () => {
      this.forgetNet(txn);
      // an early dialog whose INVITE ended without our 2xx (e.g. the stack answered a CANCEL)
      if (txn.early?.early !== undefined) this.dialogs.remove(txn.early);
    });
  }

  private forgetNet(txn: NetTxn): void {
    this.stopReliable(txn);
    this.netTxns.delete(txn.id);
    if (this.netByStId.get(txn.st.id) === txn) this.netByStId.delete(txn.st.id);
    txn.app.netTxns.delete(txn.id);
  }

  private onAck(ack: IncomingAck): void {
    const req = ack.request;
    const toTag = tagOf(req.headers.get("to"));
    if (toTag === undefined) return;
    if (this.looseRouter.forwardAck(ack)) return;
    const d = this.dialogs.match(req.headers.get("call-id") ?? "", toTag);
    if (d === undefined || d.app.closed) return;
    const seq = parseCSeq(req.headers.get("cseq") ?? "")?.seq;
    if (seq !== undefined && seq === d.lastAckSeq) return; // retransmission, the app has it already
    d.acked = true;
    d.unackedInvite = undefined;
    if (seq !== undefined) d.lastAckSeq = seq;
    const txnId = d.inviteTxnId ?? newId();
    d.inviteTxnId = undefined;
    d.app.send(sipLeader(networkMeta(ack), txnId, d.id), rawOf(ack));
  }

  /** A 2xx to our INVITE retransmitted after its transaction ended: the peer lost our ACK, send it again. */
  private onStrayResponse(res: SipResponse): void {
    if (res.status < 200 || res.status >= 300) return;
    const cseq = parseCSeq(res.headers.get("cseq") ?? "");
    if (cseq === undefined || cseq.method !== "INVITE") return;
    const fromTag = tagOf(res.headers.get("from"));
    if (fromTag === undefined) return;
    const ack = this.dialogs.match(res.headers.get("call-id") ?? "", fromTag)?.lastAck;
    if (ack !== undefined && ack.seq === cseq.seq)
      this.guard(() => this.stack.sendAck(ack.request, ack.dest), "re-ACK");
  }

  private onCancel(st: ServerTransaction, cancel: IncomingRequest): void {
    this.proxies.get(st.id)?.cancel();
    const txn = this.netByStId.get(st.id);
    if (txn === undefined || txn.app.closed) return;
    // srf finds the INVITE by Call-ID; drachtio sends the INVITE's transaction id and the dialog id
    txn.app.send(sipLeader(networkMeta(cancel), txn.id, txn.dialogId), rawOf(cancel));
    if (txn.request.method === "INVITE") this.cdr("stop", "network", cancel.raw, "call-canceled");
    this.forgetNet(txn);
    if (txn.early !== undefined) this.dialogs.remove(txn.early);
  }

  // ---------------------------------------------------------------- app → network

  /**
   * `proxy|<txnId>|<remainInDialog>|<fullResponse>|<followRedirects>|<simultaneous|serial>|<provisionalTimeout>|
   * <finalTimeout>|<destination>...` — the app hands a received request back to be proxied.
   */
  onProxy(app: AppSession, msg: AppMessage): void {
    const [txnId = "", remainInDialog, , , mode = "serial", , , ...destinations] = msg.args;
    const txn = this.netTxns.get(txnId);
    if (txn === undefined || txn.app !== app) {
      // srf's proxy callback only treats "NOK" as a failure (anything else is parsed as a SIP response)
      app.fail(msg.msgId, `Unknown transaction id: ${txnId}`);
      return;
    }
    const extra: [string, string][] = [];
    if (msg.sip !== undefined) {
      try {
        const stub = parseAppSip(msg.sip);
        for (const [name, value] of stub.headers.entries()) extra.push([name, value]);
      } catch {
        // a stub without usable headers: forward the request unchanged
      }
    }
    this.forgetNet(txn); // the app gave the request away: it will not answer it
    const st = txn.st;
    const op = new ProxyOperation(
      this.stack,
      st,
      app,
      {
        msgId: msg.msgId,
        txnId,
        destinations,
        simultaneous: mode === "simultaneous",
        headers: extra,
        ...(remainInDialog === "remainInDialog"
          ? { recordRoute: (from: Peer, to: Peer) => this.looseRouter.recordRoute(from, to) }
          : {}),
      },
      () => this.proxies.delete(st.id),
      (type, source, raw, extra) => this.cdr(type, source, raw, extra),
    );
    this.proxies.set(st.id, op);
    op.start();
  }

  onSip(app: AppSession, msg: AppMessage): void {
    const txnId = msg.args[0] ?? "";
    const dialogId = msg.args[1] ?? "";
    const route = msg.args[2] ?? "";
    if (msg.sip === undefined) {
      app.fail(msg.msgId, "missing SIP message");
      return;
    }
    let sip: SipRequest | SipResponse;
    try {
      sip = parseAppSip(msg.sip);
    } catch (err) {
      app.fail(msg.msgId, (err as Error).message);
      return;
    }
    try {
      if (sip.kind === "response") this.appResponse(app, msg.msgId, txnId, sip);
      else if (dialogId !== "") this.appInDialogRequest(app, msg.msgId, dialogId, sip);
      else if (sip.method === "CANCEL" && txnId !== "") this.appCancel(app, msg.msgId, txnId, sip);
      else {
        // like drachtio: a request without ids whose Call-ID belongs to one of the app's dialogs is sent in it
        const inDialog = txnId === "" ? this.dialogs.byCallId(sip.headers.get("call-id") ?? "") : undefined;
        if (inDialog !== undefined && inDialog.app === app)
          this.appInDialogRequest(app, msg.msgId, inDialog.id, sip);
        else this.appNewRequest(app, msg.msgId, route, sip);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "app request failed");
      app.fail(msg.msgId, `Server error: ${(err as Error).message}`);
    }
  }

  private appResponse(app: AppSession, msgId: string, txnId: string, stub: SipResponse): void {
    if (txnId === "") {
      // drachtio (client.cpp processClientMessage) answers this at the connection level, with NO
      app.reply(msgId, false, "transaction id missing");
      return;
    }
    const txn = this.netTxns.get(txnId);
    if (txn === undefined || txn.app !== app) {
      const method = parseCSeq(stub.headers.get("cseq") ?? "")?.method;
      app.fail(
        msgId,
        method === "CANCEL"
          ? "200 OK to incoming CANCEL is automatically generated by the stack"
          : "Response not sent due to unknown transaction",
      );
      return;
    }
    const req = txn.request;
    const status = stub.status;
    // our To tag: the app may choose it (srf `headers: {to: ...;tag=x}`), else one per transaction
    if (txn.dialog === undefined && status > 100 && txn.localTag === undefined) {
      txn.localTag = tagOf(stub.headers.get("to")) ?? newTag();
    }
    const res = createResponse(req, status, stub.reason || undefined, { toTag: txn.localTag });
    const method = req.method;
    const local = this.stack.advertisedAddress(txn.source);
    for (const [name, value] of stub.headers.entries()) {
      const key = name.toLowerCase();
      if (key === "via" || key === "from" || key === "to" || key === "call-id" || key === "cseq") continue;
      if (LOCALHOST_HEADERS.has(headerKey(name))) res.headers.append(name, rewriteLocalhost(value, local));
      else res.headers.append(name, value);
    }
    const dialogForming = method === "INVITE" || method === "SUBSCRIBE";
    if (dialogForming && status > 100 && status < 300 && !res.headers.has("contact")) {
      res.headers.append("Contact", txn.dialog?.localContact ?? contactFor(local));
    }
    res.body = stub.body;
    if (stub.body.length > 0 && !res.headers.has("content-type")) {
      const ct = inferContentType(stub.body);
      if (ct) res.headers.append("Content-Type", ct);
    }
    // doRespondToSipRequest: a provisional response the app marks `Require: 100rel` is sent reliably (RFC 3262),
    // which the caller must support
    const reliable =
      method === "INVITE" && status > 100 && status < 200 && has100rel(res.headers.get("require"));
    if (reliable) {
      if (!has100rel(req.headers.get("supported")) && !has100rel(req.headers.get("require"))) {
        app.fail(msgId, "Remote endpoint does not support 100rel");
        return;
      }
      txn.rseq = txn.rseq === undefined ? Math.floor(Math.random() * 0x7fffffff) + 1 : txn.rseq + 1;
      res.headers.append("RSeq", String(txn.rseq));
    }
    // doRespondToSipRequest: the app's Session-Expires, or else the caller's when it named a refresher (then copied
    // into the 200), sets the timer; the interval is at least Min-SE
    let uasSession: { seconds: number; weRefresh: boolean } | undefined;
    if (method === "INVITE" && status === 200 && txn.dialog === undefined) {
      const appSe = parseSessionExpires(res.headers.get("session-expires"));
      const reqSe = parseSessionExpires(req.headers.get("session-expires"));
      const se = appSe ?? (reqSe?.refresher !== undefined ? reqSe : undefined);
      if (appSe === undefined && se !== undefined)
        res.headers.append("Session-Expires", `${se.seconds};refresher=${se.refresher ?? "uac"}`);
      if (se !== undefined)
        uasSession = { seconds: Math.max(MIN_SE, se.seconds), weRefresh: se.refresher === "uas" };
    }
    const wire = txn.st.respond(res);
    if (wire === "") {
      app.fail(msgId, "Response not sent: transaction already completed");
      if (status >= 200) this.forgetNet(txn);
      return;
    }
    let dialogId = "";
    if (txn.dialog !== undefined) {
      dialogId = txn.dialog.id;
      if (method === "INVITE" && status >= 200 && status < 300) {
        const contact = res.headers.top("contact");
        if (contact !== undefined) txn.dialog.localContact = contact;
        awaitAck(txn.st, txn.dialog);
      }
    } else if (method === "INVITE" && status > 100 && status < 200) {
      txn.early ??= this.createUasDialog(txn, res, true);
      dialogId = txn.early.id;
    } else if (method === "INVITE" && status >= 200 && status < 300 && txn.early !== undefined) {
      dialogId = this.confirmEarly(txn, res).id;
    } else if (
      status >= 200 &&
      status < 300 &&
      (method === "INVITE" || (method === "SUBSCRIBE" && (status === 200 || status === 202)))
    ) {
      dialogId = this.createUasDialog(txn, res).id;
    } else if (status >= 300 && txn.early !== undefined) {
      this.dialogs.remove(txn.early);
    }
    // drachtio names the would-be dialog in every response to an INVITE/SUBSCRIBE it is handling (its IIP holds
    // the dialog from the start), failures and 100 included
    if (dialogId === "" && txn.dialog === undefined && (method === "INVITE" || method === "SUBSCRIBE"))
      dialogId = txn.dialogId;
    if (reliable && txn.rseq !== undefined) this.retransmitReliable(txn, res, txn.rseq);
    else if (status >= 200) this.stopReliable(txn);
    const inDialog = method === "INVITE" && status < 300 ? this.dialogs.get(dialogId) : undefined;
    if (inDialog !== undefined && stub.body.length > 0) {
      inDialog.localSdp = {
        body: stub.body,
        contentType: res.headers.get("content-type") ?? "application/sdp",
      };
    }
    if (inDialog !== undefined && uasSession !== undefined)
      startSessionTimer(inDialog, uasSession.seconds, uasSession.weRefresh, this.sessionActions);
    app.send(
      sentLeader(msgId, appMeta(wire, txn.source), txnId, dialogId),
      wire,
      dialogId !== "" && status < 300,
    );
    if (method === "INVITE" && txn.dialog === undefined && status >= 200) {
      // doRespondToSipRequest: a start record for 200 only (not other 2xx), a stop for any failure
      if (status === 200) this.cdr("start", "application", wire, "uas");
      else if (status >= 300) this.cdr("stop", "application", wire, "call-rejected");
    }
    if (status >= 200) this.forgetNet(txn);
  }

  private createUasDialog(txn: NetTxn, res: SipResponse, early = false): Dialog {
    const req = txn.request;
    const callId = req.headers.get("call-id") ?? "";
    const remoteHeader = req.headers.get("from") ?? "";
    const localHeader = res.headers.get("to") ?? "";
    const cseq = parseCSeq(req.headers.get("cseq") ?? "");
    const d: Dialog = {
      id: txn.dialogId,
      role: "uas",
      kind: req.method,
      callId,
      localTag: txn.localTag ?? "",
      remoteTag: tagOf(remoteHeader) ?? "",
      localHeader,
      remoteHeader,
      remoteTarget: uriOf(req.headers.top("contact")) ?? uriOf(remoteHeader) ?? req.uri,
      routeSet: req.headers.getAll("record-route"),
      localSeq: Math.floor(Math.random() * 10_000) + 1,
      remoteSeq: cseq?.seq,
      localContact: res.headers.top("contact") ?? "",
      peer: txn.source,
      app: txn.app,
      inviteSeq: 0,
      acked: false,
      terminated: false,
    };
    if (early) d.early = { inviteTxnId: txn.id };
    if (req.method === "INVITE") d.inviteTxnId = txn.id;
    if (d.kind === "SUBSCRIBE")
      refreshSubscription(d, res.headers.get("expires") ?? req.headers.get("expires"));
    this.dialogs.add(d);
    this.resolveRoute(d);
    if (req.method === "INVITE" && !early) this.watchAck(txn, d);
    return d;
  }

  /** The 2xx confirms the early dialog our provisional response created. */
  private confirmEarly(txn: NetTxn, res: SipResponse): Dialog {
    const d = txn.early as Dialog;
    d.early = undefined;
    d.localContact = res.headers.top("contact") ?? d.localContact;
    this.watchAck(txn, d);
    return d;
  }

  /** No ACK for our 2xx within 64*T1: end the call as drachtio does (BYE, unsolicited BYE to the app). */
  private watchAck(txn: NetTxn, d: Dialog): void {
    awaitAck(txn.st, d);
    txn.st.on("ack-timeout", () => {
      if (!d.acked && !d.terminated) this.teardown(d, "ACK timeout", true);
    });
  }

  private appInDialogRequest(app: AppSession, msgId: string, dialogId: string, stub: SipRequest): void {
    const d = this.dialogs.get(dialogId);
    // drachtio (doSendRequestInsideDialog) prefixes the errors it throws there with "Server error: "
    if (d === undefined || d.app !== app) {
      app.fail(
        msgId,
        stub.method === "ACK"
          ? "Server error: ACK for non-success final response is automatically generated by server"
          : "Server error: unable to find dialog for dialog id provided",
      );
      return;
    }
    if (missingContentType(stub)) {
      app.fail(msgId, "Server error: missing content-type");
      return;
    }
    rewriteLocalhostHeaders(stub.headers, this.stack.advertisedAddress(d.peer));
    if (
      stub.method === "ACK" &&
      d.inviteFinal !== undefined &&
      (d.inviteFinal < 200 || d.inviteFinal >= 300)
    ) {
      app.fail(msgId, "ACK for non-success responses is automatically generated by the stack");
      return;
    }
    const req = buildInDialogRequest(d, stub);
    const dest = dialogDestination(d, this.stack);
    const txnId = newId();
    const contentType = req.headers.get("content-type");
    if (req.method === "INVITE" && req.body.length > 0 && contentType === "application/sdp")
      d.localSdp = { body: req.body, contentType };
    if (req.method === "ACK") {
      const wire = this.stack.sendAck(req, dest);
      d.lastAck = { request: req, dest, seq: d.inviteSeq };
      if (d.ackBye) this.teardown(d, "ACK-BYE due to cancel race condition", true);
      app.send(sentLeader(msgId, appMeta(wire, dest), txnId), wire);
      return;
    }
    const ct = this.stack.sendRequest(req, dest);
    if (req.method === "BYE" && d.kind === "INVITE")
      this.cdr("stop", "application", ct.wire, "normal-release");
    const txn: AppTxn = { id: txnId, ct, app, dest, dialog: d, final: false };
    this.watchAppTxn(txn);
    app.send(sentLeader(msgId, appMeta(ct.wire, dest), txnId), ct.wire);
  }

  private appCancel(app: AppSession, msgId: string, txnId: string, stub: SipRequest): void {
    const txn = this.appTxns.get(txnId);
    if (txn === undefined || txn.app !== app || txn.ct.method !== "INVITE") {
      app.fail(msgId, `unable to cancel unknown transaction id: ${txnId}`);
      return;
    }
    // drachtio.cpp makeSafeTags: the app's headers go on the CANCEL except those that identify the INVITE's
    // transaction and dialog (which the CANCEL must repeat unchanged) and the ones no app may set
    const extra: [string, string][] = [];
    for (const [name, value] of stub.headers.entries()) {
      if (!CANCEL_FIXED_HEADERS.has(headerKey(name))) extra.push([name, value]);
    }
    const cancel = txn.ct.cancel(extra);
    txn.canceled = true;
    if (cancel === undefined) {
      app.fail(msgId, `internal server error canceling transaction id: ${txnId}`);
      return;
    }
    app.send(sentLeader(msgId, appMeta(cancel.wire, txn.dest), newId()), cancel.wire);
  }

  private appNewRequest(app: AppSession, msgId: string, route: string, stub: SipRequest): void {
    const target = resolveTarget(this.stack, route !== "" ? route : stub.uri);
    if (!(target instanceof Promise)) {
      this.sendNewRequest(app, msgId, stub, target);
      return;
    }
    target.then(
      (dest) => {
        if (app.closed || this.closing) return;
        try {
          this.sendNewRequest(app, msgId, stub, dest);
        } catch (err) {
          app.fail(msgId, `Server error: ${(err as Error).message}`);
        }
      },
      (err: unknown) => app.fail(msgId, `Server error: ${(err as Error).message}`),
    );
  }

  private sendNewRequest(app: AppSession, msgId: string, stub: SipRequest, dest: Peer): void {
    const method = stub.method;
    if (this.isSelf(dest)) {
      // a request to our own listener would come straight back to an app: a loop (drachtio refuses it too)
      app.fail(msgId, "can not send request to myself");
      return;
    }
    if (missingContentType(stub)) {
      // doSendRequestOutsideDialog: a body that is not SDP needs the app's Content-Type
      app.fail(msgId, "missing content-type");
      return;
    }
    const local = this.stack.advertisedAddress(dest);
    const h = new SipHeaders();
    let from: string | undefined;
    let to: string | undefined;
    let callId: string | undefined;
    let cseq: string | undefined;
    for (const [name, value] of stub.headers.entries()) {
      const key = name.toLowerCase();
      if (key === "via") continue;
      if (key === "from" || key === "f") from = value;
      else if (key === "to" || key === "t") to = value;
      else if (key === "call-id" || key === "i") callId = value;
      else if (key === "cseq") cseq = value;
      else if (LOCALHOST_HEADERS.has(headerKey(name))) h.append(name, rewriteLocalhost(value, local));
      else h.append(name, value);
    }
    from = from === undefined ? contactFor(local) : rewriteLocalhost(from, local);
    let fromTag = tagOf(from);
    if (fromTag === undefined) {
      fromTag = newTag();
      from = `${from};tag=${fromTag}`;
    }
    to = to === undefined ? `<${stub.uri}>` : rewriteLocalhost(to, local);
    callId = callId ?? newCallId();
    const seq = parseCSeq(cseq ?? "")?.seq ?? 1;
    h.prepend("CSeq", `${seq} ${method}`);
    h.prepend("Call-ID", callId);
    h.prepend("To", to);
    h.prepend("From", from);
    if (!h.has("max-forwards")) h.prepend("Max-Forwards", "70");
    const dialogForming = method === "INVITE" || method === "SUBSCRIBE";
    if (dialogForming && !h.has("contact")) h.append("Contact", contactFor(local));
    if (stub.body.length > 0 && !h.has("content-type")) {
      const ct = inferContentType(stub.body);
      if (ct) h.append("Content-Type", ct);
    }
    const req: SipRequest = {
      kind: "request",
      method,
      uri: stub.uri,
      version: "SIP/2.0",
      headers: h,
      body: stub.body,
    };
    const ct = this.stack.sendRequest(req, dest);
    if (method === "INVITE") this.cdr("attempt", "application", ct.wire);
    const txnId = newId();
    const txn: AppTxn = {
      id: txnId,
      ct,
      app,
      dest,
      dialogId: dialogForming ? dialogIdFor(callId, fromTag) : undefined,
      final: false,
    };
    this.watchAppTxn(txn);
    app.send(sentLeader(msgId, appMeta(ct.wire, dest), txnId), ct.wire);
  }

  /**
   * drachtio's CDR events (srf.on('cdr:attempt'|'cdr:start'|'cdr:stop')): sent to one app that routed the record
   * type: `<id>|cdr:<type>|<source>|<time>[|<role or reason>]` + the SIP message. Free when no app asked for them.
   */
  private cdr(
    type: "attempt" | "start" | "stop",
    source: string,
    msg: Buffer | string,
    extra?: string,
  ): void {
    const app = this.admin?.selectApp(`cdr:${type}`);
    if (app === undefined) return;
    const tail = extra === undefined ? "" : `|${extra}`;
    app.send(`${newId()}|cdr:${type}|${source}|${wireTime(Date.now())}${tail}\r\n`, msg);
  }

  /** Whether a destination is one of our own SIP listeners. */
  private isSelf(dest: Peer): boolean {
    for (const h of this.stack.hostports) {
      if (h.port !== dest.port) continue;
      if (h.address === dest.address) return true;
      if ((h.address === "0.0.0.0" || h.address === "::") && this.localAddresses.has(dest.address))
        return true;
    }
    return false;
  }

  private watchAppTxn(txn: AppTxn): void {
    this.appTxns.set(txn.id, txn);
    txn.app.appTxns.add(txn.id);
    const { ct } = txn;
    ct.on("response", (res, raw, source) => this.onAppTxnResponse(txn, res, raw, source));
    ct.on("timeout", () => this.synthesize(txn, 408));
    ct.on("transport-error", () => this.synthesize(txn, 503));
    ct.on("terminated", () => {
      this.forgetApp(txn);
      if (txn.early !== undefined) this.dialogs.remove(txn.early);
    });
  }

  private forgetApp(txn: AppTxn): void {
    if (this.appTxns.get(txn.id) === txn) this.appTxns.delete(txn.id);
    txn.app.appTxns.delete(txn.id);
  }

  private onAppTxnResponse(txn: AppTxn, res: SipResponse, raw: Buffer, source: Peer): void {
    const method = txn.ct.method;
    const status = res.status;
    // like sofia-sip under drachtio-server (no NTATAG_PASS_100), 100 Trying stays in the stack
    if (status === 100) return;
    let dialogId = txn.dialog?.id ?? txn.dialogId ?? "";
    if (method === "INVITE" && txn.dialog === undefined && txn.dialogId !== undefined && !txn.final) {
      if (status < 200) {
        // the callee's early dialog: its requests (UPDATE, INFO...) reach the app before the answer
        if (txn.early === undefined && tagOf(res.headers.get("to")) !== undefined) {
          txn.early = this.createUacDialog(txn, res, source, true);
        }
      } else if (txn.early !== undefined) {
        // the final response replaces it (a 2xx creates the confirmed dialog below, maybe from another fork)
        this.dialogs.remove(txn.early);
        txn.early = undefined;
      }
    }
    if (status >= 200 && status < 300 && method === "INVITE") {
      const d = txn.dialog ?? this.dialogs.get(txn.dialogId ?? "");
      if (txn.final) {
        // 2xx retransmission: re-send our ACK (drachtio's timer D handling); the app saw it already
        if (d?.lastAck !== undefined && d.lastAck.seq === parseCSeq(res.headers.get("cseq") ?? "")?.seq) {
          this.stack.sendAck(d.lastAck.request, d.lastAck.dest);
        }
        return;
      }
      if (d === undefined && txn.dialogId !== undefined) {
        const created = this.createUacDialog(txn, res, source);
        dialogId = created.id;
        if (txn.canceled) this.raceAckBye(created);
        else if (status === 200) this.uacSession(created, res);
      } else if (d !== undefined) {
        const target = uriOf(res.headers.top("contact"));
        if (target !== undefined) d.remoteTarget = target;
        if (status === 200 && txn.dialog !== undefined) this.uacSession(d, res);
      }
    } else if (status >= 200 && status < 300 && method === "SUBSCRIBE" && txn.dialogId !== undefined) {
      if (!txn.final && this.dialogs.get(txn.dialogId) === undefined) {
        const d = this.createUacDialog(txn, res, source);
        refreshSubscription(d, res.headers.get("expires") ?? txn.ct.request.headers.get("expires"));
        dialogId = d.id;
      }
    }
    if (txn.final) return;
    if (status >= 200 && status < 300 && method === "SUBSCRIBE" && txn.dialog !== undefined) {
      refreshSubscription(txn.dialog, res.headers.get("expires") ?? txn.ct.request.headers.get("expires"));
    }
    if (status >= 200) {
      txn.final = true;
      if (method === "INVITE" && txn.dialog === undefined) {
        // processResponseOutsideDialog: start for 200 only, stop for failures
        if (status === 200) this.cdr("start", "network", raw, "uac");
        else if (status >= 300)
          this.cdr("stop", "network", raw, status === 487 ? "call-canceled" : "call-rejected");
      }
      if (method === "INVITE" && txn.dialog !== undefined) txn.dialog.inviteFinal = status;
      this.forgetApp(txn);
      const d = txn.dialog;
      // drachtio clears the dialog on the response to our BYE, or to the NOTIFY that terminates a subscription
      if (d !== undefined && status !== 401 && status !== 407) {
        if (
          method === "BYE" ||
          (method === "NOTIFY" && d.kind === "SUBSCRIBE" && isTerminated(txn.ct.request))
        ) {
          this.dialogs.remove(d);
        }
      }
    }
    if (txn.app.closed) return;
    const meta = metaFor("network", raw.length, source);
    const createsDialog = status >= 200 && status < 300 && txn.dialog === undefined && dialogId !== "";
    txn.app.send(
      sipLeader(meta, txn.id, dialogId),
      wellFormed(raw) ? raw : serializeMessage(res),
      createsDialog,
    );
  }

  private createUacDialog(txn: AppTxn, res: SipResponse, source: Peer, early = false): Dialog {
    const req = txn.ct.request;
    const remoteHeader = res.headers.get("to") ?? "";
    const seq = parseCSeq(req.headers.get("cseq") ?? "")?.seq ?? 1;
    const d: Dialog = {
      id: txn.dialogId ?? "",
      role: "uac",
      kind: txn.ct.method,
      callId: req.headers.get("call-id") ?? "",
      localTag: tagOf(req.headers.get("from")) ?? "",
      remoteTag: tagOf(remoteHeader) ?? "",
      localHeader: req.headers.get("from") ?? "",
      remoteHeader,
      remoteTarget: uriOf(res.headers.top("contact")) ?? req.uri,
      routeSet: res.headers.getAll("record-route").reverse(),
      localSeq: seq,
      remoteSeq: undefined,
      localContact: req.headers.top("contact") ?? "",
      peer: source,
      app: txn.app,
      inviteSeq: seq,
      acked: true,
      terminated: false,
    };
    if (early) d.early = { inviteTxnId: txn.id };
    if (req.body.length > 0)
      d.localSdp = { body: req.body, contentType: req.headers.get("content-type") ?? "" };
    this.dialogs.add(d);
    this.resolveRoute(d);
    return d;
  }

  /** Resolve the first route of a new dialog ahead of its first request (host names need DNS). */
  private resolveRoute(d: Dialog): void {
    const uri = uriOf(d.routeSet[0]);
    if (uri === undefined) return;
    try {
      const hop = resolveTarget(this.stack, uri);
      if (hop instanceof Promise) {
        hop.then(
          (peer) => {
            d.routeHop = peer;
          },
          () => undefined, // keep sending to the peer's source address
        );
      } else d.routeHop = hop;
    } catch {
      // unusable route: requests go to the peer's source address
    }
  }

  /**
   * A 2xx crossed the app's CANCEL: the dialog is ended right after the ACK. The app normally sends that ACK
   * (srf acks every final response); if it does not within 2 s, the engine ACKs itself, then BYEs.
   */
  private raceAckBye(d: Dialog): void {
    d.ackBye = true;
    const timer = setTimeout(() => {
      if (d.terminated || d.lastAck !== undefined) return;
      this.guard(() => {
        const ack = buildInDialogRequest(d, emptyStub("ACK"));
        const dest = dialogDestination(d, this.stack);
        this.stack.sendAck(ack, dest);
        d.lastAck = { request: ack, dest, seq: d.inviteSeq };
      }, "ACK for a 2xx that crossed a CANCEL");
      this.teardown(d, "ACK-BYE due to cancel race condition", true);
    }, 2000);
    timer.unref();
  }

  /** A final response the network never sent (timeout, transport failure), as sofia reports it to drachtio. */
  private synthesize(txn: AppTxn, status: number): void {
    if (txn.final) return;
    const res = createResponse(txn.ct.request, status);
    const raw = serializeMessage(res);
    this.onAppTxnResponse(txn, res, raw, txn.dest);
  }

  // ---------------------------------------------------------------- teardown

  /** End a dialog from the engine's side: BYE to the peer, optionally tell the app as drachtio does. */
  private teardown(d: Dialog, reason: string, notifyApp: boolean, cdrReason?: string): void {
    if (d.terminated) return;
    this.dialogs.remove(d);
    // an early dialog ends with the INVITE's final response, not with a BYE
    if (d.kind !== "INVITE" || d.early !== undefined) return;
    const bye = buildInDialogRequest(d, emptyStub("BYE", [["Reason", `SIP ;cause=200 ;text="${reason}"`]]));
    const dest = dialogDestination(d, this.stack);
    let ct: ClientTransaction;
    try {
      ct = this.stack.sendRequest(bye, dest);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "could not send BYE");
      return;
    }
    if (notifyApp && !d.app.closed)
      d.app.send(sipLeader(appMeta(ct.wire, dest), "unsolicited", d.id), ct.wire);
    if (cdrReason !== undefined) this.cdr("stop", "application", ct.wire, cdrReason);
  }

  /**
   * We are the refresher and half the interval has passed: a re-INVITE with our last SDP, Session-Expires
   * (refresher=uac) and Min-SE, which the app never sees (drachtio notifyRefreshDialog). A 200 is ACKed and its
   * Session-Expires restarts the timer; anything else ends the dialog (processResponseToRefreshingReinvite).
   */
  private refreshSession(d: Dialog, seconds: number): void {
    const headers: [string, string][] = [
      ["Session-Expires", `${seconds}; refresher=uac`],
      ["Min-SE", String(MIN_SE)],
    ];
    if (d.localSdp !== undefined) headers.push(["Content-Type", d.localSdp.contentType]);
    const stub = emptyStub("INVITE", headers);
    if (d.localSdp !== undefined) stub.body = d.localSdp.body;
    const dest = dialogDestination(d, this.stack);
    let ct: ClientTransaction;
    try {
      ct = this.stack.sendRequest(buildInDialogRequest(d, stub), dest);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "could not send a refreshing re-INVITE");
      return;
    }
    let answered = false;
    ct.on("response", (res) => {
      if (res.status < 200 || d.terminated) return;
      if (answered) {
        // a retransmitted 2xx: the peer lost our ACK
        if (res.status < 300 && d.lastAck !== undefined)
          this.stack.sendAck(d.lastAck.request, d.lastAck.dest);
        return;
      }
      answered = true;
      if (res.status >= 300) {
        this.sessionActions.expire(d);
        return;
      }
      const ack = buildInDialogRequest(d, emptyStub("ACK"));
      this.guard(() => this.stack.sendAck(ack, dest), "ACK of a refreshing re-INVITE");
      d.lastAck = { request: ack, dest, seq: d.inviteSeq };
      const se = parseSessionExpires(res.headers.get("session-expires"));
      if (se !== undefined) startSessionTimer(d, se.seconds, se.refresher !== "uas", this.sessionActions);
    });
    const failed = (): void => {
      if (!answered && !d.terminated) this.sessionActions.expire(d);
    };
    ct.on("timeout", failed);
    ct.on("transport-error", failed);
  }

  onAppClosed(app: AppSession): void {
    if (this.closing) return;
    for (const id of [...app.netTxns]) {
      const txn = this.netTxns.get(id);
      if (txn === undefined) continue;
      this.forgetNet(txn);
      this.guard(() => txn.st.respond(createResponse(txn.request, 503)), "503 after app disconnect");
    }
    for (const id of [...app.appTxns]) {
      const txn = this.appTxns.get(id);
      if (txn === undefined) continue;
      this.forgetApp(txn);
      if (!txn.final && txn.ct.method === "INVITE")
        this.guard(() => txn.ct.cancel(), "CANCEL after app disconnect");
    }
    for (const id of [...app.dialogs]) {
      const d = this.dialogs.get(id);
      if (d !== undefined) this.teardown(d, "application disconnected", false);
    }
  }

  /** Run a stack call whose failure must not escape into a socket or timer callback. */
  private guard(fn: () => unknown, what: string): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, `${what} failed`);
    }
  }

  /** Forget requests an app never answered (drachtio gives up after 64 s) so memory stays bounded. */
  private sweep(): void {
    const now = Date.now();
    for (const txn of this.netTxns.values()) {
      const limit = txn.request.method === "INVITE" ? STALE_INVITE_MS : STALE_NON_INVITE_MS;
      if (now - txn.createdAt > limit) {
        this.forgetNet(txn);
        const status = txn.request.method === "INVITE" ? 408 : 500;
        if (txn.early !== undefined) this.dialogs.remove(txn.early);
        this.guard(() => txn.st.respond(createResponse(txn.request, status)), "stale transaction response");
      }
    }
    for (const d of this.dialogs.values()) {
      if (d.expiresAt !== undefined && d.expiresAt < now) this.dialogs.remove(d);
    }
  }
}

/** Remember the INVITE transaction retransmitting our 2xx until its ACK, so ending the dialog can stop it. */
function awaitAck(st: ServerTransaction, d: Dialog): void {
  d.unackedInvite = st;
  st.on("terminated", () => {
    if (d.unackedInvite === st) d.unackedInvite = undefined;
  });
}

/** Subscription lifetime from an Expires value (default 3600 s), plus a grace of up to 32 s for late refreshes. */
function refreshSubscription(d: Dialog, expires: string | undefined): void {
  const n = expires === undefined ? Number.NaN : Number.parseInt(expires, 10);
  const secs = Number.isFinite(n) && n >= 0 ? n : 3600;
  if (secs === 0) return; // an unsubscribe: the terminating NOTIFY ends the dialog
  d.expiresAt = Date.now() + secs * 1000 + Math.min(32_000, secs * 1000);
}

/** An in-dialog request stub like the ones srf sends (`BYE sip:placeholder SIP/2.0`). */
function emptyStub(method: string, headers: [string, string][] = []): SipRequest {
  return {
    kind: "request",
    method,
    uri: "sip:placeholder",
    version: "SIP/2.0",
    headers: new SipHeaders(headers),
    body: Buffer.alloc(0),
  };
}

const OPTION_100REL = /(^|[\s,])100rel($|[\s,])/i;

/** Whether a Require/Supported value lists the 100rel option tag. */
function has100rel(value: string | undefined): boolean {
  return value !== undefined && OPTION_100REL.test(value);
}

/** REGISTER with `Contact: *` but a non-zero Expires (RFC 3261 §10.2.2 allows `*` only with Expires: 0). */
function isWildcardRegisterWithExpiry(req: SipRequest): boolean {
  if (req.headers.get("contact")?.trim() !== "*") return false;
  const expires = req.headers.get("expires");
  return expires !== undefined && Number.parseInt(expires, 10) !== 0;
}

/** A body without Content-Type that drachtio cannot infer (it only recognises SDP): the request is refused. */
function missingContentType(stub: SipRequest): boolean {
  return (
    stub.body.length > 0 && !stub.headers.has("content-type") && inferContentType(stub.body) === undefined
  );
}

function isTerminated(req: SipRequest): boolean {
  return (req.headers.get("subscription-state") ?? "").toLowerCase().startsWith("terminated");
}

/**
 * The received bytes as the app gets them. drachtio-srf's parser needs CRLF line ends and no CRLFs before the
 * start line (RFC 3261 §7.5 lets senders put them there, and our parser accepts bare LF), so such messages are
 * re-serialized from the parsed form; everything else goes out exactly as received.
 */
function rawOf(msg: IncomingRequest): Buffer {
  return wellFormed(msg.raw) ? msg.raw : serializeMessage(msg.request);
}

function wellFormed(raw: Buffer): boolean {
  if (raw.length === 0 || raw[0] === 0x0d || raw[0] === 0x0a) return false;
  let end = raw.indexOf(CRLFCRLF);
  if (end === -1) end = raw.length;
  let i = raw.indexOf(0x0a);
  while (i !== -1 && i < end) {
    if (i === 0 || raw[i - 1] !== 0x0d) return false;
    i = raw.indexOf(0x0a, i + 1);
  }
  return true;
}

function networkMeta(msg: IncomingRequest): WireMeta {
  return metaFor("network", msg.raw.length, msg.source, msg.receivedAt);
}

function appMeta(wire: string, dest: Peer): WireMeta {
  return metaFor("application", Buffer.byteLength(wire, "utf8"), dest);
}
