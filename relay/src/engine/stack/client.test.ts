// Client side of the stack over real UDP sockets: our Via (rport, branch, advertised address), ACK for non-2xx,
// 2xx passed up with retransmissions, timers A/B and E/F, CANCEL (held until a provisional), stateless 2xx ACK.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SipHeaders, type SipRequest } from "../sip/message.ts";
import { type ClientTransaction, SipStack } from "./index.ts";
import { headerOf, type Received, sipResponse, UdpPeer, until } from "./test-peer.ts";

const T1 = 20;
const T2 = 80;
const T4 = 100;

let stack: SipStack;
let phone: UdpPeer;

beforeEach(async () => {
  stack = await SipStack.listen({ host: "127.0.0.1", port: 0, timers: { T1, T2, T4 } });
  phone = await UdpPeer.open();
});

afterEach(async () => {
  await stack.close();
  await phone.close();
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let n = 0;
function request(method: string, extra: [string, string][] = []): SipRequest {
  n++;
  const h = new SipHeaders([
    ["Max-Forwards", "70"],
    ["From", "<sip:engine@127.0.0.1>;tag=ours1"],
    ["To", "<sip:phone@127.0.0.1>"],
    ["Call-ID", `client-${n}`],
    ["CSeq", `1 ${method}`],
    ...extra,
  ]);
  return {
    kind: "request",
    method,
    uri: `sip:phone@127.0.0.1:${phone.port}`,
    version: "SIP/2.0",
    headers: h,
    body: Buffer.alloc(0),
  };
}

function dest() {
  return { transport: "udp" as const, address: "127.0.0.1", port: phone.port };
}

function collect(ct: ClientTransaction): number[] {
  const statuses: number[] = [];
  ct.on("response", (res) => statuses.push(res.status));
  return statuses;
}

function isMethod(method: string) {
  return (m: Received) => m.text.startsWith(`${method} `);
}

async function settled(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const s = stack.stats();
    if (s.clientTransactions === 0 && s.serverTransactions === 0 && s.timers === 0) return;
    await sleep(10);
  }
  throw new Error(`transactions left over: ${JSON.stringify(stack.stats())}`);
}

describe("client transactions", () => {
  it("adds our Via with rport and a z9hG4bK branch and returns the exact wire text", async () => {
    const ct = stack.sendRequest(request("OPTIONS"), dest());
    const got = await phone.next(isMethod("OPTIONS"));
    expect(got.text).toBe(ct.wire);
    const via = headerOf(got.text, "via") ?? "";
    const port = stack.hostports[0]?.port;
    expect(via).toMatch(new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${port};rport;branch=z9hG4bK`));
    expect(via).toContain(ct.branch);
    const statuses = collect(ct);
    phone.send(sipResponse(got.text, 200, "OK", "t9"), got.port);
    await until(() => statuses.length === 1, "the response");
    expect(statuses).toEqual([200]);
    await settled(); // timer K
  });

  it("sends the ACK for a non-2xx final itself (same branch, To tag of the response) and absorbs repeats", async () => {
    const ct = stack.sendRequest(request("INVITE"), dest());
    const statuses = collect(ct);
    const invite = await phone.next(isMethod("INVITE"));
    phone.send(sipResponse(invite.text, 180, "Ringing", "callee7"), invite.port);
    const busy = sipResponse(invite.text, 486, "Busy Here", "callee7");
    phone.send(busy, invite.port);
    const ack = await phone.next(isMethod("ACK"));
    expect(ack.text.startsWith(`ACK sip:phone@127.0.0.1:${phone.port} SIP/2.0`)).toBe(true);
    expect(headerOf(ack.text, "via")).toBe(headerOf(invite.text, "via"));
    expect(headerOf(ack.text, "to")).toContain("tag=callee7");
    expect(headerOf(ack.text, "cseq")).toBe("1 ACK");
    phone.send(busy, invite.port); // retransmitted 486: ACKed again, not passed up
    await phone.next(isMethod("ACK"));
    await sleep(20); // the retransmitted 486 must not show up as a third response
    expect(statuses).toEqual([180, 486]);
    await settled(); // timer D
  });

  it("passes 2xx and its retransmissions up (RFC 6026) without ACKing them", async () => {
    const ct = stack.sendRequest(request("INVITE"), dest());
    const statuses = collect(ct);
    const invite = await phone.next(isMethod("INVITE"));
    const ok = sipResponse(invite.text, 200, "OK", "callee8");
    phone.send(ok, invite.port);
    phone.send(ok, invite.port);
    await until(() => statuses.length === 2, "both 2xx");
    expect(statuses).toEqual([200, 200]);
    expect(phone.count(isMethod("ACK"))).toBe(0);
    expect(phone.count(isMethod("INVITE"))).toBe(1);
  });

  it("retransmits an unanswered INVITE with timer A doubling and times out with timer B", async () => {
    const ct = stack.sendRequest(request("INVITE"), dest());
    const started = Date.now();
    const elapsed = await new Promise<number>((resolve) =>
      ct.on("timeout", () => resolve(Date.now() - started)),
    );
    expect(elapsed).toBeGreaterThanOrEqual(64 * T1 - 5);
    expect(elapsed).toBeLessThan(64 * T1 + 1500);
    // sent at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1 → 7 copies (fewer if the event loop stalls)
    const copies = phone.count(isMethod("INVITE"));
    expect(copies).toBeGreaterThanOrEqual(4);
    expect(copies).toBeLessThanOrEqual(7);
    await settled();
  });

  it("retransmits an unanswered OPTIONS capped at T2 and times out with timer F", async () => {
    const ct = stack.sendRequest(request("OPTIONS"), dest());
    let timeouts = 0;
    ct.on("timeout", () => timeouts++);
    await new Promise<void>((resolve) => ct.on("terminated", () => resolve()));
    expect(timeouts).toBe(1);
    // 0, 20, 60, 140, then every 80 ms until 1280 → about 17 copies (more than timer A's 7: the cap works)
    const copies = phone.count(isMethod("OPTIONS"));
    expect(copies).toBeGreaterThanOrEqual(9);
    expect(copies).toBeLessThanOrEqual(18);
    await settled();
  });

  it("after a provisional, a non-INVITE is retransmitted every T2", async () => {
    const ct = stack.sendRequest(request("MESSAGE"), dest());
    const first = await phone.next(isMethod("MESSAGE"));
    phone.send(sipResponse(first.text, 100, "Trying"), first.port);
    const since = performance.now() + T1 + 5; // a timer E already armed before the 100 may still fire at T1
    await until(
      () => phone.all.filter((m) => isMethod("MESSAGE")(m) && m.at > since).length >= 3,
      "3 copies",
    );
    const times = phone.all.filter((m) => isMethod("MESSAGE")(m) && m.at > since).map((m) => m.at);
    // In Proceeding, timer E fires every T2 (while Trying it would still be doubling from T1: 20, 40, 80)
    for (let i = 1; i < times.length; i++)
      expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(T2 - 5);
    phone.send(sipResponse(first.text, 202, "Accepted"), first.port);
    await new Promise<void>((resolve) => ct.on("terminated", () => resolve()));
  });

  it("CANCEL waits for a provisional, then goes out with the INVITE's branch; the 487 is ACKed", async () => {
    const ct = stack.sendRequest(request("INVITE"), dest());
    const statuses = collect(ct);
    const invite = await phone.next(isMethod("INVITE"));
    const cancelTx = ct.cancel([["Reason", 'SIP;cause=487;text="canceled"']]);
    expect(cancelTx).toBeDefined();
    await sleep(T1 / 2);
    expect(phone.count(isMethod("CANCEL"))).toBe(0); // §9.1: not before a provisional
    phone.send(sipResponse(invite.text, 180, "Ringing", "c9"), invite.port);
    const cancel = await phone.next(isMethod("CANCEL"));
    expect(headerOf(cancel.text, "via")).toBe(headerOf(invite.text, "via"));
    expect(headerOf(cancel.text, "cseq")).toBe("1 CANCEL");
    expect(headerOf(cancel.text, "reason")).toContain("cause=487");
    const cancelStatuses: number[] = [];
    cancelTx?.on("response", (res) => cancelStatuses.push(res.status));
    phone.send(sipResponse(cancel.text, 200, "OK", "c9"), cancel.port);
    phone.send(sipResponse(invite.text, 487, "Request Terminated", "c9"), invite.port);
    await phone.next(isMethod("ACK"));
    await until(() => cancelStatuses.length === 1, "the CANCEL's 200");
    expect(cancelStatuses).toEqual([200]);
    expect(statuses).toEqual([180, 487]);
    expect(ct.cancel()).toBeUndefined(); // already final
    await settled();
  });

  it("sending the same request object again makes a new transaction with a fresh branch, not a second Via", async () => {
    const req = request("MESSAGE");
    const a = stack.sendRequest(req, dest());
    req.headers.set("CSeq", "2 MESSAGE");
    const b = stack.sendRequest(req, dest());
    expect(b.branch).not.toBe(a.branch);
    expect(req.headers.getAll("via")).toHaveLength(1);
    const first = await phone.next(isMethod("MESSAGE"));
    const second = await phone.next((m) => isMethod("MESSAGE")(m) && m.text.includes(b.branch));
    const got: string[] = [];
    a.on("response", (r) => got.push(`a${r.status}`));
    b.on("response", (r) => got.push(`b${r.status}`));
    phone.send(sipResponse(second.text, 200, "OK", "m1"), second.port);
    phone.send(sipResponse(first.text, 401, "Unauthorized", "m1"), first.port);
    await until(() => got.length === 2, "both responses");
    expect(got).toEqual(["b200", "a401"]);
  });

  it("sendAck is stateless and re-sending the same ACK object keeps its Via", async () => {
    const ack = request("ACK");
    ack.headers.set("CSeq", "1 ACK");
    const w1 = stack.sendAck(ack, dest());
    const w2 = stack.sendAck(ack, dest());
    expect(w2).toBe(w1);
    expect(ack.headers.getAll("via")).toHaveLength(1);
    await phone.next(isMethod("ACK"));
    await phone.next(isMethod("ACK"));
    expect(stack.stats().clientTransactions).toBe(0);
  });

  it("a destination that cannot exist is a transport-error, not an exception", async () => {
    for (const bad of [
      { transport: "udp" as const, address: "127.0.0.1", port: 0 },
      { transport: "udp" as const, address: "not-an-ip", port: 5060 },
      { transport: "tcp" as const, address: "127.0.0.1", port: 70000 },
    ]) {
      const ct = stack.sendRequest(request("OPTIONS"), bad);
      const err = await new Promise<Error>((resolve) => ct.on("transport-error", resolve));
      expect(err.message).toMatch(/invalid destination/);
    }
    await settled();
  });

  it("surfaces a TCP connect failure as transport-error", async () => {
    const ct = stack.sendRequest(request("OPTIONS"), { transport: "tcp", address: "127.0.0.1", port: 1 });
    const err = await new Promise<Error>((resolve) => ct.on("transport-error", resolve));
    expect(err.message).toMatch(/ECONNREFUSED|closed/);
    await settled();
  });

  it("matches responses by branch and method: an unknown branch is a stray response", async () => {
    const strays: number[] = [];
    stack.on("stray-response", (res) => strays.push(res.status));
    const ct = stack.sendRequest(request("OPTIONS"), dest());
    const statuses = collect(ct);
    const got = await phone.next(isMethod("OPTIONS"));
    phone.send(sipResponse(got.text.replace(ct.branch, "z9hG4bKsomeoneelse"), 200, "OK"), got.port);
    await until(() => strays.length === 1, "the stray response");
    expect(strays).toEqual([200]);
    expect(statuses).toEqual([]);
  });
});

describe("shutdown", () => {
  it("after close() sends never throw: requests fail with transport-error, responses and ACKs are dropped", async () => {
    const s = await SipStack.listen({ host: "127.0.0.1", port: 0, transports: ["udp"], timers: { T1 } });
    const pending = s.sendRequest(request("INVITE"), dest());
    await phone.next(isMethod("INVITE"));
    await s.close();
    const ct = s.sendRequest(request("OPTIONS"), dest());
    const err = await new Promise<Error>((resolve) => ct.on("transport-error", resolve));
    expect(err.message).toMatch(/closed/);
    expect(() => s.sendAck(request("ACK"), dest())).not.toThrow();
    let late = 0;
    pending.on("timeout", () => late++);
    await sleep(T1 * 5);
    expect(late).toBe(0); // timers died with the stack
    expect(phone.count(isMethod("INVITE"))).toBe(1);
    expect(phone.count(isMethod("OPTIONS"))).toBe(0);
  });
});

describe("addresses", () => {
  it("advertises externalAddress outside localNetworks and the local address inside", async () => {
    const s = await SipStack.listen({
      host: "127.0.0.1",
      port: 0,
      externalAddress: "203.0.113.7",
      localNetworks: ["192.168.0.0/16", "10.0.0.0/8"],
    });
    try {
      expect(s.advertisedAddress({ transport: "udp", address: "198.51.100.1", port: 5060 }).address).toBe(
        "203.0.113.7",
      );
      expect(s.advertisedAddress({ transport: "udp", address: "192.168.1.20", port: 5060 }).address).toBe(
        "127.0.0.1",
      );
      expect(s.advertisedAddress({ transport: "tcp", address: "10.1.2.3", port: 5060 }).address).toBe(
        "127.0.0.1",
      );
      expect(s.advertisedAddress({ transport: "udp", address: "127.0.0.1", port: 5060 }).address).toBe(
        "127.0.0.1",
      );
    } finally {
      await s.close();
    }
  });

  it("bound to 0.0.0.0, advertises 127.0.0.1 to a loopback peer", async () => {
    const s = await SipStack.listen({ host: "0.0.0.0", port: 0, transports: ["udp"] });
    try {
      const ct = s.sendRequest(request("OPTIONS"), dest());
      expect(headerOf(ct.wire, "via")).toMatch(/^SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;rport;branch=/);
      await phone.next(isMethod("OPTIONS"));
    } finally {
      await s.close();
    }
  });

  it("resolves numeric URIs and localhost, and refuses names", () => {
    expect(stack.resolve("sip:alice@127.0.0.1:5080;transport=tcp")).toEqual({
      transport: "tcp",
      address: "127.0.0.1",
      port: 5080,
    });
    expect(stack.resolve("sip:localhost")).toEqual({ transport: "udp", address: "127.0.0.1", port: 5060 });
    expect(stack.resolve("sip:[::1]:5062")).toEqual({ transport: "udp", address: "::1", port: 5062 });
    expect(() => stack.resolve("sip:pbx.example.com")).toThrow(/numeric/);
  });
});
