// RFC 4028 session timers as drachtio-server runs them for an INVITE dialog, so an app gets the same behaviour
// (sip-dialog.cpp SipDialog::setSessionTimer/doSessionTimerHandling, sip-dialog-controller.cpp notifyRefreshDialog/
// notifyTerminateStaleDialog): when we are the refresher, a refreshing re-INVITE halfway through the interval; when
// the peer is, the dialog is torn down (BYE "Session timer expired") if no refresh came within the interval. The
// relay decides when a timer starts (which Session-Expires, who refreshes) and does the SIP; this module keeps the
// one timer per dialog.
import type { Dialog } from "./dialog.ts";

/** drachtio's Min-SE (SipDialog m_nMinSE): smaller Session-Expires in a refresh get 422, UAS intervals are raised. */
export const MIN_SE = 90;

const REFRESHER = /;\s*refresher\s*=\s*(uac|uas)\b/i;

export interface SessionExpires {
  seconds: number;
  refresher?: "uac" | "uas";
}

/** `1800;refresher=uac` → { seconds: 1800, refresher: "uac" }; undefined when absent or not a number. */
export function parseSessionExpires(value: string | undefined): SessionExpires | undefined {
  if (value === undefined) return undefined;
  const seconds = Number.parseInt(value, 10);
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  const m = REFRESHER.exec(value);
  const refresher = m?.[1]?.toLowerCase();
  return refresher === "uac" || refresher === "uas" ? { seconds, refresher } : { seconds };
}

/** What the relay does when a timer fires. */
export interface SessionTimerActions {
  /** We are the refresher: send the refreshing re-INVITE for an interval of `seconds`. */
  refresh(d: Dialog, seconds: number): void;
  /** The peer did not refresh in time (or our refresh failed): end the dialog. */
  expire(d: Dialog): void;
}

/** (Re)start the dialog's session timer: at half the interval when we refresh, at the full interval otherwise. */
export function startSessionTimer(
  d: Dialog,
  seconds: number,
  weRefresh: boolean,
  actions: SessionTimerActions,
): void {
  stopSessionTimer(d);
  if (seconds <= 0 || d.terminated) return;
  const ms = (weRefresh ? seconds / 2 : seconds) * 1000;
  const timer = setTimeout(() => {
    d.session = undefined;
    if (d.terminated) return;
    if (weRefresh) actions.refresh(d, seconds);
    else actions.expire(d);
  }, ms);
  timer.unref();
  d.session = { seconds, weRefresh, timer };
}

export function stopSessionTimer(d: Dialog): void {
  if (d.session === undefined) return;
  clearTimeout(d.session.timer);
  d.session = undefined;
}
