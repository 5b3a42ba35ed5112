// Shared state of the app bridge (app-bridge.ts): the transactions in flight each way, the dialogs, and what both
// directions use (CDRs, guarded stack calls, ending a dialog), plus the small helpers they share for putting SIP
// messages on the drachtio wire.
import type { Dialog, DialogTable } from "../../dialog/dialog.ts";
import { inferContentType } from "../../dialog/requests.ts";
import type { SessionTimerActions } from "../../dialog/session-timer.ts";
import { SipHeaders, type SipRequest, type SipResponse, serializeMessage } from "../../sip/message.ts";
import type {
  ClientTransaction,
  IncomingRequest,
  Peer,
  ServerTransaction,
  SipStack,
} from "../../stack/index.ts";
import type { Cancelable, LooseRouter } from "../loose-route.ts";
import { metaFor, type WireMeta } from "../protocol.ts";
import type { AdminServer, AppSession } from "../server.ts";

/** An incoming request handed to an app, waiting for its final response. */
export interface NetTxn {
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
export interface AppTxn {
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

export interface BridgeLogger {
  warn(obj: object, msg: string): void;
}

/** What the two directions share: owned by AppBridge, which passes itself to each. */
export interface BridgeContext {
  readonly stack: SipStack;
  readonly log: BridgeLogger;
  readonly dialogs: DialogTable;
  /** Requests from the network delivered to apps, by our transaction id. */
  readonly netTxns: Map<string, NetTxn>;
  /** server transaction id → NetTxn, to find the app for a CANCEL */
  readonly netByStId: Map<string, NetTxn>;
  /** Requests apps sent, by our transaction id. */
  readonly appTxns: Map<string, AppTxn>;
  /** server transaction id → proxy operation (or loose-routed re-INVITE) forwarding that request */
  readonly proxies: Map<string, Cancelable>;
  readonly looseRouter: LooseRouter;
  readonly sessionActions: SessionTimerActions;
  readonly admin: AdminServer | undefined;
  /** Set once the engine is closing: pending work must not touch the stack any more. */
  readonly closing: boolean;
  /** Emit a drachtio CDR event to an app that asked for that record type. */
  cdr(type: "attempt" | "start" | "stop", source: string, msg: Buffer | string, extra?: string): void;
  /** Run a stack call whose failure must not escape into a socket or timer callback. */
  guard(fn: () => unknown, what: string): void;
  /** End a dialog from the engine's side (BYE), optionally telling the app as drachtio does. */
  teardown(d: Dialog, reason: string, notifyApp: boolean, cdrReason?: string): void;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");

/** Remember the INVITE transaction retransmitting our 2xx until its ACK, so ending the dialog can stop it. */
export function awaitAck(st: ServerTransaction, d: Dialog): void {
  d.unackedInvite = st;
  st.on("terminated", () => {
    if (d.unackedInvite === st) d.unackedInvite = undefined;
  });
}

/** Subscription lifetime from an Expires value (default 3600 s), plus a grace of up to 32 s for late refreshes. */
export function refreshSubscription(d: Dialog, expires: string | undefined): void {
  const n = expires === undefined ? Number.NaN : Number.parseInt(expires, 10);
  const secs = Number.isFinite(n) && n >= 0 ? n : 3600;
  if (secs === 0) return; // an unsubscribe: the terminating NOTIFY ends the dialog
  d.expiresAt = Date.now() + secs * 1000 + Math.min(32_000, secs * 1000);
}

/** An in-dialog request stub like the ones srf sends (`BYE sip:placeholder SIP/2.0`). */
export function emptyStub(method: string, headers: [string, string][] = []): SipRequest {
  return {
    kind: "request",
    method,
    uri: "sip:placeholder",
    version: "SIP/2.0",
    headers: new SipHeaders(headers),
    body: Buffer.alloc(0),
  };
}

/** A body without Content-Type that drachtio cannot infer (it only recognises SDP): the request is refused. */
export function missingContentType(stub: SipRequest): boolean {
  return (
    stub.body.length > 0 && !stub.headers.has("content-type") && inferContentType(stub.body) === undefined
  );
}

export function isTerminated(req: SipRequest): boolean {
  return (req.headers.get("subscription-state") ?? "").toLowerCase().startsWith("terminated");
}

/**
 * The received bytes as the app gets them. drachtio-srf's parser needs CRLF line ends and no CRLFs before the
 * start line (RFC 3261 §7.5 lets senders put them there, and our parser accepts bare LF), so such messages are
 * re-serialized from the parsed form; everything else goes out exactly as received.
 */
export function rawOf(msg: IncomingRequest): Buffer {
  return wellFormed(msg.raw) ? msg.raw : serializeMessage(msg.request);
}

export function wellFormed(raw: Buffer): boolean {
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

export function networkMeta(msg: IncomingRequest): WireMeta {
  return metaFor("network", msg.raw.length, msg.source, msg.receivedAt);
}

export function appMeta(wire: string, dest: Peer): WireMeta {
  return metaFor("application", Buffer.byteLength(wire, "utf8"), dest);
}
