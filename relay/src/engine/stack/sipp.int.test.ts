// The stack against a real SIP implementation (sipp), with sipp dropping 5% of the packets on UDP: every call must
// still complete through the stack's retransmissions (2xx until ACK, INVITE/BYE timers, absorbed duplicates),
// and afterwards the stack must hold no transaction.
//
// How likely a call fails through loss alone (p = 5%, each message sipp sends or receives, retransmissions too):
// - stack as UAS: sipp sends its INVITE 6 times (its limit of 5 retransmissions), all lost: p^6 = 1.6e-8; its BYE
//   10 times, each failing if the BYE or the 200 is lost: (2p-p^2)^10 = 7.8e-11; the stack repeats its 2xx 11
//   times within 64*T1. 40 calls: 6.3e-7 per run. A call whose ACK is lost (about p, sipp hangs up at once and
//   does not re-ACK) ends in ack-timeout; more than 30% of 40 calls doing so (Binomial(40, 0.05) > 12) is 4e-8.
// - stack as UAC: sipp's callee 180 and its 200 (sent at 0, 0.5, 1.5, 3.5, 7.5 s) must not all be lost before our
//   timer B (64*T1); with T1 = 150 ms that is 9.6 s, so p^6 = 1.6e-8 per call (with T1 = 50 ms, only 3.2 s:
//   p^4 = 6e-6). Our INVITE goes out 7 times: p^7. 8 calls: 1.3e-7 per run.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describe as explain, runSipp, startSipp, waitForListening } from "../../../test/sipp.ts";
import { createResponse, SipHeaders, type SipRequest, type SipResponse } from "../sip/message.ts";
import { type ClientTransaction, type Peer, SipStack } from "./index.ts";

const LOSS_PERCENT = 5;
let stack: SipStack;
let T1 = 0;

