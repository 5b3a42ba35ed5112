// Server side of the stack over real UDP sockets: 100 Trying, retransmission absorption, 2xx retransmission until
// ACK (RFC 6026), ack-timeout, non-2xx ACK absorption, CANCEL, rport/received, malformed input.
import { createSocket } from "node:dgram";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createResponse, type SipRequest } from "../sip/message.ts";
import { type IncomingAck, type IncomingRequest, type ServerTransaction, SipStack } from "./index.ts";
import { headerOf, sipRequest, statusOf, UdpPeer, until } from "./test-peer.ts";

const T1 = 20;
const T2 = 80;
const T4 = 100;

let stack: SipStack;
let phone: UdpPeer;
let requests: { st: ServerTransaction; msg: IncomingRequest }[];

function nextRequest(timeoutMs = 1000): Promise<{ st: ServerTransaction; msg: IncomingRequest }> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      const r = requests.shift();
      if (r) resolve(r);
      else if (Date.now() - start > timeoutMs) reject(new Error("no request event"));
      else setTimeout(poll, 2);
    };
    poll();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function settled(): Promise<void> {
  // every transaction in these tests ends within 64*T1 plus a few ticks
  for (let i = 0; i < 200; i++) {
    const s = stack.stats();
    if (s.serverTransactions === 0 && s.clientTransactions === 0 && s.accepted === 0 && s.timers === 0)
      return;
    await sleep(10);
  }
  throw new Error(`transactions left over: ${JSON.stringify(stack.stats())}`);
}

/** The phone sends an INVITE; resolves its server transaction, with its ack-timeout count and its end. */
async function incomingInvite(): Promise<{
  invite: string;
  st: ServerTransaction;
  msg: IncomingRequest;
  ackTimeouts: () => number;
  ended: Promise<void>;
}> {
  const invite = sipRequest({ method: "INVITE", viaPort: phone.port });
  phone.send(invite, port());
  const { st, msg } = await nextRequest();
  let count = 0;
  st.on("ack-timeout", () => count++);
  const ended = new Promise<void>((resolve) => st.on("terminated", () => resolve()));
  return { invite, st, msg, ackTimeouts: () => count, ended };
}

function ok(req: SipRequest, status = 200) {
  return createResponse(req, status);
}

beforeEach(async () => {
  stack = await SipStack.listen({ host: "127.0.0.1", port: 0, timers: { T1, T2, T4 } });
  phone = await UdpPeer.open();
  requests = [];
  stack.on("request", (st, msg) => requests.push({ st, msg }));
});

afterEach(async () => {
  await stack.close();
  await phone.close();
});

function port(): number {
  return stack.hostports.find((h) => h.transport === "udp")?.port ?? 0;
}

