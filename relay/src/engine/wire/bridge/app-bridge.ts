// The bridge between the SIP stack and the drachtio-srf applications connected to the admin port: what
// drachtio-server does between sofia-sip and its clients. Each direction has its own file:
//   network-to-app.ts  requests from the network to the apps, and the apps' responses to them (UAS side)
//   app-to-network.ts  requests the apps send, and the network's responses to them (UAC side)
//   dialog-control.ts  what the engine does to dialogs itself (BYE on teardown, session-timer refreshes)
//   state.ts           the transactions and dialogs both directions share
// Proxying (srf.proxyRequest) is in ../proxy.ts, routing of record-routed dialogs in ../loose-route.ts. What the
// apps see (reply texts, ids, CDRs, requests the server answers itself, session timers, reliable provisionals)
// was checked against drachtio-server's source; wire-compat.int.test.ts holds one test per behaviour.

import type { Dialog } from "../../dialog/dialog.ts";
import { DialogTable } from "../../dialog/dialog.ts";
import type { SessionTimerActions } from "../../dialog/session-timer.ts";
import type { SipRequest, SipResponse } from "../../sip/message.ts";
import type { SipStack } from "../../stack/index.ts";
import { parseAppSip } from "../app-sip.ts";
import { type Cancelable, LooseRouter } from "../loose-route.ts";
import { type AppMessage, newId, wireTime } from "../protocol.ts";
import type { AdminServer, AppHandler, AppSession } from "../server.ts";
import { AppToNetwork } from "./app-to-network.ts";
import { DialogControl } from "./dialog-control.ts";
import { NetworkToApp } from "./network-to-app.ts";
import type { AppTxn, BridgeContext, BridgeLogger, NetTxn } from "./state.ts";

export type { BridgeLogger } from "./state.ts";

export class AppBridge implements AppHandler, BridgeContext {
  readonly dialogs = new DialogTable();
  readonly netTxns = new Map<string, NetTxn>();
  readonly netByStId = new Map<string, NetTxn>();
  readonly appTxns = new Map<string, AppTxn>();
  readonly proxies = new Map<string, Cancelable>();
  readonly looseRouter: LooseRouter;
  admin: AdminServer | undefined;
  closing = false;
  readonly sessionActions: SessionTimerActions = {
    refresh: (d, seconds) => this.control.refreshSession(d, seconds),
    expire: (d) => this.teardown(d, "Session timer expired", true, "session-expired"),
  };
  private readonly fromNetwork: NetworkToApp;
  private readonly fromApps: AppToNetwork;
  private readonly control: DialogControl;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly stack: SipStack,
    readonly log: BridgeLogger,
  ) {
    this.looseRouter = new LooseRouter(
      stack,
      (type, source, raw, extra) => this.cdr(type, source, raw, extra),
      this.proxies,
    );
    this.fromNetwork = new NetworkToApp(this);
    this.fromApps = new AppToNetwork(this);
    this.control = new DialogControl(this);
    stack.on("request", (st, msg) => this.fromNetwork.onRequest(st, msg));
    stack.on("ack", (ack) => this.fromNetwork.onAck(ack));
    stack.on("cancel", (st, cancel) => this.fromNetwork.onCancel(st, cancel));
    stack.on("stray-response", (res) => this.fromApps.onStrayResponse(res));
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

  /**
   * `proxy|<txnId>|<remainInDialog>|<fullResponse>|<followRedirects>|<simultaneous|serial>|<provisionalTimeout>|
   * <finalTimeout>|<destination>...` — the app hands a received request back to be proxied.
   */
  onProxy(app: AppSession, msg: AppMessage): void {
    this.fromNetwork.onProxy(app, msg);
  }

  /** A `sip` message from an app: a response to a request it received, or a request it sends. */
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
      if (sip.kind === "response") this.fromNetwork.appResponse(app, msg.msgId, txnId, sip);
      else if (dialogId !== "") this.fromApps.appInDialogRequest(app, msg.msgId, dialogId, sip);
      else if (sip.method === "CANCEL" && txnId !== "") this.fromApps.appCancel(app, msg.msgId, txnId, sip);
      else {
        // like drachtio: a request without ids whose Call-ID belongs to one of the app's dialogs is sent in it
        const inDialog = txnId === "" ? this.dialogs.byCallId(sip.headers.get("call-id") ?? "") : undefined;
        if (inDialog !== undefined && inDialog.app === app)
          this.fromApps.appInDialogRequest(app, msg.msgId, inDialog.id, sip);
        else this.fromApps.appNewRequest(app, msg.msgId, route, sip);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "app request failed");
      app.fail(msg.msgId, `Server error: ${(err as Error).message}`);
    }
  }

  onAppClosed(app: AppSession): void {
    if (this.closing) return;
    this.fromNetwork.appClosed(app);
    this.fromApps.appClosed(app);
    for (const id of [...app.dialogs]) {
      const d = this.dialogs.get(id);
      if (d !== undefined) this.teardown(d, "application disconnected", false);
    }
  }

  teardown(d: Dialog, reason: string, notifyApp: boolean, cdrReason?: string): void {
    this.control.teardown(d, reason, notifyApp, cdrReason);
  }

  /**
   * drachtio's CDR events (srf.on('cdr:attempt'|'cdr:start'|'cdr:stop')): sent to one app that routed the record
   * type: `<id>|cdr:<type>|<source>|<time>[|<role or reason>]` + the SIP message. Free when no app asked for them.
   */
  cdr(type: "attempt" | "start" | "stop", source: string, msg: Buffer | string, extra?: string): void {
    const app = this.admin?.selectApp(`cdr:${type}`);
    if (app === undefined) return;
    const tail = extra === undefined ? "" : `|${extra}`;
    app.send(`${newId()}|cdr:${type}|${source}|${wireTime(Date.now())}${tail}\r\n`, msg);
  }

  guard(fn: () => unknown, what: string): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, `${what} failed`);
    }
  }

  /** Unanswered requests and lapsed subscriptions are dropped so memory stays bounded. */
  private sweep(): void {
    const now = Date.now();
    this.fromNetwork.sweep(now);
    for (const d of this.dialogs.values()) {
      if (d.expiresAt !== undefined && d.expiresAt < now) this.dialogs.remove(d);
    }
  }
}
