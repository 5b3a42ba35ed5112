// The stack against a real SIP implementation (sipp), with sipp dropping 10% of the packets on UDP: every call must
// still complete through the stack's retransmissions (2xx until ACK, INVITE/BYE timers, absorbed duplicates),
// and afterwards the stack must hold no transaction.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describe as explain, runSipp, startSipp, waitForListening } from "../../../test/sipp.ts";
import { createResponse, SipHeaders, type SipRequest, type SipResponse } from "../sip/message.ts";
import { type ClientTransaction, type Peer, SipStack } from "./index.ts";

const T1 = 50;
let stack: SipStack;

beforeEach(async () => {
  stack = await SipStack.listen({ host: "127.0.0.1", port: 0, timers: { T1, T2: 400, T4: 500 } });
});

afterEach(async () => {
  await stack.close();
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function drained(): Promise<void> {
  for (let i = 0; i < 400; i++) {
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
  for (const transport of ["udp", "tcp"] as const) {
    it(`completes every call over ${transport.toUpperCase()}${transport === "udp" ? " with 10% loss" : ""}`, async () => {
      const seen = answerCalls();
      const calls = 20;
      const result = await runSipp({
        scenario: "uac-invite.xml",
        remote: `127.0.0.1:${stack.hostports[0]?.port}`,
        transport,
        calls,
        rate: 40,
        timeoutSeconds: 40,
        ...(transport === "udp" ? { lostPercent: 10 } : {}),
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
  it("places calls with 5% loss: INVITE retransmitted, every 2xx re-ACKed, BYE delivered", async () => {
    const calls = 8;
    const sipp = await startSipp({ scenario: "uas-answer.xml", calls, timeoutSeconds: 40, lostPercent: 5 });
    try {
      await waitForListening(sipp.port, "udp");
      const far: Peer = { transport: "udp", address: "127.0.0.1", port: sipp.port };
      const results = await Promise.all(Array.from({ length: calls }, (_, i) => placeCall(far, i)));
      // sipp ends a call once it sent its 200 to the BYE and ignores BYE retransmissions after that, so when that
      // 200 is lost our BYE can only time out; sipp's own count shows the BYE did arrive.
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
  // sipp's scenario aborts the call on a BYE before the ACK: when our ACK was lost, give sipp's 200
  // retransmissions (0.5 s, 1.5 s) the chance to collect a re-sent ACK first.
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