describe("INVITE server transaction", () => {
  it("answers 100 Trying at once and hands the request up once, absorbing retransmissions", async () => {
    const invite = sipRequest({ method: "INVITE", viaPort: phone.port, rport: true });
    phone.send(invite, port());
    const trying = await phone.next((m) => statusOf(m.text) === 100);
    expect(headerOf(trying.text, "to")).not.toContain("tag=");
    const { st, msg } = await nextRequest();
    expect(msg.request.method).toBe("INVITE");
    expect(msg.source).toEqual({ transport: "udp", address: "127.0.0.1", port: phone.port });
    st.respond(ok(msg.request, 180));
    await phone.next((m) => statusOf(m.text) === 180);
    // The phone did not see the 180 (as far as it knows) and retransmits: the 180 comes again, no new request.
    phone.send(invite, port());
    const again = await phone.next((m) => statusOf(m.text) === 180);
    expect(again.text).toContain("180");
    await sleep(30);
    expect(requests).toHaveLength(0);
    expect(stack.stats().serverTransactions).toBe(1);
  });

  it("retransmits the 2xx (T1 doubling, capped at T2) until the ACK arrives, then reports the ACK", async () => {
    phone.send(sipRequest({ method: "INVITE", viaPort: phone.port, callId: "c-2xx", fromTag: "a1" }), port());
    const { st, msg } = await nextRequest();
    const acks: IncomingAck[] = [];
    const stackAcks: IncomingAck[] = [];
    st.on("ack", (a) => acks.push(a));
    stack.on("ack", (a) => stackAcks.push(a));
    const wire = st.respond(ok(msg.request));
    expect(wire).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    const toTag = /tag=([^;\s]+)/.exec(headerOf(wire, "to") ?? "")?.[1];
    expect(toTag).toBeTruthy();
    // first 200 + retransmissions at about T1, 3*T1, 7*T1
    await until(() => phone.count((m) => statusOf(m.text) === 200) >= 3, "2xx retransmissions");
    const ack = sipRequest({
      method: "ACK",
      viaPort: phone.port,
      callId: "c-2xx",
      fromTag: "a1",
      toTag,
      branch: "z9hG4bKack2xx",
    });
    phone.send(ack, port());
    await until(() => acks.length === 1, "the ack event");
    expect(stackAcks).toHaveLength(1);
    expect(stackAcks[0]?.transaction).toBe(st);
    const after = phone.count((m) => statusOf(m.text) === 200);
    await sleep(T2 * 3);
    expect(phone.count((m) => statusOf(m.text) === 200)).toBe(after);
    await settled();
  });

  it("emits ack-timeout after 64*T1 without ACK and then forgets the transaction", async () => {
    phone.send(sipRequest({ method: "INVITE", viaPort: phone.port }), port());
    const { st, msg } = await nextRequest();
    const started = Date.now();
    const timedOut = new Promise<number>((resolve) =>
      st.on("ack-timeout", () => resolve(Date.now() - started)),
    );
    const terminated = new Promise<void>((resolve) => st.on("terminated", () => resolve()));
    st.respond(ok(msg.request));
    const elapsed = await timedOut;
    await terminated;
    expect(elapsed).toBeGreaterThanOrEqual(64 * T1 - 5);
    expect(elapsed).toBeLessThan(64 * T1 + 1500);
    // T1, 2T1, then T2 steps: 20, 40, 80, 80, ... within 1280 ms → about 17 copies; never more than one per T1
    // (fewer when the event loop stalls on a loaded machine: each retransmission is scheduled from the previous)
    const copies = phone.count((m) => statusOf(m.text) === 200);
    expect(copies).toBeGreaterThanOrEqual(5);
    expect(copies).toBeLessThanOrEqual(20);
    await settled();
  });

  it("retransmits a non-2xx final until the ACK, which it absorbs (no ack event)", async () => {
    const invite = sipRequest({ method: "INVITE", viaPort: phone.port, branch: "z9hG4bKbusy" });
    phone.send(invite, port());
    const { st, msg } = await nextRequest();
    let stackAcks = 0;
    stack.on("ack", () => stackAcks++);
    st.respond(ok(msg.request, 486));
    await until(() => phone.count((m) => statusOf(m.text) === 486) >= 2, "timer G retransmissions");
    // a retransmitted INVITE in Completed gets the 486 again
    const beforeRetrans = phone.count((m) => statusOf(m.text) === 486);
    phone.send(invite, port());
    await until(() => phone.count((m) => statusOf(m.text) === 486) > beforeRetrans, "the 486 again");
    phone.send(sipRequest({ method: "ACK", viaPort: phone.port, branch: "z9hG4bKbusy", toTag: "x" }), port());
    await until(() => st.state !== "completed", "the ACK to be absorbed");
    await sleep(5); // a retransmission already on its way may still arrive
    const count = phone.count((m) => statusOf(m.text) === 486);
    await sleep(T2 * 2);
    expect(phone.count((m) => statusOf(m.text) === 486)).toBe(count);
    expect(stackAcks).toBe(0);
    expect(requests).toHaveLength(0);
    await settled();
  });

  it("a proxied 2xx is sent once, not retransmitted, and never times out waiting for an ACK", async () => {
    const { invite, st, msg, ackTimeouts, ended } = await incomingInvite();
    st.respond(ok(msg.request), { proxied: true });
    await phone.next((m) => statusOf(m.text) === 200);
    await sleep(T1 * 8);
    expect(phone.count((m) => statusOf(m.text) === 200)).toBe(1);
    // the TU forwards a 2xx retransmission from downstream; a retransmitted INVITE is absorbed
    st.respond(ok(msg.request), { proxied: true });
    phone.send(invite, port());
    await phone.next((m) => statusOf(m.text) === 200);
    await ended; // timer L
    expect(ackTimeouts()).toBe(0);
    expect(phone.count((m) => statusOf(m.text) === 200)).toBe(2);
    await settled();
  });

  it("stopRetransmitting ends the 2xx retransmissions without an ack-timeout; INVITE retransmissions stay absorbed", async () => {
    const { invite, st, msg, ackTimeouts, ended } = await incomingInvite();
    st.respond(ok(msg.request));
    await until(() => phone.count((m) => statusOf(m.text) === 200) >= 2, "2xx retransmissions");
    st.stopRetransmitting();
    await sleep(5); // a retransmission already on its way may still arrive
    const stoppedAt = phone.count((m) => statusOf(m.text) === 200);
    await sleep(T2 * 3);
    expect(phone.count((m) => statusOf(m.text) === 200)).toBe(stoppedAt);
    // a retransmitted INVITE is absorbed silently in Accepted
    phone.send(invite, port());
    await ended; // timer L
    expect(ackTimeouts()).toBe(0);
    expect(phone.count((m) => statusOf(m.text) === 200)).toBe(stoppedAt);
    await settled();
  });

  it("respond after a non-2xx final is ignored", async () => {
    phone.send(sipRequest({ method: "INVITE", viaPort: phone.port }), port());
    const { st, msg } = await nextRequest();
    expect(st.respond(ok(msg.request, 404))).toContain("404");
    expect(st.respond(ok(msg.request, 200))).toBe("");
    await sleep(T1);
    expect(phone.count((m) => statusOf(m.text) === 200)).toBe(0);
  });
});

