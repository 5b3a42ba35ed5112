// srf's req.proxy() / srf.proxyRequest(): the engine forwards a received request as a stateful proxy (RFC 3261
// §16) to the app's destinations one after another (serial forking), relays responses back upstream, and reports
// every response to the app (`response|<msgId>|OK|<meta>|<txnId>||continue` + raw) and then `OK|done`.
// Not supported (answered NOK): simultaneous forking. remainInDialog is accepted but no Record-Route is added, so
// requests later in the dialog go end to end without the engine.
import { createResponse, newTag, type SipRequest, type SipResponse } from "../sip/message.ts";
import type { ClientTransaction, Peer, ServerTransaction, SipStack } from "../stack/index.ts";
import { formatMeta, newId } from "./protocol.ts";
import { resolveTarget } from "./resolve.ts";
import type { AppSession } from "./server.ts";

export interface ProxyOptions {
  msgId: string;
  txnId: string;
  destinations: string[];
  /** Extra headers the app asked for on the forwarded request. */
  headers: [string, string][];
}

/** One proxied request: tries each destination until one answers 2xx or 6xx, or they run out. */
export class ProxyOperation {
  private index = 0;
  private current: ClientTransaction | undefined;
  private lastFinal: SipResponse | undefined;
  private finished = false;
  private canceled = false;

  constructor(
    private readonly stack: SipStack,
    private readonly st: ServerTransaction,
    private readonly app: AppSession,
    private readonly opts: ProxyOptions,
    private readonly onDone: () => void,
  ) {}

  start(): void {
    const mf = Number.parseInt(this.st.request.headers.get("max-forwards") ?? "70", 10);
    if (!(mf > 0)) {
      this.finishWith(upstreamStatus(this.st.request, 483, "Too Many Hops"));
      return;
    }
    this.tryNext();
  }

  /** The caller CANCELed (the stack already answered it and sent 487 upstream). */
  cancel(): void {
    this.canceled = true;
    this.current?.cancel();
  }

  private tryNext(): void {
    if (this.finished) return;
    const uri = this.opts.destinations[this.index++];
    if (uri === undefined || this.canceled) {
      this.finishWith(this.lastFinal ?? upstreamStatus(this.st.request, 480, "Temporarily Unavailable"));
      return;
    }
    let target: Peer | Promise<Peer>;
    try {
      target = resolveTarget(this.stack, uri);
    } catch {
      this.tryNext();
      return;
    }
    if (target instanceof Promise) {
      target.then(
        (dest) => this.send(uri, dest),
        () => this.tryNext(),
      );
    } else this.send(uri, target);
  }

  private send(uri: string, dest: Peer): void {
    if (this.finished || this.app.closed) return;
    const orig = this.st.request;
    const headers = orig.headers.clone();
    const mf = Number.parseInt(headers.get("max-forwards") ?? "70", 10);
    headers.set("Max-Forwards", String(Number.isFinite(mf) ? mf - 1 : 69));
    for (const [name, value] of this.opts.headers) headers.set(name, value);
    const req: SipRequest = { ...orig, uri, headers };
    let ct: ClientTransaction;
    try {
      ct = this.stack.sendRequest(req, dest);
    } catch {
      this.tryNext();
      return;
    }
    this.current = ct;
    ct.on("response", (res, raw, source) => this.onResponse(ct, res, raw, source));
    ct.on("timeout", () => this.onFailure(ct, 408));
    ct.on("transport-error", () => this.onFailure(ct, 503));
  }

  private onResponse(ct: ClientTransaction, res: SipResponse, raw: Buffer, source: Peer): void {
    if (ct !== this.current || res.status === 100) return;
    if (this.finished) {
      // 2xx retransmissions of the winning branch still go upstream (the caller re-ACKs them)
      if (res.status >= 200 && res.status < 300) this.st.respond(upstream(res));
      return;
    }
    this.report(raw, source);
    if (res.status < 200) {
      this.st.respond(upstream(res));
      return;
    }
    if (res.status < 300 || res.status >= 600) {
      this.finishWith(upstream(res));
      return;
    }
    this.lastFinal = upstream(res);
    this.tryNext();
  }

  private onFailure(ct: ClientTransaction, status: number): void {
    if (ct !== this.current || this.finished) return;
    this.lastFinal = upstreamStatus(this.st.request, status);
    this.tryNext();
  }

  private finishWith(res: SipResponse): void {
    if (this.finished) return;
    this.finished = true;
    this.st.respond(res);
    this.app.send(`${newId()}|response|${this.opts.msgId}|OK|done`);
    this.onDone();
  }

  private report(raw: Buffer, source: Peer): void {
    const meta = formatMeta({
      source: "network",
      bytes: raw.length,
      protocol: source.transport,
      address: source.address,
      port: source.port,
      time: Date.now(),
    });
    this.app.send(`${newId()}|response|${this.opts.msgId}|OK|${meta}|${this.opts.txnId}||continue\r\n`, raw);
  }
}

/** The response as it goes upstream: without our Via (the top one). */
function upstream(res: SipResponse): SipResponse {
  const headers = res.headers.clone();
  headers.removeFirst("via");
  return { ...res, headers };
}

/** A response of our own to the proxied request. */
function upstreamStatus(req: SipRequest, status: number, reason?: string): SipResponse {
  return createResponse(req, status, reason, { toTag: newTag() });
}
