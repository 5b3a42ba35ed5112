// Test utility: a scripted SIP peer on a loopback UDP socket that sends raw messages and waits for specific ones,
// used by the engine's tests to play phones and trunks without any SIP library in between.
import { createSocket, type Socket } from "node:dgram";
import { parseMessage, type SipMessage, type SipRequest, type SipResponse } from "../sip/message.ts";

export interface Received {
  msg: SipMessage;
  text: string;
}

export class UdpPeer {
  private readonly inbox: Received[] = [];
  private waiters: { match: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  port = 0;

  private constructor(private readonly sock: Socket) {
    sock.on("message", (buf) => {
      const parsed = parseMessage(buf);
      if (!parsed.ok) return;
      const r: Received = { msg: parsed.message, text: buf.toString("utf8") };
      const i = this.waiters.findIndex((w) => w.match(r));
      if (i !== -1) {
        const [w] = this.waiters.splice(i, 1);
        w?.resolve(r);
      } else this.inbox.push(r);
    });
  }

  static async open(): Promise<UdpPeer> {
    const sock = createSocket("udp4");
    const peer = new UdpPeer(sock);
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", () => resolve()));
    peer.port = sock.address().port;
    return peer;
  }

  send(text: string, port: number): void {
    this.sock.send(Buffer.from(text), port, "127.0.0.1");
  }

  /** Next received message matching; rejects after timeoutMs. */
  next(match: (r: Received) => boolean, timeoutMs = 10_000, what = "message"): Promise<Received> {
    const i = this.inbox.findIndex(match);
    if (i !== -1) {
      const [r] = this.inbox.splice(i, 1);
      if (r) return Promise.resolve(r);
    }
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (r: Received) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`peer: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  response(status: number, method: string, timeoutMs?: number): Promise<SipResponse> {
    return this.next(
      (r) =>
        r.msg.kind === "response" &&
        r.msg.status === status &&
        (r.msg.headers.get("cseq") ?? "").endsWith(method),
      timeoutMs,
      `${status} ${method}`,
    ).then((r) => r.msg as SipResponse);
  }

  request(method: string, timeoutMs?: number): Promise<SipRequest> {
    return this.next((r) => r.msg.kind === "request" && r.msg.method === method, timeoutMs, method).then(
      (r) => r.msg as SipRequest,
    );
  }

  /** Whether a matching message arrived (or arrives within ms). */
  async sees(match: (r: Received) => boolean, ms: number): Promise<boolean> {
    try {
      await this.next(match, ms);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.sock.close();
  }
}

/** Minimal SDP offer/answer for tests. */
export function sdp(port: number): string {
  return `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=sendrecv\r\n`;
}

/** Build a request text with the usual headers; `extra` lines are appended verbatim. */
export function request(opts: {
  method: string;
  uri: string;
  peerPort: number;
  callId: string;
  cseq: number;
  fromTag: string;
  toTag?: string;
  branch?: string;
  extra?: string[];
  body?: string;
  cseqMethod?: string;
}): string {
  const body = opts.body ?? "";
  const lines = [
    `${opts.method} ${opts.uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${opts.peerPort};branch=${opts.branch ?? `z9hG4bK${Math.random().toString(36).slice(2)}`};rport`,
    "Max-Forwards: 70",
    `From: <sip:alice@127.0.0.1:${opts.peerPort}>;tag=${opts.fromTag}`,
    `To: <${opts.uri}>${opts.toTag ? `;tag=${opts.toTag}` : ""}`,
    `Call-ID: ${opts.callId}`,
    `CSeq: ${opts.cseq} ${opts.cseqMethod ?? opts.method}`,
    `Contact: <sip:alice@127.0.0.1:${opts.peerPort}>`,
    ...(opts.extra ?? []),
    ...(body ? ["Content-Type: application/sdp"] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ];
  return lines.join("\r\n");
}

/** A response text to a received request, copying Via/From/To/Call-ID/CSeq. */
export function respond(
  req: SipRequest,
  status: number,
  reason: string,
  opts: { toTag?: string; contact?: string; body?: string } = {},
): string {
  const h = req.headers;
  const to = h.get("to") ?? "";
  const body = opts.body ?? "";
  const lines = [
    `SIP/2.0 ${status} ${reason}`,
    ...h.getAll("via").map((v) => `Via: ${v}`),
    `From: ${h.get("from") ?? ""}`,
    `To: ${to}${opts.toTag && !to.includes("tag=") ? `;tag=${opts.toTag}` : ""}`,
    `Call-ID: ${h.get("call-id") ?? ""}`,
    `CSeq: ${h.get("cseq") ?? ""}`,
    ...h.getAll("record-route").map((v) => `Record-Route: ${v}`),
    ...(opts.contact ? [`Contact: ${opts.contact}`] : []),
    ...(body ? ["Content-Type: application/sdp"] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ];
  return lines.join("\r\n");
}
