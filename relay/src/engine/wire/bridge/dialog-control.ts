// What the engine itself does to dialogs, whichever side created them: ends them with a BYE (ACK timeout,
// session timer expiry, app gone, a 2xx that crossed a CANCEL), refreshes session timers with a re-INVITE the app
// never sees (drachtio notifyRefreshDialog), and resolves a new dialog's first route ahead of its first request.
import type { Dialog } from "../../dialog/dialog.ts";
import { uriOf } from "../../dialog/dialog.ts";
import { buildInDialogRequest, dialogDestination } from "../../dialog/requests.ts";
import { MIN_SE, parseSessionExpires, startSessionTimer } from "../../dialog/session-timer.ts";
import type { ClientTransaction, SipStack } from "../../stack/index.ts";
import { sipLeader } from "../protocol.ts";
import { resolveTarget } from "../resolve.ts";
import { appMeta, type BridgeContext, emptyStub } from "./state.ts";

export class DialogControl {
  constructor(private readonly ctx: BridgeContext) {}

  /** End a dialog from the engine's side: BYE to the peer, optionally tell the app as drachtio does. */
  teardown(d: Dialog, reason: string, notifyApp: boolean, cdrReason?: string): void {
    if (d.terminated) return;
    this.ctx.dialogs.remove(d);
    // an early dialog ends with the INVITE's final response, not with a BYE
    if (d.kind !== "INVITE" || d.early !== undefined) return;
    const bye = buildInDialogRequest(d, emptyStub("BYE", [["Reason", `SIP ;cause=200 ;text="${reason}"`]]));
    const dest = dialogDestination(d, this.ctx.stack);
    let ct: ClientTransaction;
    try {
      ct = this.ctx.stack.sendRequest(bye, dest);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, "could not send BYE");
      return;
    }
    if (notifyApp && !d.app.closed)
      d.app.send(sipLeader(appMeta(ct.wire, dest), "unsolicited", d.id), ct.wire);
    if (cdrReason !== undefined) this.ctx.cdr("stop", "application", ct.wire, cdrReason);
  }

  /**
   * We are the refresher and half the interval has passed: a re-INVITE with our last SDP, Session-Expires
   * (refresher=uac) and Min-SE, which the app never sees (drachtio notifyRefreshDialog). A 200 is ACKed and its
   * Session-Expires restarts the timer; anything else ends the dialog (processResponseToRefreshingReinvite).
   */
  refreshSession(d: Dialog, seconds: number): void {
    const headers: [string, string][] = [
      ["Session-Expires", `${seconds}; refresher=uac`],
      ["Min-SE", String(MIN_SE)],
    ];
    if (d.localSdp !== undefined) headers.push(["Content-Type", d.localSdp.contentType]);
    const stub = emptyStub("INVITE", headers);
    if (d.localSdp !== undefined) stub.body = d.localSdp.body;
    const dest = dialogDestination(d, this.ctx.stack);
    let ct: ClientTransaction;
    try {
      ct = this.ctx.stack.sendRequest(buildInDialogRequest(d, stub), dest);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, "could not send a refreshing re-INVITE");
      return;
    }
    let answered = false;
    ct.on("response", (res) => {
      if (res.status < 200 || d.terminated) return;
      if (answered) {
        // a retransmitted 2xx: the peer lost our ACK
        if (res.status < 300 && d.lastAck !== undefined)
          this.ctx.stack.sendAck(d.lastAck.request, d.lastAck.dest);
        return;
      }
      answered = true;
      if (res.status >= 300) {
        this.ctx.sessionActions.expire(d);
        return;
      }
      const ack = buildInDialogRequest(d, emptyStub("ACK"));
      this.ctx.guard(() => this.ctx.stack.sendAck(ack, dest), "ACK of a refreshing re-INVITE");
      d.lastAck = { request: ack, dest, seq: d.inviteSeq };
      const se = parseSessionExpires(res.headers.get("session-expires"));
      if (se !== undefined) startSessionTimer(d, se.seconds, se.refresher !== "uas", this.ctx.sessionActions);
    });
    const failed = (): void => {
      if (!answered && !d.terminated) this.ctx.sessionActions.expire(d);
    };
    ct.on("timeout", failed);
    ct.on("transport-error", failed);
  }
}

/** Resolve the first route of a new dialog ahead of its first request (host names need DNS). */
export function resolveRoute(stack: SipStack, d: Dialog): void {
  const uri = uriOf(d.routeSet[0]);
  if (uri === undefined) return;
  try {
    const hop = resolveTarget(stack, uri);
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
