// Requests inside a dialog the engine record-routed as a proxy (srf.proxyRequest with recordRoute): they come
// back with a Route naming the engine and go on to the next Route or the Request-URI (loose routing, RFC 3261
// §16.4, §16.6), as drachtio-server's processRequestWithRouteHeader forwards them, without an app seeing them.
// Also builds the Record-Route the proxy inserts (two when the sides differ in address or transport, RFC 5658).
import { networkInterfaces } from "node:os";
import { parseUri, type SipRequest } from "../sip/message.ts";
import type {
  ClientTransaction,
  IncomingAck,
  IncomingRequest,
  Peer,
  ServerTransaction,
  SipStack,
} from "../stack/index.ts";
import { hostForUri } from "../stack/network.ts";
import { type CdrSink, upstream, upstreamStatus } from "./proxy.ts";
import { resolveTarget } from "./resolve.ts";

const PROXIED = { proxied: true };

/** Something the caller's CANCEL must stop (a forwarded re-INVITE, a proxy operation). */
export interface Cancelable {
  cancel(): void;
}

export class LooseRouter {
  /** Addresses of this host's interfaces: a Route naming any of them names us when we listen on a wildcard. */
  private readonly localAddresses = new Set<string>(
    Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
  );

  constructor(
    private readonly stack: SipStack,
    private readonly cdr: CdrSink,
    /** Forwarded INVITEs by server transaction id, so a CANCEL reaches them. */
    private readonly inFlight: Map<string, Cancelable>,
  ) {}

  /**
   * A request in a dialog (To tag) whose top Route names us: forward it statefully and relay the responses.
   * False when it is not ours to route (no such Route, or after our Routes the request is for us).
   */
  forward(st: ServerTransaction, msg: IncomingRequest): boolean {
    const next = this.nextHop(msg.request);
    if (next === undefined) return false;
    const original = msg.request;
    if (next.receivedMaxForwards <= 0) {
      st.respond(upstreamStatus(original, 483));
      return true;
    }
    if (original.method === "BYE") this.cdr("stop", "network", msg.raw, "normal-release");
    this.toNextHop(
      next.uri,
      (dest) => this.send(st, next.request, dest),
      () => st.respond(upstreamStatus(original, 502)),
    );
    return true;
  }

  /** The ACK for a 2xx in such a dialog: forwarded statelessly (it has no transaction, RFC 3261 §16.11). */
  forwardAck(ack: IncomingAck): boolean {
    const next = this.nextHop(ack.request);
    if (next === undefined) return false;
    if (next.receivedMaxForwards > 0)
      this.toNextHop(
        next.uri,
        (dest) => this.stack.sendAck(next.request, dest),
        () => undefined,
      );
    return true;
  }

  /**
   * The Record-Route values to insert, top first: the address facing the next hop on top (the callee's route set
   * starts there), the one facing the caller below it, or just one when both are the same (RFC 5658 §3.3).
   */
  recordRoute(from: Peer, to: Peer): string[] {
    const down = this.routeUri(to);
    const up = this.routeUri(from);
    return down === up ? [down] : [down, up];
  }

  private routeUri(peer: Peer): string {
    const adv = this.stack.advertisedAddress(peer);
    const transport = peer.transport === "udp" ? "" : ";transport=tcp";
    return `<sip:${hostForUri(adv.address)}:${adv.port}${transport};lr>`;
  }

  /**
   * The request as it goes on, when its top Route names us: our Routes removed, Max-Forwards decremented, and the
   * URI of the next hop (the next Route, else the Request-URI). Undefined when it is not for us to route.
   */
  private nextHop(
    req: SipRequest,
  ): { request: SipRequest; uri: string; receivedMaxForwards: number } | undefined {
    if (!req.headers.has("route")) return undefined;
    const routes = req.headers.getAll("route");
    let ours = 0;
    while (ours < routes.length && this.namesUs(uriOfRoute(routes[ours]))) ours++;
    if (ours === 0) return undefined;
    const rest = routes.slice(ours);
    const nextUri = rest.length > 0 ? uriOfRoute(rest[0]) : req.uri;
    if (nextUri === undefined || (rest.length === 0 && this.namesUs(nextUri))) return undefined;
    const headers = req.headers.clone();
    headers.remove("route");
    for (const r of rest) headers.append("Route", r);
    const mf = Number.parseInt(headers.get("max-forwards") ?? "70", 10);
    const receivedMaxForwards = Number.isFinite(mf) ? mf : 70;
    headers.set("Max-Forwards", String(receivedMaxForwards - 1));
    return { request: { ...req, headers }, uri: nextUri, receivedMaxForwards };
  }

  private toNextHop(uri: string, go: (dest: Peer) => void, fail: () => void): void {
    let target: Peer | Promise<Peer>;
    try {
      target = resolveTarget(this.stack, uri);
    } catch {
      fail();
      return;
    }
    if (target instanceof Promise) target.then(go, fail);
    else go(target);
  }

  private send(st: ServerTransaction, req: SipRequest, dest: Peer): void {
    // our own answers copy the request as received (sendRequest puts our Via on the forwarded copy)
    const original = st.request;
    let ct: ClientTransaction;
    try {
      ct = this.stack.sendRequest(req, dest);
    } catch {
      st.respond(upstreamStatus(original, 503));
      return;
    }
    if (req.method === "BYE") this.cdr("stop", "application", ct.wire, "normal-release");
    const invite = req.method === "INVITE";
    if (invite) this.inFlight.set(st.id, ct);
    ct.on("response", (res) => {
      if (res.status === 100) return;
      // a 2xx to an INVITE is end to end: its retransmissions are relayed too, and its ACK does not come to us
      const twoHundred = invite && res.status >= 200 && res.status < 300;
      st.respond(upstream(res), twoHundred ? PROXIED : undefined);
    });
    ct.on("timeout", () => st.respond(upstreamStatus(original, 408)));
    ct.on("transport-error", () => st.respond(upstreamStatus(original, 503)));
    ct.on("terminated", () => {
      if (this.inFlight.get(st.id) === ct) this.inFlight.delete(st.id);
    });
  }

  /** Whether a SIP URI names one of our listeners (host is ours, port is our port, 5060 when absent). */
  private namesUs(uri: string | undefined): boolean {
    if (uri === undefined) return false;
    const parsed = parseUri(uri);
    if (parsed === undefined) return false;
    const host = parsed.host.replace(/^\[|\]$/g, "");
    const port = parsed.port ?? (parsed.scheme === "sips" ? 5061 : 5060);
    for (const h of this.stack.hostports) {
      if (h.port !== port) continue;
      if (h.address === host || host === this.stack.externalAddress) return true;
      if (host === "localhost" && (h.address === "127.0.0.1" || isWildcardAddress(h.address))) return true;
      if (isWildcardAddress(h.address) && this.localAddresses.has(host)) return true;
    }
    return false;
  }
}

function isWildcardAddress(address: string): boolean {
  return address === "0.0.0.0" || address === "::";
}

/** The URI of a Route value (`<sip:...;lr>` or a bare URI). */
function uriOfRoute(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  const lt = v.indexOf("<");
  if (lt === -1) return v;
  const gt = v.indexOf(">", lt);
  return gt === -1 ? undefined : v.slice(lt + 1, gt);
}
