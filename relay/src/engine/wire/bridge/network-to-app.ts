// Network → app: requests that arrive from the network (new ones to the app that routes the method, in-dialog
// ones to the dialog's app, ACK, CANCEL, an early BYE), the app's responses to them back onto the server
// transaction (To tag, Contact, reliable provisionals, session timers, the UAS dialogs they create), and the app
// handing such a request back to be proxied. drachtio-server's own answers (481, 491, 400, 501, 503, 422) are
// given here before any app sees the request.
import { type Dialog, dialogIdFor, tagOf, uriOf } from "../../dialog/dialog.ts";
import { contactFor, inferContentType, LOCALHOST_HEADERS, rewriteLocalhost } from "../../dialog/requests.ts";
import {
  MIN_SE,
  parseSessionExpires,
  startSessionTimer,
  stopSessionTimer,
} from "../../dialog/session-timer.ts";
import {
  createResponse,
  headerKey,
  newTag,
  parseCSeq,
  type SipRequest,
  type SipResponse,
  serializeMessage,
} from "../../sip/message.ts";
import { inviteSibling } from "../../sip/request.ts";
import type { IncomingAck, IncomingRequest, Peer, ServerTransaction } from "../../stack/index.ts";
import { parseAppSip } from "../app-sip.ts";
import { type AppMessage, newId, sentLeader, sipLeader } from "../protocol.ts";
import { ProxyOperation } from "../proxy.ts";
import type { AppSession } from "../server.ts";
import { resolveRoute } from "./dialog-control.ts";
import {
  appMeta,
  awaitAck,
  type BridgeContext,
  isTerminated,
  type NetTxn,
  networkMeta,
  rawOf,
  refreshSubscription,
} from "./state.ts";

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
/** How long an app may leave a request unanswered before the engine answers it (drachtio gives up too). */
const STALE_NON_INVITE_MS = 32_000;
const STALE_INVITE_MS = 300_000;

export class NetworkToApp {
  constructor(private readonly ctx: BridgeContext) {}

  onRequest(st: ServerTransaction, msg: IncomingRequest): void {
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
    const existing = req.method === "INVITE" ? this.ctx.dialogs.get(dialogId) : undefined;
    if (existing !== undefined && existing.role === "uas" && existing.early === undefined) {
      // the caller's INVITE again, on a new transaction, after we answered it: drachtio
      // (controller.cpp processRequestInsideDialog) answers 491 rather than offering the app a second call
      // with the same dialog id
      st.respond(createResponse(req, 491));
      return;
    }
    const app = this.ctx.admin?.selectApp(req.method);
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
        this.ctx.cdr("attempt", "network", msg.raw);
        if (wire !== "") this.ctx.cdr("stop", "application", wire, "call-rejected");
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
    if (req.method === "INVITE") this.ctx.cdr("attempt", "network", msg.raw);
  }

