// A lean SIP user agent for the relay call benchmark: the calling phone (INVITE, answering the relay's 407
// with digest, ACK, BYE) and the called phone (REGISTER with digest, then answering INVITEs with 180/200 and
// BYEs with 200), over one UDP socket each, with RFC 3261 retransmissions (T1 = 500 ms) so a datagram lost
// under load costs time, not the call. Every send and receive is timestamped here, on the wire side of the
// relay, which is what the setup-share figure needs; the phones are ours, so no capture tool is required.
// Only what the benchmark's calls use is implemented: no forking, no re-INVITE, no TCP.
import { createHash, randomBytes } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";

export interface SipMessage {
  request: boolean;
  method: string;
  uri: string;
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

const COMPACT: Record<string, string> = {
  i: "call-id",
  f: "from",
  t: "to",
  v: "via",
  m: "contact",
  l: "content-length",
  c: "content-type",
};

export function parseSip(text: string): SipMessage | undefined {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split("\r\n");
  const first = lines[0] ?? "";
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    let name = line.slice(0, colon).trim().toLowerCase();
    name = COMPACT[name] ?? name;
    const list = headers.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    headers.set(name, list);
  }
  const body = text.slice(end + 4);
  if (first.startsWith("SIP/2.0 ")) {
    return { request: false, method: "", uri: "", status: Number(first.slice(8, 11)), headers, body };
  }
  const [method = "", uri = ""] = first.split(" ");
  return { request: true, method, uri, status: 0, headers, body };
}

export function header(m: SipMessage, name: string): string {
  return m.headers.get(name)?.[0] ?? "";
}

function param(value: string, name: string): string | undefined {
  return new RegExp(`;\\s*${name}=([^;>\\s,]+)`, "i").exec(value)?.[1];
}

function cseqOf(m: SipMessage): { n: number; method: string } {
  const [n = "0", method = ""] = header(m, "cseq").split(/\s+/);
  return { n: Number(n), method: method.toUpperCase() };
}

function branchOf(m: SipMessage): string {
  return param(header(m, "via"), "branch") ?? "";
}

/** The URI inside a name-addr (`"x" <sip:…>;tag=…`), or the value itself. */
function uriOf(value: string): string {
  return /<([^>]+)>/.exec(value)?.[1] ?? value.split(";")[0] ?? value;
}

/** host:port of a SIP URI (port 5060 when absent). */
export function hostPortOf(uri: string): { address: string; port: number } {
  const m = /^sips?:(?:[^@]+@)?([^:;>]+)(?::(\d+))?/i.exec(uri);
  return { address: m?.[1] ?? "127.0.0.1", port: Number(m?.[2] ?? 5060) };
}

/** The audio port and address an SDP names. */
export function sdpMedia(sdp: string): { address: string; port: number } | undefined {
  const c = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1];
  const m = /^m=audio (\d+) /m.exec(sdp)?.[1];
  return c && m ? { address: c, port: Number(m) } : undefined;
}

/** A PCMU offer/answer whose session name carries the call's token (rtpengine leaves s= alone). */
export function benchSdp(port: number, token: string): string {
  const id = String(Date.now());
  return [
    "v=0",
    `o=bench ${id} ${id} IN IP4 127.0.0.1`,
    `s=${token}`,
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    `m=audio ${port} RTP/AVP 0 101`,
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=sendrecv",
    "",
  ].join("\r\n");
}

export function sdpToken(sdp: string): string {
  return /^s=(\S+)/m.exec(sdp)?.[1] ?? "";
}

const md5 = (s: string): string => createHash("md5").update(s).digest("hex");