describe("non-INVITE server transaction", () => {
  it("answers retransmissions with the last response and hands the request up once", async () => {
    const options = sipRequest({ method: "OPTIONS", viaPort: phone.port });
    phone.send(options, port());
    const { st, msg } = await nextRequest();
    expect(phone.count(() => true)).toBe(0); // no 100 Trying for non-INVITE
    st.respond(ok(msg.request));
    await phone.next((m) => statusOf(m.text) === 200);
    phone.send(options, port());
    await phone.next((m) => statusOf(m.text) === 200);
    await sleep(20);
    expect(requests).toHaveLength(0);
    await settled(); // timer J
  });
});

describe("many transactions", () => {
  it("answers 2,000 concurrent requests once each and holds nothing after timer J", async () => {
    const n = 2000;
    // its own stack with T1 = 100 ms: timer J (64*T1 = 6.4 s) must outlast sending and answering all of them,
    // which on a loaded machine takes longer than the 1.28 s the other tests' T1 gives
    const slowT1 = 100;
    const many = await SipStack.listen({
      host: "127.0.0.1",
      port: 0,
      timers: { T1: slowT1, T2: 4 * slowT1, T4: 5 * slowT1 },
    });
    try {
      const manyPort = many.hostports.find((h) => h.transport === "udp")?.port ?? 0;
      many.on("request", (st, msg) => st.respond(ok(msg.request)));
      const texts = Array.from({ length: n }, (_, i) =>
        sipRequest({ method: "REGISTER", viaPort: phone.port, callId: `many-${i}` }),
      );
      const started = Date.now();
      for (let i = 0; i < n; i += 100) {
        for (const t of texts.slice(i, i + 100)) phone.send(t, manyPort);
        await sleep(2);
      }
      await until(() => phone.count((m) => statusOf(m.text) === 200) >= n, "2,000 answers");
      expect(phone.count((m) => statusOf(m.text) === 200)).toBe(n);
      // each request is held (once) until its timer J
      expect(Date.now() - started).toBeLessThan(64 * slowT1);
      expect(many.stats().serverTransactions).toBe(n);
      await until(
        () => many.stats().serverTransactions === 0 && many.stats().timers === 0,
        "timer J",
        20_000,
      );
      expect(many.stats().serverTransactions).toBe(0);
    } finally {
      await many.close();
    }
  });
});

