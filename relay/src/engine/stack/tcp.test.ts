// TCP transport over real sockets: framing across split chunks, RFC 5626 CRLF keepalives, responses on the same
// connection or (once it closed) a new one to the Via sent-by, connection reuse both ways, framing errors, idle close.
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createResponse, SipHeaders, type SipRequest } from "../sip/message.ts";
import { type IncomingRequest, type ServerTransaction, SipStack } from "./index.ts";
import { headerOf, sipRequest, sipResponse, statusOf, TcpPeer } from "./test-peer.ts";

const T1 = 20;

let stack: SipStack;
let requests: { st: ServerTransaction; msg: IncomingRequest }[];
const cleanups: (() => void | Promise<void>)[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(get: () => T | undefined, what: string, timeoutMs = 1000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function nextRequest() {
  return waitFor(() => requests.shift(), "a request event");
}

function port(): number {
  return stack.hostports.find((h) => h.transport === "tcp")?.port ?? 0;
}

async function connect(): Promise<TcpPeer> {
  const peer = await TcpPeer.connect(port());
  cleanups.push(() => peer.close());
  return peer;
}

/** A raw TCP listener standing in for a phone's own SIP port. */
async function listenRaw(): Promise<{ server: Server; port: number; peers: TcpPeer[] }> {
  const peers: TcpPeer[] = [];
  const server = createServer((sock: Socket) => peers.push(TcpPeer.wrap(sock)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const p of peers) p.close();
        server.close(() => resolve());
      }),
  );
  return { server, port: typeof address === "object" && address ? address.port : 0, peers };
}

beforeEach(async () => {
  stack = await SipStack.listen({ host: "127.0.0.1", port: 0, timers: { T1, T2: 80, T4: 100 } });
  requests = [];
  stack.on("request", (st, msg) => requests.push({ st, msg }));
});

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await stack.close();
});

describe("TCP framing", () => {
  it("answers CRLF pings, reassembles split messages and answers over the same connection", async () => {
    const phone = await connect();
    phone.write("\r\n\r\n");
    await waitFor(() => (phone.keepalivePongs > 0 ? true : undefined), "a CRLF pong");
    const text = sipRequest({ method: "OPTIONS", viaPort: phone.localPort, transport: "TCP" });
    const cut1 = 7;
    const cut2 = text.indexOf("Call-ID") + 3;
    phone.write(text.slice(0, cut1));
    await sleep(15);
    phone.write(text.slice(cut1, cut2));
    await sleep(15);
    expect(requests).toHaveLength(0);
    phone.write(text.slice(cut2));
    const { st, msg } = await nextRequest();
    expect(msg.source).toEqual({ transport: "tcp", address: "127.0.0.1", port: phone.localPort });
    st.respond(createResponse(msg.request, 200));
    const res = await phone.next((m) => statusOf(m.text) === 200);
    expect(headerOf(res.text, "cseq")).toBe("1 OPTIONS");
    expect(stack.stats().connections).toBe(1);
  });

  it("splits two messages arriving in one chunk, with a body", async () => {
    const phone = await connect();
    const a = sipRequest({ method: "MESSAGE", viaPort: phone.localPort, transport: "TCP", body: "hello" });
    const b = sipRequest({ method: "MESSAGE", viaPort: phone.localPort, transport: "TCP", body: "world!" });
    phone.write(`${a}\r\n\r\n${b}`);
    const first = await nextRequest();
    const second = await nextRequest();
    expect(first.msg.request.body.toString()).toBe("hello");
    expect(second.msg.request.body.toString()).toBe("world!");
  });

  it("closes a connection with a framing error and keeps serving others", async () => {
    const errors: string[] = [];
    stack.on("parse-error", (reason) => errors.push(reason));
    const bad = await connect();
    const closed = new Promise<void>((resolve) => bad.socket.once("close", () => resolve()));
    bad.write("OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n");
    await closed;
    expect(errors[0]).toMatch(/Content-Length/);
    const good = await connect();
    good.write(sipRequest({ method: "OPTIONS", viaPort: good.localPort, transport: "TCP" }));
    const { st, msg } = await nextRequest();
    st.respond(createResponse(msg.request, 200));
    await good.next((m) => statusOf(m.text) === 200);
  });

  it("closes idle connections", async () => {
    const idle = await SipStack.listen({
      host: "127.0.0.1",
      port: 0,
      transports: ["tcp"],
      tcpIdleTimeout: 100,
    });
    try {
      const peer = await TcpPeer.connect(idle.hostports[0]?.port ?? 0);
      const closed = new Promise<void>((resolve) => peer.socket.once("close", () => resolve()));
      await waitFor(() => (idle.stats().connections === 1 ? true : undefined), "the connection");
      await closed;
      expect(idle.stats().connections).toBe(0);
    } finally {
      await idle.close();
    }
  });
});