/** The Authorization / Proxy-Authorization value answering an MD5 (qop=auth) challenge. */
function digestAnswer(
  challenges: string[],
  creds: { username: string; password: string },
  method: string,
  uri: string,
): string {
  const chosen = challenges.find((c) => !/algorithm=/i.test(c) || /algorithm="?MD5"?(?![-\w])/i.test(c));
  if (!chosen) throw new Error("no MD5 challenge offered");
  const field = (n: string): string | undefined =>
    new RegExp(`${n}="([^"]*)"`, "i").exec(chosen)?.[1] ??
    new RegExp(`${n}=([^,\\s]+)`, "i").exec(chosen)?.[1];
  const realm = field("realm") ?? "";
  const nonce = field("nonce") ?? "";
  const opaque = field("opaque");
  const qop = field("qop");
  const ha1 = md5(`${creds.username}:${realm}:${creds.password}`);
  const ha2 = md5(`${method}:${uri}`);
  const cnonce = randomBytes(8).toString("hex");
  const nc = "00000001";
  const useQop = qop?.split(",").some((q) => q.trim() === "auth") ?? false;
  const response = useQop
    ? md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`)
    : md5(`${ha1}:${nonce}:${ha2}`);
  let v = `Digest username="${creds.username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
  if (useQop) v += `, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
  if (opaque !== undefined) v += `, opaque="${opaque}"`;
  return v;
}

type Peer = { address: string; port: number };

interface ClientTx {
  resolve(m: SipMessage): void;
  reject(err: Error): void;
  onProvisional?: (m: SipMessage) => void;
  text: string;
  to: Peer;
  invite: boolean;
  interval: number;
  retransmit: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout;
  provisional: boolean;
}

const T1 = 500;
const T2 = 4000;

/** One UDP SIP endpoint on 127.0.0.1: client transactions with retransmission, and a request hook. */
export class SipEndpoint {
  private readonly txs = new Map<string, ClientTx>();
  /** Called for every request received (responses are matched to transactions). */
  onRequest: (m: SipMessage, from: Peer) => void = () => undefined;
  /** Responses that matched no transaction (2xx retransmissions after the transaction ended). */
  onStrayResponse: (m: SipMessage, from: Peer) => void = () => undefined;
  retransmissions = 0;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on("message", (buf: Buffer, rinfo: RemoteInfo) => this.receive(buf, rinfo));
  }

  static async open(port = 0): Promise<SipEndpoint> {
    const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, "127.0.0.1", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", () => undefined);
    return new SipEndpoint(socket, socket.address().port);
  }

  get contact(): string {
    return `127.0.0.1:${this.port}`;
  }

  newBranch(): string {
    return `z9hG4bK${randomBytes(8).toString("hex")}`;
  }

  send(text: string, to: Peer): void {
    this.socket.send(text, to.port, to.address);
  }

  /** Sends a request and resolves with its final response; provisional ones go to `onProvisional`. */
  request(
    text: string,
    branch: string,
    to: Peer,
    opts: { invite?: boolean; timeoutMs?: number; onProvisional?: (m: SipMessage) => void } = {},
  ): Promise<SipMessage> {
    return new Promise((resolve, reject) => {
      const tx: ClientTx = {
        resolve,
        reject,
        text,
        to,
        invite: opts.invite ?? false,
        interval: T1,
        retransmit: undefined,
        provisional: false,
        deadline: setTimeout(() => {
          this.end(branch);
          reject(new Error("transaction timed out"));
        }, opts.timeoutMs ?? 16_000),
      };
      if (opts.onProvisional) tx.onProvisional = opts.onProvisional;
      this.txs.set(branch, tx);
      this.send(text, to);
      this.arm(branch, tx);
    });
  }

  private arm(branch: string, tx: ClientTx): void {
    tx.retransmit = setTimeout(() => {
      if (this.txs.get(branch) !== tx) return;
      this.retransmissions++;
      this.send(tx.text, tx.to);
      tx.interval = tx.invite ? tx.interval * 2 : Math.min(tx.interval * 2, T2);
      this.arm(branch, tx);
    }, tx.interval);
  }

  private end(branch: string): void {
    const tx = this.txs.get(branch);
    if (!tx) return;
    clearTimeout(tx.retransmit);
    clearTimeout(tx.deadline);
    this.txs.delete(branch);
  }

  private receive(buf: Buffer, rinfo: RemoteInfo): void {
    const m = parseSip(buf.toString("latin1"));
    if (!m) return;
    const from = { address: rinfo.address, port: rinfo.port };
    if (m.request) {
      this.onRequest(m, from);
      return;
    }
    const branch = branchOf(m);
    const tx = this.txs.get(branch);
    if (!tx) {
      this.onStrayResponse(m, from);
      return;
    }
    if (m.status < 200) {
      if (tx.invite && !tx.provisional) {
        // a provisional answer stops INVITE retransmissions (RFC 3261 §17.1.1.2)
        tx.provisional = true;
        clearTimeout(tx.retransmit);
        tx.retransmit = undefined;
      }
      tx.onProvisional?.(m);
      return;
    }
    this.end(branch);
    tx.resolve(m);
  }

  /** A response to request `req` (Via, From, To, Call-ID, CSeq copied; To gets `toTag` when given). */
  response(req: SipMessage, status: number, reason: string, toTag?: string, sdp?: string): string {
    const lines = [`SIP/2.0 ${status} ${reason}`];
    for (const v of req.headers.get("via") ?? []) lines.push(`Via: ${v}`);
    lines.push(`From: ${header(req, "from")}`);
    const to = header(req, "to");
    lines.push(`To: ${toTag && !/;\s*tag=/i.test(to) ? `${to};tag=${toTag}` : to}`);
    lines.push(`Call-ID: ${header(req, "call-id")}`, `CSeq: ${header(req, "cseq")}`);
    lines.push(`Contact: <sip:bench@${this.contact}>`);
    if (sdp) lines.push("Content-Type: application/sdp");
    lines.push(`Content-Length: ${sdp ? Buffer.byteLength(sdp) : 0}`, "", sdp ?? "");
    return lines.join("\r\n");
  }

  close(): void {
    for (const b of [...this.txs.keys()]) this.end(b);
    this.socket.close();
  }
}

/** An answered call as the caller holds it. */
export interface CallerDialog {
  callId: string;
  fromTag: string;
  toTag: string;
  remoteTarget: string;
  to: string;
  from: string;
  /** performance.now() when the INVITE that got through (the authenticated one) was sent. */
  invitedAt: number;
  answeredAt: number;
  /** Where the relay (rtpengine) wants this leg's RTP. */
  media: { address: string; port: number } | undefined;
  /** true once the far end sent BYE first. */
  byed: boolean;
}

export class CallFailed extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The calling phone: INVITE with digest, ACK, BYE. */
export class Caller {
  private readonly dialogs = new Map<string, CallerDialog>();
  private seq = 0;

  constructor(
    readonly ep: SipEndpoint,
    private readonly user: string,
    private readonly creds: { username: string; password: string } | undefined,
  ) {
    ep.onRequest = (m, from) => {
      // The relay ending a call (or probing): answer 200; a BYE marks the dialog as ended by the far side.
      if (m.method === "ACK") return;
      const d = this.dialogs.get(header(m, "call-id"));
      if (m.method === "BYE" && d) d.byed = true;
      ep.send(
        ep.response(m, m.method === "BYE" && !d ? 481 : 200, m.method === "BYE" && !d ? "No Dialog" : "OK"),
        from,
      );
    };
    ep.onStrayResponse = (m, from) => {
      // a retransmitted 200 to our INVITE (our ACK was lost): ACK again
      const d = this.dialogs.get(header(m, "call-id"));
      if (d && m.status === 200 && cseqOf(m).method === "INVITE") this.ack(d, cseqOf(m).n, from);
    };
  }

  private ack(d: CallerDialog, cseq: number, _to: Peer): void {
    const target = hostPortOf(d.remoteTarget);
    this.ep.send(
      [
        `ACK ${d.remoteTarget} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ep.contact};branch=${this.ep.newBranch()};rport`,
        `From: ${d.from}`,
        `To: ${d.to}`,
        `Call-ID: ${d.callId}`,
        `CSeq: ${cseq} ACK`,
        "Max-Forwards: 70",
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      target,
    );
  }

  /** Places a call to `dial`@`via`; resolves once answered (and ACKed), rejects with CallFailed otherwise. */
  async call(dial: string, via: Peer, sdp: string, timeoutMs = 16_000): Promise<CallerDialog> {
    const callId = `bench-${randomBytes(6).toString("hex")}-${++this.seq}@127.0.0.1`;
    const fromTag = randomBytes(5).toString("hex");
    const uri = `sip:${dial}@${via.address}:${via.port}`;
    const from = `<sip:${this.user}@${via.address}>;tag=${fromTag}`;
    const invite = (cseq: number, branch: string, auth?: string): string =>
      [
        `INVITE ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ep.contact};branch=${branch};rport`,
        "Max-Forwards: 70",
        `From: ${from}`,
        `To: <${uri}>`,
        `Call-ID: ${callId}`,
        `CSeq: ${cseq} INVITE`,
        `Contact: <sip:${this.user}@${this.ep.contact}>`,
        ...(auth ? [`Proxy-Authorization: ${auth}`] : []),
        "User-Agent: gosip-bench",
        "Content-Type: application/sdp",
        `Content-Length: ${Buffer.byteLength(sdp)}`,
        "",
        sdp,
      ].join("\r\n");
    let cseq = 1;
    let branch = this.ep.newBranch();
    let invitedAt = performance.now();
    let res = await this.ep
      .request(invite(cseq, branch), branch, via, { invite: true, timeoutMs })
      .catch((err: unknown) => {
        throw new CallFailed(0, String(err));
      });
    if ((res.status === 407 || res.status === 401) && this.creds) {
      this.ackFailure(res, uri, cseq, branch, via);
      const challenges =
        res.headers.get(res.status === 407 ? "proxy-authenticate" : "www-authenticate") ?? [];
      const auth = digestAnswer(challenges, this.creds, "INVITE", uri);
      cseq = 2;
      branch = this.ep.newBranch();
      invitedAt = performance.now();
      res = await this.ep
        .request(invite(cseq, branch, auth), branch, via, { invite: true, timeoutMs })
        .catch((err: unknown) => {
          throw new CallFailed(0, String(err));
        });
    }
    if (res.status >= 300) {
      this.ackFailure(res, uri, cseq, branch, via);
      throw new CallFailed(res.status, `INVITE answered ${res.status}`);
    }
    const d: CallerDialog = {
      callId,
      fromTag,
      toTag: param(header(res, "to"), "tag") ?? "",
      remoteTarget: uriOf(header(res, "contact")) || uri,
      to: header(res, "to"),
      from,
      invitedAt,
      answeredAt: performance.now(),
      media: sdpMedia(res.body),
      byed: false,
    };
    this.dialogs.set(callId, d);
    this.ack(d, cseq, via);
    return d;
  }

  /** ACK for a non-2xx final response: same branch and Request-URI as the INVITE (RFC 3261 §17.1.1.3). */
  private ackFailure(res: SipMessage, uri: string, cseq: number, branch: string, via: Peer): void {
    this.ep.send(
      [
        `ACK ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ep.contact};branch=${branch};rport`,
        "Max-Forwards: 70",
        `From: ${header(res, "from")}`,
        `To: ${header(res, "to")}`,
        `Call-ID: ${header(res, "call-id")}`,
        `CSeq: ${cseq} ACK`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      via,
    );
  }

  /** Hangs up; resolves with the BYE's final status (0 when it timed out). */
  async bye(d: CallerDialog): Promise<number> {
    this.dialogs.delete(d.callId);
    if (d.byed) return -1;
    const branch = this.ep.newBranch();
    const target = hostPortOf(d.remoteTarget);
    const text = [
      `BYE ${d.remoteTarget} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.ep.contact};branch=${branch};rport`,
      "Max-Forwards: 70",
      `From: ${d.from}`,
      `To: ${d.to}`,
      `Call-ID: ${d.callId}`,
      "CSeq: 3 BYE",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    try {
      return (await this.ep.request(text, branch, target)).status;
    } catch {
      return 0;
    }
  }
}

/** A call as the called phone saw it. */
export interface CalleeLeg {
  callId: string;
  token: string;
  /** performance.now() when the (first copy of the) INVITE arrived. */
  invitedAt: number;
  media: { address: string; port: number } | undefined;
  acked: boolean;
  byed: boolean;
}

/**
 * The called phone: registers (digest), then answers every INVITE with 180 and 200 (SDP from `answer`),
 * retransmitting the 200 until the ACK comes, and answers BYE/OPTIONS/CANCEL.
 */
export class Callee {
  readonly legs = new Map<string, CalleeLeg>();
  private readonly last = new Map<string, string>();
  private readonly pending200 = new Map<string, NodeJS.Timeout>();
  /** Told about every new INVITE; returns the SDP to answer with (undefined: 486). */
  answer: (leg: CalleeLeg) => string | undefined = () => undefined;
  onAck: (leg: CalleeLeg) => void = () => undefined;
  onBye: (leg: CalleeLeg) => void = () => undefined;

  constructor(readonly ep: SipEndpoint) {
    ep.onRequest = (m, from) => this.onRequest(m, from);
  }

  /** REGISTER `user` with this endpoint's address as Contact, answering the 401. */
  async register(user: string, password: string, registrar: Peer, expires = 3600): Promise<number> {
    const callId = `reg-${randomBytes(6).toString("hex")}@127.0.0.1`;
    const tag = randomBytes(4).toString("hex");
    const uri = `sip:${registrar.address}:${registrar.port}`;
    const text = (cseq: number, branch: string, auth?: string): string =>
      [
        `REGISTER ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ep.contact};branch=${branch};rport`,
        "Max-Forwards: 70",
        `From: <sip:${user}@${registrar.address}>;tag=${tag}`,
        `To: <sip:${user}@${registrar.address}>`,
        `Call-ID: ${callId}`,
        `CSeq: ${cseq} REGISTER`,
        `Contact: <sip:${user}@${this.ep.contact}>`,
        `Expires: ${expires}`,
        ...(auth ? [`Authorization: ${auth}`] : []),
        "User-Agent: gosip-bench",
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n");
    let branch = this.ep.newBranch();
    let res = await this.ep.request(text(1, branch), branch, registrar);
    if (res.status === 401) {
      const auth = digestAnswer(
        res.headers.get("www-authenticate") ?? [],
        { username: user, password },
        "REGISTER",
        uri,
      );
      branch = this.ep.newBranch();
      res = await this.ep.request(text(2, branch, auth), branch, registrar);
    }
    return res.status;
  }

  private onRequest(m: SipMessage, from: Peer): void {
    const callId = header(m, "call-id");
    const key = `${callId} ${header(m, "cseq")} ${branchOf(m)}`;
    const again = this.last.get(key);
    if (again !== undefined && m.method !== "ACK") {
      this.ep.send(again, from); // a retransmitted request gets the same answer
      return;
    }
    const reply = (status: number, reason: string, tag?: string, sdp?: string): void => {
      const text = this.ep.response(m, status, reason, tag, sdp);
      this.last.set(key, text);
      this.ep.send(text, from);
    };
    switch (m.method) {
      case "INVITE": {
        if (this.legs.has(callId)) {
          reply(491, "Request Pending");
          return;
        }
        const leg: CalleeLeg = {
          callId,
          token: sdpToken(m.body),
          invitedAt: performance.now(),
          media: sdpMedia(m.body),
          acked: false,
          byed: false,
        };
        this.legs.set(callId, leg);
        const sdp = this.answer(leg);
        if (sdp === undefined) {
          reply(486, "Busy Here", randomBytes(4).toString("hex"));
          return;
        }
        const tag = randomBytes(4).toString("hex");
        this.ep.send(this.ep.response(m, 180, "Ringing", tag), from);
        reply(200, "OK", tag, sdp);
        this.retransmit200(callId, key, from, T1);
        return;
      }
      case "ACK": {
        const leg = this.legs.get(callId);
        const t = this.pending200.get(callId);
        if (t) clearTimeout(t);
        this.pending200.delete(callId);
        if (leg && !leg.acked) {
          leg.acked = true;
          this.onAck(leg);
        }
        return;
      }
      case "BYE": {
        const leg = this.legs.get(callId);
        reply(leg ? 200 : 481, leg ? "OK" : "Call/Transaction Does Not Exist");
        if (leg && !leg.byed) {
          leg.byed = true;
          this.onBye(leg);
        }
        return;
      }
      default:
        reply(200, "OK");
    }
  }

  private retransmit200(callId: string, key: string, to: Peer, interval: number): void {
    if (interval > 8000) {
      this.pending200.delete(callId);
      return;
    }
    this.pending200.set(
      callId,
      setTimeout(() => {
        const text = this.last.get(key);
        if (!this.pending200.has(callId) || text === undefined) return;
        this.ep.retransmissions++;
        this.ep.send(text, to);
        this.retransmit200(callId, key, to, Math.min(interval * 2, T2));
      }, interval),
    );
  }

  /** Forgets ended calls (the concurrent run keeps thousands). */
  forget(callId: string): void {
    this.legs.delete(callId);
    for (const k of this.last.keys()) if (k.startsWith(`${callId} `)) this.last.delete(k);
  }
}