describe("CANCEL", () => {
  it("answers 200 to the CANCEL and 487 to the INVITE, emits cancel, absorbs the ACK", async () => {
    const branch = "z9hG4bKcancelme";
    phone.send(sipRequest({ method: "INVITE", viaPort: phone.port, branch, callId: "cx", cseq: 7 }), port());
    const { st, msg } = await nextRequest();
    st.respond(ok(msg.request, 180));
    await phone.next((m) => statusOf(m.text) === 180);
    const stCancels: IncomingRequest[] = [];
    const stackCancels: ServerTransaction[] = [];
    st.on("cancel", (c) => stCancels.push(c));
    stack.on("cancel", (t) => stackCancels.push(t));
    phone.send(sipRequest({ method: "CANCEL", viaPort: phone.port, branch, callId: "cx", cseq: 7 }), port());
    const r200 = await phone.next((m) => statusOf(m.text) === 200);
    expect(headerOf(r200.text, "cseq")).toBe("7 CANCEL");
    const r487 = await phone.next((m) => statusOf(m.text) === 487);
    expect(headerOf(r487.text, "cseq")).toBe("7 INVITE");
    // the 487 carries the same To tag as the 180
    const tag180 = headerOf(phone.all.find((m) => statusOf(m.text) === 180)?.text ?? "", "to");
    expect(headerOf(r487.text, "to")).toBe(tag180);
    expect(stCancels).toHaveLength(1);
    expect(stackCancels).toEqual([st]);
    expect(requests).toHaveLength(0); // CANCEL is not handed up as a request
    expect(st.respond(ok(msg.request, 200))).toBe(""); // the app answering late changes nothing
    phone.send(sipRequest({ method: "ACK", viaPort: phone.port, branch, callId: "cx", cseq: 7 }), port());
    await settled();
  });

  it("answers 200 (and nothing else) to a CANCEL after the call was answered and ACKed", async () => {
    const branch = "z9hG4bKlatecancel";
    phone.send(
      sipRequest({ method: "INVITE", viaPort: phone.port, branch, callId: "late", fromTag: "lt" }),
      port(),
    );
    const { st, msg } = await nextRequest();
    const wire = st.respond(ok(msg.request));
    const toTag = /tag=([^;\s]+)/.exec(headerOf(wire, "to") ?? "")?.[1];
    const acked = new Promise<void>((resolve) => st.on("ack", () => resolve()));
    phone.send(
      sipRequest({ method: "ACK", viaPort: phone.port, callId: "late", fromTag: "lt", toTag }),
      port(),
    );
    await acked;
    let cancels = 0;
    stack.on("cancel", () => cancels++);
    phone.send(
      sipRequest({ method: "CANCEL", viaPort: phone.port, branch, callId: "late", fromTag: "lt" }),
      port(),
    );
    const r = await phone.next((m) => headerOf(m.text, "cseq") === "1 CANCEL");
    expect(statusOf(r.text)).toBe(200);
    await sleep(20);
    expect(phone.count((m) => statusOf(m.text) === 487)).toBe(0);
    expect(cancels).toBe(0);
  });

  it("answers 481 to a CANCEL that matches nothing", async () => {
    phone.send(sipRequest({ method: "CANCEL", viaPort: phone.port, branch: "z9hG4bKnothing" }), port());
    const r = await phone.next();
    expect(statusOf(r.text)).toBe(481);
    expect(requests).toHaveLength(0);
  });
});

