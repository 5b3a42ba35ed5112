// srf's req.proxy() / srf.proxyRequest(): the engine forwards a received request as a stateful proxy (RFC 3261
// §16) to the app's destinations, one after another (serial) or all at once (simultaneous), relays responses back
// upstream and, like drachtio-server (sip-proxy-controller.cpp ClientTransaction::processResponse), reports each
// branch's final response to the app (`response|<msgId>|OK|<meta>|||continue` + raw), then `OK|done` once the
// upstream final is sent. Provisional responses are relayed upstream but not reported. Refusals are `NOK|<reason>`
// with drachtio's texts. CDRs: attempt per INVITE branch, start/stop per branch (proxy-uac) and upstream (proxy-uas).
// remainInDialog (srf's recordRoute) inserts our Record-Route, and wire/loose-route.ts routes the dialog's later
// requests on; followRedirects and the provisional/final timeouts are not implemented.
import { createResponse, newTag, type SipRequest, type SipResponse } from "../sip/message.ts";
import type { ClientTransaction, Peer, ServerTransaction, SipStack } from "../stack/index.ts";
import { formatMeta, metaFor, newId } from "./protocol.ts";
import { resolveTarget } from "./resolve.ts";
import type { AppSession } from "./server.ts";

const PROXIED = { proxied: true };

/** Emits a drachtio CDR event (bridge/app-bridge.ts owns the routing to the app that asked for it). */
export type CdrSink = (
  type: "attempt" | "start" | "stop",
  source: "network" | "application",
  msg: Buffer | string,
  extra?: string,
) => void;

export interface ProxyOptions {
  msgId: string;
  txnId: string;
  destinations: string[];
  simultaneous: boolean;
  /** Extra headers the app asked for on the forwarded request. */
  headers: [string, string][];
  /**
   * srf's remainInDialog/recordRoute: the Record-Route values (top first) to insert, so the dialog's later
   * requests come through the engine (wire/loose-route.ts routes them on); none for REGISTER.
   */
  recordRoute?: (from: Peer, to: Peer) => string[];
}

/**
 * One proxied request. Serial: the next destination is tried after a 3xx-5xx (or timeout/transport failure);
 * simultaneous: all are tried at once and the first 2xx cancels the others. A 2xx or 6xx ends it; otherwise the
 * best final response a branch received (drachtio's order, see rank()) goes upstream once every branch has
 * failed, or our own 408 when none answered (timeouts and transport failures are not candidates).
 */
export class ProxyOperation {
  private index = 0;
  /** branches still waiting for a final response (including ones whose destination is being resolved) */
  private outstanding = 0;
  private readonly branches = new Set<ClientTransaction>();
  private best: SipResponse | undefined;
  private finished = false;
  private canceled = false;
  /** set while simultaneous branches are being started, so an early failure does not end it prematurely */
  private launching = false;

  constructor(
    private readonly stack: SipStack,
    private readonly st: ServerTransaction,
    private readonly app: AppSession,
    private readonly opts: ProxyOptions,
    private readonly onDone: () => void,
    private readonly cdr: CdrSink = () => undefined,
  ) {}

  start(): void {
    // drachtio (SipProxyController::doProxy) refuses the proxy request itself for these, with NOK
    const mf = Number.parseInt(this.st.request.headers.get("max-forwards") ?? "70", 10);
    if (mf <= 0) {
      this.refuse(483, "Rejected with 483 Too Many Hops due to Max-Forwards value of 0");
      return;
    }
    if (this.opts.destinations.length === 0) {
      this.refuse(500, "error proxying request to ");
      return;
    }
    if (this.opts.simultaneous) {
      this.launching = true;
      const all = this.opts.destinations.length;
      for (let i = 0; i < all; i++) this.launchNext();
      this.launching = false;
      this.settle();
    } else this.launchNext();
  }

  /** The caller CANCELed (the stack already answered it and sent 487 upstream). */
  cancel(): void {
    this.canceled = true;
    for (const ct of this.branches) ct.cancel();
  }

  private launchNext(): void {
    const uri = this.opts.destinations[this.index++];
    if (uri === undefined || this.canceled) {
      this.settle();
      return;
    }
    this.outstanding++;
    let target: Peer | Promise<Peer>;
    try {
      target = resolveTarget(this.stack, uri);
    } catch {
      this.branchFailed();
      return;
    }
    if (target instanceof Promise) {
      target.then(
        (dest) => this.send(uri, dest),
        () => this.branchFailed(),
      );
    } else this.send(uri, target);
  }

  private send(uri: string, dest: Peer): void {
    if (this.finished || this.app.closed || this.canceled) {
      this.branchFailed();
      return;
    }
    const orig = this.st.request;
    const headers = orig.headers.clone();
    const mf = Number.parseInt(headers.get("max-forwards") ?? "70", 10);
    headers.set("Max-Forwards", String(Number.isFinite(mf) ? mf - 1 : 69));
    for (const [name, value] of this.opts.headers) headers.set(name, value);
    // RFC 3261 §16.6 step 4: ours go on top of any Record-Route already there, the one facing `dest` topmost
    if (this.opts.recordRoute !== undefined && orig.method !== "REGISTER") {
      const rr = this.opts.recordRoute(this.st.source, dest);
      for (let i = rr.length - 1; i >= 0; i--) headers.prepend("Record-Route", rr[i] ?? "");
    }
    const req: SipRequest = { ...orig, uri, headers };
    let ct: ClientTransaction;
    try {
      ct = this.stack.sendRequest(req, dest);
    } catch {
      this.branchFailed();
      return;
    }
    if (req.method === "INVITE") this.cdr("attempt", "application", ct.wire);
    this.branches.add(ct);
    ct.on("response", (res, raw, source) => this.onResponse(ct, res, raw, source));
    ct.on("timeout", () => this.onFailure(ct));
    ct.on("transport-error", () => this.onFailure(ct));
  }

