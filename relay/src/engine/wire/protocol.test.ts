// The frames the engine sends, checked at the token positions drachtio-srf's agent reads them
// (lib/drachtio-agent.js _onMsg): the leader is split on '|' up to the first CR.
import { describe, expect, it } from "vitest";
import { parseAppMessage, sentLeader, sipLeader, type WireMeta, wireTime } from "./protocol.ts";

const meta: WireMeta = {
  source: "network",
  bytes: 321,
  protocol: "udp",
  address: "10.0.0.9",
  port: 5062,
  time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
};

function tokens(leader: string): string[] {
  return leader.slice(0, leader.indexOf("\r")).split("|");
}

describe("wire protocol frames", () => {
  it("formats time like drachtio-server (HH:MM:SS.micros, UTC)", () => {
    expect(wireTime(meta.time)).toBe("03:04:05.678000");
    expect(wireTime(Date.UTC(2026, 0, 2, 23, 59, 59, 5))).toBe("23:59:59.005000");
  });

  it("new request: srf reads source, protocol, address, port, time, txn, dialog and receivedOn", () => {
    const t = tokens(sipLeader(meta, "txn-1", "", "127.0.0.1|5060"));
    expect(t[1]).toBe("sip");
    expect(t.slice(2, 10)).toEqual([
      "network",
      "321",
      "udp",
      "10.0.0.9",
      "5062",
      "03:04:05.678000",
      "txn-1",
      "",
    ]);
    expect(`${t[10]}:${t[11]}`).toBe("127.0.0.1:5060");
  });

  it("reply to an app response: OK, meta, txn id at 10, dialog id at 11, no 'continue' at 12", () => {
    const t = tokens(sentLeader("m-7", { ...meta, source: "application" }, "txn-2", "call;from-tag=x"));
    expect(t.slice(1, 5)).toEqual(["response", "m-7", "OK", "application"]);
    expect(t[10]).toBe("txn-2");
    expect(t[11]).toBe("call;from-tag=x");
    expect(t[12]).not.toBe("continue");
  });

  it("reply to an app request: token 7 after OK is the transaction id", () => {
    const t = tokens(sentLeader("m-8", meta, "txn-3"));
    expect(t.slice(3)[7]).toBe("txn-3");
  });

  it("splits app frames into id, type, args and raw SIP", () => {
    const m = parseAppMessage(Buffer.from("id1|sip|t1|d1|sip:proxy\r\nBYE sip:placeholder SIP/2.0\r\n\r\n"));
    expect(m?.msgId).toBe("id1");
    expect(m?.type).toBe("sip");
    expect(m?.args).toEqual(["t1", "d1", "sip:proxy"]);
    expect(m?.sip?.toString()).toBe("BYE sip:placeholder SIP/2.0\r\n\r\n");
    expect(parseAppMessage(Buffer.from("nobar"))).toBeUndefined();
  });
});
