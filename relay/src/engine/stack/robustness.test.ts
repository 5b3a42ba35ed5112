// Hostile input at the stack's sockets: the parser's deterministic mutation corpus over UDP and over TCP (split at
// random points), plus abrupt disconnects. Nothing may throw inside the stack (internalErrors stays 0), every
// transaction the garbage created must end, and a normal request must still be answered afterwards.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mutations } from "../sip/fuzz.ts";
import { createResponse } from "../sip/message.ts";
import { SipStack } from "./index.ts";
import { sipRequest, statusOf, TcpPeer, UdpPeer, until } from "./test-peer.ts";

const T1 = 10;
let stack: SipStack;
let handed = 0;

beforeEach(async () => {
  stack = await SipStack.listen({ host: "127.0.0.1", port: 0, timers: { T1, T2: 40, T4: 50 } });
  handed = 0;
  stack.on("request", (st, msg) => {
    handed++;
    // answer like an app would, including odd statuses, so every state machine path gets exercised
    const status = [200, 180, 486, 404, 202][handed % 5] ?? 200;
    st.respond(createResponse(msg.request, status));
    if (status === 180) st.respond(createResponse(msg.request, 200));
  });
});

afterEach(async () => {
  await stack.close();
});

/** Mutants of one base share its branch and would be absorbed as retransmissions: make each a new transaction. */
function freshBranch(data: Buffer, i: number): Buffer {
  return Buffer.from(data.toString("latin1").replaceAll("z9hG4bK", `z9hG4bK${i}x`), "latin1");
}

async function stillServing(): Promise<void> {
  const phone = await UdpPeer.open();
  try {
    phone.send(sipRequest({ method: "OPTIONS", viaPort: phone.port }), stack.hostports[0]?.port ?? 0);
    const res = await phone.next((m) => statusOf(m.text) >= 200);
    expect(statusOf(res.text)).toBeGreaterThanOrEqual(200);
  } finally {
    await phone.close();
  }
}

async function drained(): Promise<void> {
  await until(
    () => {
      const s = stack.stats();
      return s.serverTransactions + s.clientTransactions + s.accepted === 0;
    },
    "every transaction to end",
    10_000,
  );
}

describe("hostile input", () => {
  it("survives 3,000 mutated datagrams", async () => {
    const attacker = await UdpPeer.open();
    try {
      const port = stack.hostports[0]?.port ?? 0;
      let sent = 0;
      for (const m of mutations(3261, 3000)) {
        attacker.send(freshBranch(m.data, sent), port);
        if (++sent % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      // UDP may drop some on a busy machine; what matters is that the stack read and survived most of them
      await until(() => stack.stats().received >= sent * 0.7, "the datagrams to arrive", 10_000);
      await stillServing();
      const s = stack.stats();
      expect(s.internalErrors).toBe(0);
      expect(s.parseErrors).toBeGreaterThan(1000);
      expect(handed).toBeGreaterThan(300); // the valid mutants became transactions
      await drained();
    } finally {
      await attacker.close();
    }
  });

  it("survives mutated messages over TCP, split at random points, and abrupt disconnects", async () => {
    const port = stack.hostports.find((h) => h.transport === "tcp")?.port ?? 0;
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const all = [...mutations(5626, 600)];
    for (let c = 0; c < 30; c++) {
      const peer = await TcpPeer.connect(port);
      for (const m of all.slice(c * 20, c * 20 + 20)) {
        const data = Buffer.concat([freshBranch(m.data, c * 100 + rand(100)), Buffer.from("\r\n\r\n")]);
        const cut = rand(data.length);
        peer.write(data.subarray(0, cut));
        peer.write(data.subarray(cut));
      }
      if (c % 3 === 0) peer.socket.destroy();
      else await new Promise((resolve) => setTimeout(resolve, 5)).then(() => peer.close());
    }
    await until(() => stack.stats().connections === 0, "the connections to close", 5000);
    await stillServing();
    expect(stack.stats().internalErrors).toBe(0);
    await drained();
  });
});