  private onResponse(ct: ClientTransaction, res: SipResponse, raw: Buffer, source: Peer): void {
    if (res.status === 100) return;
    const isFinal = res.status >= 200;
    if (this.finished) {
      // 2xx from the winning (or a late) branch still go upstream: the caller ACKs them end to end
      if (res.status >= 200 && res.status < 300) this.st.respond(upstream(res), PROXIED);
      return;
    }
    if (isFinal && !this.branches.delete(ct)) return; // a retransmitted final of a finished branch
    if (!isFinal) {
      this.st.respond(upstream(res));
      return;
    }
    this.report(raw, source);
    if (ct.method === "INVITE") {
      if (res.status < 300) this.cdr("start", "network", raw, "proxy-uac");
      else this.cdr("stop", "network", raw, res.status === 487 ? "call-canceled" : "call-rejected");
    }
    this.outstanding--;
    if (res.status < 300 || res.status >= 600) {
      for (const other of this.branches) other.cancel();
      this.finishWith(upstream(res));
      return;
    }
    this.consider(upstream(res));
    this.afterBranch();
  }

  /** A branch timed out or could not be sent to: it ends without a candidate response (drachtio: terminated). */
  private onFailure(ct: ClientTransaction): void {
    if (this.finished || !this.branches.delete(ct)) return;
    this.outstanding--;
    this.afterBranch();
  }

  /** A branch ended before sending anything (unresolvable, send failure). */
  private branchFailed(): void {
    this.outstanding--;
    this.afterBranch();
  }

  private afterBranch(): void {
    if (this.finished) return;
    if (this.opts.simultaneous) this.settle();
    else this.launchNext();
  }

  /** When nothing is outstanding any more, send the best final response upstream. */
  private settle(): void {
    if (this.finished || this.launching || this.outstanding > 0) return;
    // ProxyCore::forwardBestResponse: 408 when no branch produced a final response
    this.finishWith(this.best ?? upstreamStatus(this.st.request, 408));
  }

  private consider(res: SipResponse): void {
    if (this.best === undefined || rank(res.status) < rank(this.best.status)) this.best = res;
  }

  private finishWith(res: SipResponse): void {
    if (this.finished) return;
    this.finished = true;
    this.respondUpstream(res);
    this.app.send(`${newId()}|response|${this.opts.msgId}|OK|done`);
    this.onDone();
  }

  /** The proxy request is refused before any branch starts: our own final upstream, `NOK|<reason>` to the app. */
  private refuse(status: number, reason: string): void {
    this.finished = true;
    this.respondUpstream(upstreamStatus(this.st.request, status));
    this.app.send(`${newId()}|response|${this.opts.msgId}|NOK|${reason}`);
    this.onDone();
  }

  private respondUpstream(res: SipResponse): void {
    // a relayed 2xx is sent once: the caller's ACK goes end to end, not to us (RFC 3261 §16.7)
    const wire = this.st.respond(res, PROXIED);
    if (wire === "" || this.st.request.method !== "INVITE") return;
    if (res.status < 300) this.cdr("start", "application", wire, "proxy-uas");
    else this.cdr("stop", "application", wire, res.status === 487 ? "call-canceled" : "call-rejected");
  }

  /** A branch's final response as drachtio reports it: meta, then empty transaction and dialog ids. */
  private report(raw: Buffer, source: Peer): void {
    const meta = formatMeta(metaFor("network", raw.length, source));
    this.app.send(`${newId()}|response|${this.opts.msgId}|OK|${meta}|||continue\r\n`, raw);
  }
}

/**
 * Preference among failure responses, lower first, as drachtio-server's bestResponseOrder sorts them
 * (sip-proxy-controller.cpp): 6xx, then the ones the caller can act on (401, 407, 415, 420, 484), other 4xx, 5xx,
 * and 3xx last. Equal ranks keep the first received.
 */
function rank(status: number): number {
  if (status >= 600) return 0;
  if (status === 401 || status === 407 || status === 415 || status === 420 || status === 484) return 1;
  if (status >= 400 && status < 500) return 2;
  if (status >= 500 && status < 600) return 3;
  return 4;
}

/** The response as it goes upstream: without our Via (the top one). */
export function upstream(res: SipResponse): SipResponse {
  const headers = res.headers.clone();
  headers.removeFirst("via");
  return { ...res, headers };
}

/** A response of our own to the proxied request. */
export function upstreamStatus(req: SipRequest, status: number, reason?: string): SipResponse {
  return createResponse(req, status, reason, { toTag: newTag() });
}
