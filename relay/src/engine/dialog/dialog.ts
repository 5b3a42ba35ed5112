// SIP dialogs (RFC 3261 §12) as the engine keeps them for drachtio-srf applications: identity (Call-ID and
// tags), route set, remote target, local/remote CSeq, the peer's source address (NAT), and the app that owns
// it. Dialog ids follow drachtio-server: `<Call-ID>;from-tag=<From tag of the initial request>`, which srf's
// findDialogByCallIDAndFromTag relies on.
import type { SipRequest } from "../sip/message.ts";
import { parseNameAddr } from "../sip/message.ts";
import { tagOf as fastTagOf } from "../sip/response.ts";
import type { Peer, ServerTransaction } from "../stack/index.ts";
import type { AppSession } from "../wire/server.ts";

export type DialogRole = "uas" | "uac";

export interface Dialog {
  readonly id: string;
  readonly role: DialogRole;
  /** Method of the request that created it: INVITE or SUBSCRIBE. */
  readonly kind: string;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** Our From (requests we send) with our tag: the To of the 2xx we sent (UAS), the From of our INVITE (UAC). */
  readonly localHeader: string;
  /** The peer's address with its tag, used as To in requests we send. */
  readonly remoteHeader: string;
  /** Request-URI for requests we send (the peer's Contact); updated by target refreshes. */
  remoteTarget: string;
  /** Route header values, in the order they go into requests we send. */
  readonly routeSet: string[];
  localSeq: number;
  /** Highest CSeq seen from the peer (undefined for a UAC dialog until the peer sends a request). */
  remoteSeq: number | undefined;
  /** Contact we advertise in this dialog. */
  localContact: string;
  /** Where the peer's messages come from: requests go here when there is no route set (peer behind NAT). */
  peer: Peer;
  /** The first route's address, once resolved (host names are resolved when the dialog is created). */
  routeHop?: Peer;
  readonly app: AppSession;
  /** CSeq of the last INVITE we sent in this dialog (initial or re-INVITE), for its ACK. */
  inviteSeq: number;
  /** Final status of the last INVITE we sent in this dialog: only a 2xx is ACKed by the app (the stack ACKs others). */
  inviteFinal?: number;
  /** The ACK we sent for the last 2xx, re-sent when the 2xx is retransmitted. */
  lastAck?: { request: SipRequest; dest: Peer; seq: number };
  /** UAS: the ACK for our 2xx arrived. */
  acked: boolean;
  /** UAS: the INVITE server transaction retransmitting our 2xx until its ACK (cleared by the ACK). */
  unackedInvite?: ServerTransaction;
  /**
   * UAS: the relay transaction id of the INVITE that created the dialog, until its ACK arrives. drachtio-server
   * (sip-dialog-controller.cpp processRequestInsideDialog) delivers that first ACK with the INVITE's transaction
   * id and later ACKs (of re-INVITEs) with fresh ones.
   */
  inviteTxnId?: string;
  /** CSeq of the last ACK delivered to the app (ACK retransmissions are not delivered twice). */
  lastAckSeq?: number;
  terminated: boolean;
  /**
   * UAS early dialog: created by our first provisional response with a To tag, confirmed by the 2xx, removed by a
   * failure response or CANCEL. Holds the id of the INVITE's relay transaction.
   */
  early?: { inviteTxnId: string };
  /**
   * SUBSCRIBE dialogs: when the subscription lapses without a refresh (plus a grace period). A subscriber that
   * vanished never sends the terminating request, so the engine forgets the dialog then.
   */
  expiresAt?: number;
  /**
   * UAC: the app CANCELed the INVITE but a 2xx crossed the CANCEL. As drachtio-server does, the engine ends
   * such a call right after the ACK (ACK, then BYE) and tells the app with an unsolicited BYE.
   */
  ackBye?: boolean;
  /** RFC 4028 session timer running for this dialog (see session-timer.ts). */
  session?: { seconds: number; weRefresh: boolean; timer: NodeJS.Timeout };
  /** Our current SDP in the dialog: the body of a refreshing re-INVITE the engine sends itself. */
  localSdp?: { body: Buffer; contentType: string };
}

/** drachtio dialog id. */
export function dialogIdFor(callId: string, fromTag: string): string {
  return `${callId};from-tag=${fromTag}`;
}

/** The tag parameter of a From/To value. */
export function tagOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return fastTagOf(value);
}

/** The URI inside a name-addr (Contact, Route, From...). */
export function uriOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return parseNameAddr(value)?.uri;
}

/** All live dialogs, found by drachtio id or by Call-ID + our tag (the To tag of requests the peer sends). */
export class DialogTable {
  private readonly byId = new Map<string, Dialog>();
  /** Call-ID → dialogs with that Call-ID (almost always one; a B2BUA looping to itself would make two) */
  private readonly byCallIdMap = new Map<string, Dialog[]>();

  get size(): number {
    return this.byId.size;
  }

  add(d: Dialog): void {
    this.byId.set(d.id, d);
    const list = this.byCallIdMap.get(d.callId);
    if (list === undefined) this.byCallIdMap.set(d.callId, [d]);
    else list.push(d);
    d.app.dialogs.add(d.id);
  }

  get(id: string): Dialog | undefined {
    return this.byId.get(id);
  }

  /** Dialog a request from the peer belongs to: its To tag is our local tag. */
  match(callId: string, localTag: string): Dialog | undefined {
    const list = this.byCallIdMap.get(callId);
    if (list === undefined) return undefined;
    for (const d of list) if (d.localTag === localTag) return d;
    return undefined;
  }

  /** Any live dialog with this Call-ID (the first one created). */
  byCallId(callId: string): Dialog | undefined {
    return this.byCallIdMap.get(callId)?.[0];
  }

  /**
   * The dialog has ended (BYE either way, teardown, expiry). If our 2xx was never ACKed, its retransmissions stop
   * too: RFC 3261 lets the UAS give up once the dialog is gone, and the peer would only log them as a dead call.
   */
  remove(d: Dialog): void {
    d.terminated = true;
    if (d.session !== undefined) {
      clearTimeout(d.session.timer);
      d.session = undefined;
    }
    d.unackedInvite?.stopRetransmitting();
    d.unackedInvite = undefined;
    if (this.byId.get(d.id) === d) this.byId.delete(d.id);
    const list = this.byCallIdMap.get(d.callId);
    if (list !== undefined) {
      const i = list.indexOf(d);
      if (i !== -1) list.splice(i, 1);
      if (list.length === 0) this.byCallIdMap.delete(d.callId);
    }
    d.app.dialogs.delete(d.id);
  }

  values(): IterableIterator<Dialog> {
    return this.byId.values();
  }
}