/** A fresh stack per test with short timers (T1 in ms), so its Completed/Accepted tails drain within the test. */
function withStack(t1: number): void {
  beforeEach(async () => {
    T1 = t1;
    stack = await SipStack.listen({ host: "127.0.0.1", port: 0, timers: { T1, T2: 8 * T1, T4: 500 } });
  });
  afterEach(async () => {
    await stack.close();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the stack holds nothing; its longest tail is 64*T1 (timers B, F, H, J, L, M). */
async function drained(): Promise<void> {
  const deadline = Date.now() + 64 * T1 + 5000;
  while (Date.now() < deadline) {
    const s = stack.stats();
    if (s.serverTransactions + s.clientTransactions + s.accepted + s.timers === 0) return;
    await sleep(20);
  }
  throw new Error(`transactions left over: ${JSON.stringify(stack.stats())}`);
}

/** A minimal UAS on the stack: 180 + 200 to INVITE, 200 to BYE. Counts how each 2xx ended. */
function answerCalls(): { acked: number; ackTimeouts: number } {
  const seen = { acked: 0, ackTimeouts: 0 };
  const port = stack.hostports[0]?.port ?? 0;
  stack.on("request", (st, msg) => {
    const req = msg.request;
    if (req.method === "INVITE") {
      st.on("ack", () => seen.acked++);
      st.on("ack-timeout", () => seen.ackTimeouts++);
      st.respond(createResponse(req, 180));
      const ok = createResponse(req, 200);
      ok.headers.append("Contact", `<sip:uas@127.0.0.1:${port};transport=${msg.source.transport}>`);
      st.respond(ok);
    } else st.respond(createResponse(req, req.method === "BYE" ? 200 : 405));
  });
  return seen;
}

describe("stack as UAS, sipp as UAC", () => {
  withStack(50);
  for (const transport of ["udp", "tcp"] as const) {
    it(`completes every call over ${transport.toUpperCase()}${transport === "udp" ? " with 5% loss" : ""}`, async () => {
      const seen = answerCalls();
      const calls = 40;
      const result = await runSipp({
        scenario: "uac-invite.xml",
        remote: `127.0.0.1:${stack.hostports[0]?.port}`,
        transport,
        calls,
        rate: 40,
        timeoutSeconds: 40,
        ...(transport === "udp" ? { lostPercent: LOSS_PERCENT } : {}),
      });
      expect(result.exitCode, explain(result)).toBe(0);
      expect(result.stats.successful).toBe(calls);
      await drained();
      // sipp does not re-ACK a retransmitted 2xx once it has moved on, so a lost ACK ends in ack-timeout
      expect(seen.acked + seen.ackTimeouts).toBe(calls);
      expect(seen.acked).toBeGreaterThanOrEqual(calls * 0.7);
    });
  }
});

describe("stack as UAC, sipp as UAS", () => {
  withStack(150);
  it("places calls with 5% loss: INVITE retransmitted, every 2xx ACKed, BYE delivered", async () => {
    const calls = 8;
    // The linger callee tolerates what loss does to a call: a BYE before the (lost) ACK, an ACK after the BYE.
    const sipp = await startSipp({
      scenario: "uas-answer-linger.xml",
      calls,
      timeoutSeconds: 40,
      lostPercent: LOSS_PERCENT,
    });
    try {
      await waitForListening(sipp.port, "udp");
      const far: Peer = { transport: "udp", address: "127.0.0.1", port: sipp.port };
      const results = await Promise.all(Array.from({ length: calls }, (_, i) => placeCall(far, i)));
      // sipp answers BYE retransmissions for 4 s after the BYE and ignores them after that, so when every 200 in
      // that window is lost our BYE can only time out; sipp's own count shows the BYE did arrive.
      expect(results.filter((r) => r !== 200 && r !== "timeout")).toEqual([]);
      const result = await sipp.done;
      expect(result.exitCode, explain(result)).toBe(0);
      expect(result.stats.successful).toBe(calls);
    } finally {
      sipp.kill();
    }
    await drained();
  });
});

/** INVITE → 2xx → ACK (re-sent for each 2xx retransmission) → BYE; resolves with the BYE's final status. */
async function placeCall(far: Peer, i: number): Promise<number | "timeout"> {
  await sleep(i * 30);
  const callId = `stack-uac-${i}-${Date.now()}`;
  const from = `<sip:stack@127.0.0.1>;tag=uac${i}`;
  const target = `sip:service@127.0.0.1:${far.port}`;
  const invite = request("INVITE", target, callId, from, `<${target}>`, 1);
  invite.headers.append("Contact", `<sip:stack@127.0.0.1:${stack.hostports[0]?.port}>`);
  const ok = await new Promise<SipResponse>((resolve, reject) => {
    const ct = stack.sendRequest(invite, far);
    let ack: SipRequest | undefined;
    ct.on("response", (res) => {
      if (res.status < 200) return;
      if (res.status >= 300) return reject(new Error(`INVITE got ${res.status}`));
      ack ??= request("ACK", contactUri(res, target), callId, from, res.headers.get("to") ?? "", 1);
      stack.sendAck(ack, far); // same object each time: same ACK on the wire
      resolve(res);
    });
    failOn(ct, reject);
  });
  // Stay in the call past sipp's 200 retransmissions at 0.5 and 1.5 s, so a lost ACK is usually recovered by
  // re-ACKing a retransmitted 2xx (the path under test) rather than ended by the BYE.
  await sleep(1700);
  const bye = request("BYE", contactUri(ok, target), callId, from, ok.headers.get("to") ?? "", 2);
  return new Promise<number | "timeout">((resolve, reject) => {
    const ct = stack.sendRequest(bye, far);
    ct.on("response", (res) => {
      if (res.status >= 200) resolve(res.status);
    });
    ct.on("timeout", () => resolve("timeout"));
    ct.on("transport-error", reject);
  });
}

function failOn(ct: ClientTransaction, reject: (err: Error) => void): void {
  ct.on("timeout", () => reject(new Error(`${ct.method} timed out`)));
  ct.on("transport-error", reject);
}

function contactUri(res: SipResponse, fallback: string): string {
  const contact = res.headers.get("contact");
  const m = contact ? /<([^>]+)>/.exec(contact) : null;
  return m?.[1] ?? fallback;
}

function request(
  method: string,
  uri: string,
  callId: string,
  from: string,
  to: string,
  cseq: number,
): SipRequest {
  const headers = new SipHeaders([
    ["Max-Forwards", "70"],
    ["From", from],
    ["To", to],
    ["Call-ID", callId],
    ["CSeq", `${cseq} ${method}`],
  ]);
  return { kind: "request", method, uri, version: "SIP/2.0", headers, body: Buffer.alloc(0) };
}