  /**
   * The Allow list: the standard methods some app routes, with the ones that follow from them (inside an INVITE
   * dialog the engine delivers ACK, BYE, PRACK, UPDATE, INFO and REFER to the dialog's app; NOTIFY in a
   * subscription), and CANCEL, which the stack answers itself.
   */
  private allowed(): string {
    const allow = new Set<string>();
    for (const key of this.ctx.admin?.routedMethods() ?? []) {
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
    if (this.ctx.looseRouter.forward(st, msg)) return;
    const req = msg.request;
    const d = this.ctx.dialogs.match(req.headers.get("call-id") ?? "", toTag);
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
    if (req.method === "BYE" && d.kind === "INVITE")
      this.ctx.cdr("stop", "network", msg.raw, "normal-release");
    // drachtio ends the dialog when the BYE (or final NOTIFY of a subscription) arrives
    if (req.method === "BYE" || (req.method === "NOTIFY" && d.kind === "SUBSCRIBE" && isTerminated(req))) {
      this.ctx.dialogs.remove(d);
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
    startSessionTimer(d, se.seconds, !theyRefresh, this.ctx.sessionActions);
    return true;
  }

  /**
   * Retransmit a reliable provisional response, T1 doubling, until its PRACK, the final response, or 64*T1 (RFC 3262
   * §3; sofia does this for drachtio's nta_reliable_treply).
   */
  private retransmitReliable(txn: NetTxn, res: SipResponse, rseq: number): void {
    this.stopReliable(txn);
    const T1 = this.ctx.stack.T1;
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
    const invite = this.ctx.netTxns.get(d.early?.inviteTxnId ?? "");
    const pending = invite?.reliable;
    if (invite === undefined || pending === undefined) return;
    const rseq = Number.parseInt(req.headers.get("rack") ?? "", 10);
    if (rseq === pending.rseq) this.stopReliable(invite);
  }

  /**
   * The caller hung up an early dialog with BYE (RFC 3261 §15): answer it, end the INVITE with 487, and tell the
   * app the way srf understands, as a CANCEL of its pending INVITE.
   */
  private earlyBye(st: ServerTransaction, msg: IncomingRequest, d: Dialog): void {
    st.respond(createResponse(msg.request, 200));
    this.ctx.dialogs.remove(d);
    const invite = this.ctx.netTxns.get(d.early?.inviteTxnId ?? "");
    if (invite === undefined) return;
    this.forgetNet(invite);
    invite.st.respond(createResponse(invite.request, 487, undefined, { toTag: invite.localTag }));
    const cancel = inviteSibling(invite.request, "CANCEL"); // as if the caller had canceled (§9.1)
    const raw = serializeMessage(cancel);
    const meta = { ...networkMeta(msg), bytes: raw.length };
    if (!invite.app.closed) invite.app.send(sipLeader(meta, invite.id, invite.dialogId), raw);
    this.ctx.cdr("stop", "network", raw, "call-canceled");
  }

  private track(txn: NetTxn): void {
    this.ctx.netTxns.set(txn.id, txn);
    this.ctx.netByStId.set(txn.st.id, txn);
    txn.app.netTxns.add(txn.id);
    txn.st.on("terminated", () => {
      this.forgetNet(txn);
      // an early dialog whose INVITE ended without our 2xx (e.g. the stack answered a CANCEL)
      if (txn.early?.early !== undefined) this.ctx.dialogs.remove(txn.early);
    });
  }

  forgetNet(txn: NetTxn): void {
    this.stopReliable(txn);
    this.ctx.netTxns.delete(txn.id);
    if (this.ctx.netByStId.get(txn.st.id) === txn) this.ctx.netByStId.delete(txn.st.id);
    txn.app.netTxns.delete(txn.id);
  }

  onAck(ack: IncomingAck): void {
    const req = ack.request;
    const toTag = tagOf(req.headers.get("to"));
    if (toTag === undefined) return;
    if (this.ctx.looseRouter.forwardAck(ack)) return;
    const d = this.ctx.dialogs.match(req.headers.get("call-id") ?? "", toTag);
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

  onCancel(st: ServerTransaction, cancel: IncomingRequest): void {
    this.ctx.proxies.get(st.id)?.cancel();
    const txn = this.ctx.netByStId.get(st.id);
    if (txn === undefined || txn.app.closed) return;
    // srf finds the INVITE by Call-ID; drachtio sends the INVITE's transaction id and the dialog id
    txn.app.send(sipLeader(networkMeta(cancel), txn.id, txn.dialogId), rawOf(cancel));
    if (txn.request.method === "INVITE") this.ctx.cdr("stop", "network", cancel.raw, "call-canceled");
    this.forgetNet(txn);
    if (txn.early !== undefined) this.ctx.dialogs.remove(txn.early);
  }

  /**
   * `proxy|<txnId>|<remainInDialog>|<fullResponse>|<followRedirects>|<simultaneous|serial>|<provisionalTimeout>|
   * <finalTimeout>|<destination>...` — the app hands a received request back to be proxied.
   */
  onProxy(app: AppSession, msg: AppMessage): void {
    const [txnId = "", remainInDialog, , , mode = "serial", , , ...destinations] = msg.args;
    const txn = this.ctx.netTxns.get(txnId);
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
      this.ctx.stack,
      st,
      app,
      {
        msgId: msg.msgId,
        txnId,
        destinations,
        simultaneous: mode === "simultaneous",
        headers: extra,
        ...(remainInDialog === "remainInDialog"
          ? { recordRoute: (from: Peer, to: Peer) => this.ctx.looseRouter.recordRoute(from, to) }
          : {}),
      },
      () => this.ctx.proxies.delete(st.id),
      (type, source, raw, extra) => this.ctx.cdr(type, source, raw, extra),
    );
    this.ctx.proxies.set(st.id, op);
    op.start();
  }

  appResponse(app: AppSession, msgId: string, txnId: string, stub: SipResponse): void {
    if (txnId === "") {
      // drachtio (client.cpp processClientMessage) answers this at the connection level, with NO
      app.reply(msgId, false, "transaction id missing");
      return;
    }
    const txn = this.ctx.netTxns.get(txnId);
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
    const local = this.ctx.stack.advertisedAddress(txn.source);
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
      this.ctx.dialogs.remove(txn.early);
    }
    // drachtio names the would-be dialog in every response to an INVITE/SUBSCRIBE it is handling (its IIP holds
    // the dialog from the start), failures and 100 included
    if (dialogId === "" && txn.dialog === undefined && (method === "INVITE" || method === "SUBSCRIBE"))
      dialogId = txn.dialogId;
    if (reliable && txn.rseq !== undefined) this.retransmitReliable(txn, res, txn.rseq);
    else if (status >= 200) this.stopReliable(txn);
    const inDialog = method === "INVITE" && status < 300 ? this.ctx.dialogs.get(dialogId) : undefined;
    if (inDialog !== undefined && stub.body.length > 0) {
      inDialog.localSdp = {
        body: stub.body,
        contentType: res.headers.get("content-type") ?? "application/sdp",
      };
    }
    if (inDialog !== undefined && uasSession !== undefined)
      startSessionTimer(inDialog, uasSession.seconds, uasSession.weRefresh, this.ctx.sessionActions);
    app.send(
      sentLeader(msgId, appMeta(wire, txn.source), txnId, dialogId),
      wire,
      dialogId !== "" && status < 300,
    );
    if (method === "INVITE" && txn.dialog === undefined && status >= 200) {
      // doRespondToSipRequest: a start record for 200 only (not other 2xx), a stop for any failure
      if (status === 200) this.ctx.cdr("start", "application", wire, "uas");
      else if (status >= 300) this.ctx.cdr("stop", "application", wire, "call-rejected");
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
    this.ctx.dialogs.add(d);
    resolveRoute(this.ctx.stack, d);
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
      if (!d.acked && !d.terminated) this.ctx.teardown(d, "ACK timeout", true);
    });
  }

  /** The app went away: its unanswered requests get 503. */
  appClosed(app: AppSession): void {
    for (const id of [...app.netTxns]) {
      const txn = this.ctx.netTxns.get(id);
      if (txn === undefined) continue;
      this.forgetNet(txn);
      this.ctx.guard(() => txn.st.respond(createResponse(txn.request, 503)), "503 after app disconnect");
    }
  }

  /** Forget requests an app never answered (drachtio gives up after 64 s) so memory stays bounded. */
  sweep(now: number): void {
    for (const txn of this.ctx.netTxns.values()) {
      const limit = txn.request.method === "INVITE" ? STALE_INVITE_MS : STALE_NON_INVITE_MS;
      if (now - txn.createdAt > limit) {
        this.forgetNet(txn);
        const status = txn.request.method === "INVITE" ? 408 : 500;
        if (txn.early !== undefined) this.ctx.dialogs.remove(txn.early);
        this.ctx.guard(
          () => txn.st.respond(createResponse(txn.request, status)),
          "stale transaction response",
        );
      }
    }
  }
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