describe("RFC 3581 and §18.2.2 response routing", () => {
  it("adds received and rport and answers to the source port when rport was requested", async () => {
    // Via claims an address and port the phone is not using (as behind NAT)
    phone.send(sipRequest({ method: "OPTIONS", viaPort: 5999, viaHost: "10.9.9.9", rport: true }), port());
    const { st, msg } = await nextRequest();
    const top = msg.request.headers.top("via") ?? "";
    expect(top).toContain("received=127.0.0.1");
    expect(top).toContain(`rport=${phone.port}`);
    st.respond(ok(msg.request));
    const res = await phone.next((m) => statusOf(m.text) === 200);
    expect(headerOf(res.text, "via")).toContain(`rport=${phone.port}`);
  });

  it("without rport answers to the Via sent-by port and adds received only when the host differs", async () => {
    const other = await UdpPeer.open();
    try {
      phone.send(sipRequest({ method: "OPTIONS", viaPort: other.port }), port());
      const { st, msg } = await nextRequest();
      const top = msg.request.headers.top("via") ?? "";
      expect(top).not.toContain("received=");
      expect(top).not.toContain("rport");
      st.respond(ok(msg.request));
      await other.next((m) => statusOf(m.text) === 200);
      expect(phone.count(() => true)).toBe(0);
    } finally {
      await other.close();
    }
  });
});

describe("IPv6", () => {
  it("serves a request over UDP on ::1 and answers it", async () => {
    const v6 = await SipStack.listen({ host: "::1", port: 0, transports: ["udp"], timers: { T1, T2, T4 } });
    const sock = createSocket("udp6");
    try {
      await new Promise<void>((resolve) => sock.bind(0, "::1", () => resolve()));
      const me = sock.address().port;
      const got = new Promise<string>((resolve) => sock.once("message", (m) => resolve(m.toString())));
      v6.on("request", (st, msg) => {
        expect(msg.source).toEqual({ transport: "udp", address: "::1", port: me });
        st.respond(createResponse(msg.request, 200));
      });
      const text = sipRequest({
        method: "OPTIONS",
        viaPort: me,
        viaHost: "[::1]",
        rport: true,
        uri: "sip:x@[::1]",
      });
      sock.send(text, v6.hostports[0]?.port ?? 0, "::1");
      const res = await got;
      expect(statusOf(res)).toBe(200);
      expect(headerOf(res, "via")).toBe(
        `SIP/2.0/UDP [::1]:${me};branch=${/branch=([^;\r]+)/.exec(text)?.[1]};rport=${me};received=::1`,
      );
      expect(v6.advertisedAddress({ transport: "udp", address: "::1", port: 5060 }).address).toBe("::1");
    } finally {
      sock.close();
      await v6.close();
    }
  });
});

describe("dual stack", () => {
  it("bound to ::, serves IPv4 peers with plain IPv4 addresses and answers them", async () => {
    const dual = await SipStack.listen({ host: "::", port: 0, transports: ["udp"], timers: { T1, T2, T4 } });
    try {
      dual.on("request", (st, msg) => {
        expect(msg.source.address).toBe("127.0.0.1");
        st.respond(createResponse(msg.request, 200));
      });
      phone.send(
        sipRequest({ method: "OPTIONS", viaPort: phone.port, rport: true }),
        dual.hostports[0]?.port ?? 0,
      );
      const res = await phone.next((m) => statusOf(m.text) === 200);
      // RFC 3581 §4: with rport, received is added even when it equals the sent-by host
      expect(headerOf(res.text, "via")).toContain(`rport=${phone.port};received=127.0.0.1`);
    } finally {
      await dual.close();
    }
  });
});

