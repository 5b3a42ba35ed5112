// Validates the sipp scenario files in relay/test/sipp sipp-to-sipp, without the engine: when an engine
// test with the same scenario fails, the fault is the engine's (or the app's), not the scenario's. The callees
// used with packet loss are also driven by a raw UDP peer through the message orders that loss produces.
import { describe, expect, it } from "vitest";
import { describe as explain, runSipp, type SippOptions, startSippServer } from "../../test/sipp.ts";
import { headerOf, type Received, sipRequest, statusOf, UdpPeer } from "./stack/test-peer.ts";

const CREDENTIALS = { username: "alice", password: "secret" };

async function pair(
  uac: string,
  uas: string,
  uacExtra: Partial<SippOptions> = {},
  uasExtra: Partial<SippOptions> = {},
) {
  const calls = 5;
  const transport = uacExtra.transport ?? "udp";
  const server = await startSippServer({ scenario: uas, calls, timeoutSeconds: 15, transport, ...uasExtra });
  try {
    const client = await runSipp({
      scenario: uac,
      remote: `127.0.0.1:${server.port}`,
      calls,
      rate: 50,
      timeoutSeconds: 15,
      ...uacExtra,
    });
    const callee = await server.done;
    return { client, callee, calls };
  } finally {
    server.kill();
  }
}

describe("sipp scenarios, sipp to sipp", () => {
  const cases: [string, string, Partial<SippOptions>, Partial<SippOptions>][] = [
    ["uac-options.xml", "uas-options.xml", {}, {}],
    ["uac-register-auth.xml", "uas-register-challenge.xml", { auth: CREDENTIALS }, {}],
    ["uac-invite.xml", "uas-answer.xml", {}, {}],
    ["uac-invite.xml", "uas-answer.xml", { transport: "tcp" }, {}],
    ["uac-invite-wait-bye.xml", "uas-answer-bye.xml", {}, {}],
    ["uac-invite.xml", "uas-answer-linger.xml", {}, {}],
    ["uac-invite-rejected.xml", "uas-reject.xml", {}, {}],
    ["uac-invite-cancel.xml", "uas-cancel.xml", {}, {}],
    ["uac-reinvite.xml", "uas-reinvite.xml", {}, {}],
    ["uac-info-notify.xml", "uas-info-notify.xml", {}, {}],
  ];
  for (const [uac, uas, uacExtra, uasExtra] of cases) {
    it(`${uac} against ${uas}${uacExtra.transport === "tcp" ? " over TCP" : ""}`, async () => {
      const keys = { user: CREDENTIALS.username, password: CREDENTIALS.password };
      const { client, callee, calls } = await pair(uac, uas, uacExtra, { keys, ...uasExtra });
      expect(client.exitCode, explain(client)).toBe(0);
      expect(client.stats.successful).toBe(calls);
      expect(client.stats.failed).toBe(0);
      expect(callee.stats.successful, explain(callee)).toBe(calls);
    });
  }

  it("the registrar scenario rejects a wrong password (so the REGISTER baseline really checks the digest)", async () => {
    const { client } = await pair(
      "uac-register-auth.xml",
      "uas-register-challenge.xml",
      { auth: { username: "alice", password: "wrong" } },
      { keys: { user: "alice", password: "secret" } },
    );
    expect(client.exitCode).not.toBe(0);
    expect(client.stats.successful).toBe(0);
    expect(client.errors).toContain("403 Forbidden");
  });
});

/**
 * A caller on a raw UDP socket against a sipp callee: it can "lose" what sipp sends by ignoring it and send the
 * retransmissions and late messages that loss causes, at exact moments.
 */
async function rawCall(scenario: string) {
  const callee = await startSippServer({ scenario, calls: 1, timeoutSeconds: 15 });
  const peer = await UdpPeer.open();
  const callId = `loss-${scenario}-${Date.now()}`;
  const base = { viaPort: peer.port, callId, uri: `sip:callee@127.0.0.1:${callee.port}` };
  const sdp =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
  const invite = sipRequest({
    ...base,
    method: "INVITE",
    branch: "z9hG4bKlossinvite",
    body: sdp,
    extra: [`Contact: <sip:caller@127.0.0.1:${peer.port}>`, "Content-Type: application/sdp"],
  });
  const response = (status: number, method: string) => (m: Received) =>
    statusOf(m.text) === status && (headerOf(m.text, "CSeq") ?? "").endsWith(method);
  const inDialog = (method: string, toTag: string, cseq: number) =>
    sipRequest({ ...base, method, cseq, toTag, branch: `z9hG4bKloss${method}${cseq}` });
  const close = async () => {
    callee.kill();
    await peer.close();
  };
  return { callee, peer, invite, response, inDialog, close };
}

/** sipp answers within milliseconds and retransmits after 0.5 s; a generous deadline costs nothing. */
const ANSWER_MS = 10_000;

function toTagOf(m: Received): string {
  return /;tag=([^;\s]+)/.exec(headerOf(m.text, "To") ?? "")?.[1] ?? "";
}

describe("sipp callees for calls with packet loss", () => {
  for (const scenario of ["uas-answer.xml", "uas-answer-linger.xml"]) {
    it(`${scenario} survives an INVITE retransmitted after its 200 (its 180 and 200 both lost)`, async () => {
      const call = await rawCall(scenario);
      try {
        call.peer.send(call.invite, call.callee.port);
        await call.peer.next(call.response(180, "INVITE"), ANSWER_MS); // "lost"
        await call.peer.next(call.response(200, "INVITE"), ANSWER_MS); // "lost"
        call.peer.send(call.invite, call.callee.port); // our timer A fires before sipp's 200 retransmission
        const ok = await call.peer.next(call.response(200, "INVITE"), ANSWER_MS); // sipp's retransmission, 0.5 s after the 200
        const toTag = toTagOf(ok);
        call.peer.send(call.inDialog("ACK", toTag, 1), call.callee.port);
        call.peer.send(call.inDialog("BYE", toTag, 2), call.callee.port);
        await call.peer.next(call.response(200, "BYE"), ANSWER_MS);
        const r = await call.callee.done;
        expect(r.stats.successful, explain(r)).toBe(1);
      } finally {
        await call.close();
      }
    });
  }

  it("uas-answer-linger.xml survives an ACK that arrives after the BYE and still answers the BYE's retransmission", async () => {
    const call = await rawCall("uas-answer-linger.xml");
    try {
      call.peer.send(call.invite, call.callee.port);
      const ok = await call.peer.next(call.response(200, "INVITE"), ANSWER_MS);
      const toTag = toTagOf(ok);
      // The ACK was lost; the BYE goes out and crosses a 200 retransmission, whose re-ACK arrives after the BYE.
      const bye = call.inDialog("BYE", toTag, 2);
      call.peer.send(bye, call.callee.port);
      await call.peer.next(call.response(200, "BYE"), ANSWER_MS);
      call.peer.send(call.inDialog("ACK", toTag, 1), call.callee.port);
      call.peer.send(bye, call.callee.port); // the BYE's 200 was lost too
      const again = await call.peer.next(call.response(200, "BYE"), ANSWER_MS);
      expect(headerOf(again.text, "Via")).toContain("z9hG4bKlossBYE2"); // the BYE's transaction, not the ACK's
      const r = await call.callee.done;
      expect(r.stats.successful, explain(r)).toBe(1);
    } finally {
      await call.close();
    }
  });
});