describe("TCP response routing and reuse", () => {
  it("sends the response over a new connection to the Via sent-by when the original one closed", async () => {
    const home = await listenRaw();
    const phone = await connect();
    phone.write(sipRequest({ method: "OPTIONS", viaPort: home.port, transport: "TCP" }));
    const { st, msg } = await nextRequest();
    phone.close();
    await waitFor(() => (stack.stats().connections === 0 ? true : undefined), "the close");
    st.respond(createResponse(msg.request, 200));
    const peer = await waitFor(() => home.peers[0], "a connection to the Via port");
    const res = await peer.next((m) => statusOf(m.text) === 200);
    expect(headerOf(res.text, "cseq")).toBe("1 OPTIONS");
  });

  it("reuses a phone's inbound connection for requests to its source address", async () => {
    const phone = await connect();
    phone.write(sipRequest({ method: "REGISTER", viaPort: phone.localPort, transport: "TCP" }));
    const { st, msg } = await nextRequest();
    st.respond(createResponse(msg.request, 200));
    await phone.next((m) => statusOf(m.text) === 200);
    const ct = stack.sendRequest(options(`sip:phone@127.0.0.1:${phone.localPort};transport=tcp`), msg.source);
    const statuses: number[] = [];
    ct.on("response", (res) => statuses.push(res.status));
    const got = await phone.next((m) => m.text.startsWith("OPTIONS "));
    expect(headerOf(got.text, "via")).toMatch(/^SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;rport;branch=z9hG4bK/);
    phone.write(sipResponse(got.text, 200, "OK", "p1"));
    await waitFor(() => (statuses.length > 0 ? true : undefined), "the response");
    expect(statuses).toEqual([200]);
    expect(stack.stats().connections).toBe(1);
  });

  it("opens one outbound connection per destination and reuses it", async () => {
    const far = await listenRaw();
    const dest = { transport: "tcp" as const, address: "127.0.0.1", port: far.port };
    const a = stack.sendRequest(options(`sip:far@127.0.0.1:${far.port};transport=tcp`), dest);
    const b = stack.sendRequest(options(`sip:far@127.0.0.1:${far.port};transport=tcp`), dest);
    const got: number[] = [];
    a.on("response", (r) => got.push(r.status));
    b.on("response", (r) => got.push(r.status));
    const peer = await waitFor(() => far.peers[0], "the connection");
    const ra = await peer.next((m) => m.text.startsWith("OPTIONS "));
    const rb = await peer.next((m) => m.text.startsWith("OPTIONS "));
    peer.write(sipResponse(rb.text, 404, "Not Found", "x"));
    peer.write(sipResponse(ra.text, 200, "OK", "x"));
    await waitFor(() => (got.length === 2 ? true : undefined), "both responses");
    expect(got).toEqual([404, 200]);
    expect(far.peers).toHaveLength(1);
    expect(stack.stats().connections).toBe(1);
    // reliable transport: no retransmissions, no timer K
    await sleep(T1 * 3);
    expect(peer.count((m) => m.text.startsWith("OPTIONS "))).toBe(2);
    expect(stack.stats().clientTransactions).toBe(0);
  });

  it("INVITE over TCP: 100 Trying, no 4xx retransmission, the ACK ends the transaction at once", async () => {
    const phone = await connect();
    const branch = "z9hG4bKtcpinv";
    phone.write(sipRequest({ method: "INVITE", viaPort: phone.localPort, transport: "TCP", branch }));
    await phone.next((m) => statusOf(m.text) === 100);
    const { st, msg } = await nextRequest();
    st.respond(createResponse(msg.request, 603));
    await phone.next((m) => statusOf(m.text) === 603);
    await sleep(T1 * 4);
    expect(phone.count((m) => statusOf(m.text) === 603)).toBe(1);
    phone.write(sipRequest({ method: "ACK", viaPort: phone.localPort, transport: "TCP", branch }));
    await waitFor(
      () => (stack.stats().serverTransactions === 0 ? true : undefined),
      "the transaction to end",
    );
  });
});

function options(uri: string): SipRequest {
  const headers = new SipHeaders([
    ["Max-Forwards", "70"],
    ["From", "<sip:engine@127.0.0.1>;tag=e1"],
    ["To", `<${uri}>`],
    ["Call-ID", `tcp-${Math.random().toString(36).slice(2)}`],
    ["CSeq", "1 OPTIONS"],
  ]);
  return { kind: "request", method: "OPTIONS", uri, version: "SIP/2.0", headers, body: Buffer.alloc(0) };
}