describe("STUN keepalive (RFC 5626 over UDP)", () => {
  it("answers a Binding request with the phone's address and port (XOR-MAPPED-ADDRESS)", async () => {
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0);
    req.writeUInt32BE(0x2112a442, 4);
    Buffer.from("0123456789ab").copy(req, 8);
    const got = new Promise<Buffer>((resolve) => phone.socket.once("message", (m) => resolve(m)));
    phone.send(req, port());
    const res = await got;
    expect(res.readUInt16BE(0)).toBe(0x0101);
    expect(res.subarray(8, 20).toString()).toBe("0123456789ab");
    expect(res.readUInt16BE(20)).toBe(0x0020);
    expect(res.readUInt16BE(26) ^ 0x2112).toBe(phone.port);
    expect([28, 29, 30, 31].map((i, k) => (res[i] ?? 0) ^ (req[4 + k] ?? 0))).toEqual([127, 0, 0, 1]);
    expect(requests).toHaveLength(0);
    expect(stack.stats().parseErrors).toBe(0);
  });
});

describe("malformed input", () => {
  it("answers 400 when the request is readable enough, drops garbage, and keeps serving", async () => {
    const errors: string[] = [];
    stack.on("parse-error", (reason) => errors.push(reason));
    phone.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37]), port());
    phone.send("this is not SIP at all\r\n\r\n", port());
    // valid headers but a Content-Length larger than the datagram
    const bad = sipRequest({ method: "OPTIONS", viaPort: phone.port, body: "v=0\r\n" }).replace(
      "Content-Length: 5",
      "Content-Length: 500",
    );
    phone.send(bad, port());
    const r400 = await phone.next((m) => statusOf(m.text) === 400);
    expect(headerOf(r400.text, "to")).toContain("tag=");
    await until(() => errors.length >= 2, "parse-error events");
    expect(requests).toHaveLength(0);
    phone.send(sipRequest({ method: "OPTIONS", viaPort: phone.port }), port());
    const { st, msg } = await nextRequest();
    st.respond(ok(msg.request));
    await phone.next((m) => statusOf(m.text) === 200);
    expect(stack.stats().parseErrors).toBeGreaterThanOrEqual(3);
  });

  it("answers a broken top Via with 400 straight to the source, and a SIP/3.0 request with 505", async () => {
    const good = sipRequest({ method: "OPTIONS", viaPort: 5999 });
    phone.send(good.replace(/Via: [^\r]*/, "Via: SIP/2.0/UDP ;;;"), port());
    const r400 = await phone.next((m) => statusOf(m.text) === 400);
    expect(headerOf(r400.text, "cseq")).toBe("1 OPTIONS");
    phone.send(
      sipRequest({ method: "OPTIONS", viaPort: phone.port }).replace(
        "sip:bob@127.0.0.1 SIP/2.0",
        "sip:bob@127.0.0.1 SIP/3.0",
      ),
      port(),
    );
    await phone.next((m) => statusOf(m.text) === 505);
    expect(requests).toHaveLength(0);
  });

  it("survives a listener that throws, and reports it as internal-error", async () => {
    const reported: unknown[] = [];
    stack.on("internal-error", (err) => reported.push(err));
    stack.on("request", () => {
      throw new Error("app bug");
    });
    phone.send(sipRequest({ method: "OPTIONS", viaPort: phone.port }), port());
    const { st, msg } = await nextRequest();
    st.respond(ok(msg.request));
    await phone.next((m) => statusOf(m.text) === 200);
    expect(stack.stats().internalErrors).toBe(1);
    expect(String(reported[0])).toContain("app bug");
  });

  it("drops datagrams over maxMessageSize", async () => {
    const small = await SipStack.listen({
      host: "127.0.0.1",
      port: 0,
      transports: ["udp"],
      maxMessageSize: 600,
    });
    try {
      const p = small.hostports[0]?.port ?? 0;
      let got = 0;
      small.on("request", (st, msg) => {
        got++;
        st.respond(createResponse(msg.request, 200));
      });
      phone.send(sipRequest({ method: "MESSAGE", viaPort: phone.port, body: "x".repeat(1000) }), p);
      phone.send(sipRequest({ method: "MESSAGE", viaPort: phone.port, body: "hello" }), p);
      await phone.next((m) => statusOf(m.text) === 200);
      expect(got).toBe(1);
      expect(small.stats().dropped).toBe(1);
    } finally {
      await small.close();
    }
  });
});
