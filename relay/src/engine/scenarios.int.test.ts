// Acceptance scenarios of the SIP engine: an unmodified drachtio-srf application (relay/test/apps/test-app.ts)
// connected to the engine started in-process, real sipp as the peer on loopback. One test per bullet of the
// issue. The same scenario files pass sipp-to-sipp (sipp-scenarios.int.test.ts), so a failure here is the engine's.
import type Srf from "drachtio-srf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANSWER_SDP, installTestApp, type TestApp } from "../../test/apps/test-app.ts";
import {
  cleanup,
  describe as explain,
  runSipp,
  type SippOptions,
  type SippResult,
  startSippServer,
  startTestEngine,
  type TestEngine,
} from "../../test/harness.ts";

let engine: TestEngine;
let srf: Srf;
let app: TestApp;
let b2buaTarget = "";

beforeAll(async () => {
  engine = await startTestEngine();
  srf = await engine.connectApp((s) => {
    app = installTestApp(s, { b2buaTarget: () => b2buaTarget });
  });
});

afterAll(async () => {
  try {
    await engine?.close();
  } finally {
    cleanup();
  }
});

/** Runs a sipp UAC against the engine. */
function callEngine(opts: Omit<SippOptions, "remote">): Promise<SippResult> {
  return runSipp({ rate: 20, timeoutSeconds: 20, ...opts, remote: engine.sipTarget });
}

function expectAllSucceeded(r: SippResult, calls: number): void {
  expect(r.exitCode, explain(r)).toBe(0);
  expect(r.stats.successful, explain(r)).toBe(calls);
  expect(r.stats.failed).toBe(0);
}

/** Counts how often the app saw an event while `run` ran. */
async function during<T>(
  run: () => Promise<T>,
): Promise<{ result: T; delta: (e: Parameters<TestApp["count"]>[0]) => number }> {
  const before = new Map<string, number>();
  const events = [
    "options",
    "register-challenged",
    "register-ok",
    "register-rejected",
    "answered",
    "ack",
    "rejected",
    "ringing",
    "cancel",
    "bye-received",
    "reinvite",
    "info",
    "notify",
    "b2bua-connected",
    "b2bua-cancelled",
    "b2bua-rejected",
    "b2bua-a-hangup",
    "b2bua-b-hangup",
    "error",
  ] as const;
  for (const e of events) before.set(e, app.count(e));
  const result = await run();
  return { result, delta: (e) => app.count(e) - (before.get(e) ?? 0) };
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Starts a sipp UAS (callee) on a free port and waits until it listens. */
async function callee(scenario: string, calls: number, extra: Partial<SippOptions> = {}) {
  const transport = extra.transport ?? "udp";
  const uas = await startSippServer({ scenario, calls, timeoutSeconds: 20, transport, ...extra });
  const uri = `sip:callee@127.0.0.1:${uas.port}${transport === "tcp" ? ";transport=tcp" : ""}`;
  return { uas, uri };
}

describe("SIP engine with a drachtio-srf app and sipp", () => {
  it("answers OPTIONS from the app with 200", async () => {
    const { result, delta } = await during(() => callEngine({ scenario: "uac-options.xml", calls: 20 }));
    expectAllSucceeded(result, 20);
    expect(delta("options")).toBe(20);
  });

  it("REGISTER: the app challenges with 401 and accepts the digest answer with 200", async () => {
    const { result, delta } = await during(() =>
      callEngine({
        scenario: "uac-register-auth.xml",
        calls: 20,
        service: "alice",
        auth: { username: "alice", password: "secret" },
      }),
    );
    expectAllSucceeded(result, 20);
    expect(delta("register-challenged")).toBe(20);
    expect(delta("register-ok")).toBe(20);
    expect(app.registrations.get("alice")?.contact).toContain("sip:alice@127.0.0.1");
  });

  it("REGISTER with a wrong password is not accepted", async () => {
    const { result, delta } = await during(() =>
      callEngine({
        scenario: "uac-register-auth.xml",
        calls: 3,
        service: "alice",
        auth: { username: "alice", password: "wrong" },
      }),
    );
    expect(result.stats.successful).toBe(0);
    expect(result.stats.failed).toBe(3);
    expect(delta("register-rejected")).toBe(3);
    expect(delta("register-ok")).toBe(0);
  });

  it("INVITE answered by the app (UAS): 200 with SDP, the app sees the ACK and the caller's BYE", async () => {
    // The caller stays 100 ms before hanging up. With no pause the BYE can reach srf in the same TCP read as the
    // ACK, and srf (dialog.js) emits 'ack' on setImmediate but drops the dialog's listeners at once on the BYE,
    // so the app loses the 'ack' now and then (also on the code before the bridge split; a real call lasts longer).
    const { result, delta } = await during(() =>
      callEngine({ scenario: "uac-invite.xml", calls: 10, service: "answer", pauseMs: 100 }),
    );
    expectAllSucceeded(result, 10);
    expect(delta("answered")).toBe(10);
    expect(delta("ack")).toBe(10);
    expect(delta("bye-received")).toBe(10);
  });

  it("INVITE rejected by the app with 486 (the caller ACKs it)", async () => {
    const { result, delta } = await during(() =>
      callEngine({ scenario: "uac-invite-rejected.xml", calls: 10, service: "busy" }),
    );
    expectAllSucceeded(result, 10);
    expect(delta("rejected")).toBe(10);
    expect(delta("answered")).toBe(0);
  });

  it("the app as UAC (srf.createUAC) calls a sipp UAS, sends INFO and NOTIFY in the dialog and hangs up", async () => {
    const { uas, uri } = await callee("uas-info-notify.xml", 1);
    try {
      const dialog = await srf.createUAC(uri, { localSdp: ANSWER_SDP });
      expect(dialog.remote.sdp).toContain("m=audio");
      const info = await dialog.request({
        method: "INFO",
        headers: { "Content-Type": "application/dtmf-relay" },
        body: "Signal=1\r\nDuration=160\r\n",
      } as unknown as Srf.SrfRequest);
      expect(info.status).toBe(200);
      const notify = await dialog.request({
        method: "NOTIFY",
        headers: { Event: "talk", "Subscription-State": "active" },
      } as unknown as Srf.SrfRequest);
      expect(notify.status).toBe(200);
      await new Promise<void>((resolve, reject) =>
        dialog.destroy(undefined, (err) => (err ? reject(err) : resolve())),
      );
      const r = await uas.done;
      expectAllSucceeded(r, 1); // the callee's scenario requires INVITE, ACK, INFO, NOTIFY, BYE in that order
    } finally {
      uas.kill();
    }
  });

  it("B2BUA (srf.createB2BUA) from sipp to sipp; the caller hangs up and the callee gets the BYE", async () => {
    const calls = 10;
    const { uas, uri } = await callee("uas-answer.xml", calls);
    b2buaTarget = uri;
    try {
      const { result, delta } = await during(() =>
        callEngine({ scenario: "uac-invite.xml", calls, service: "b2bua", pauseMs: 100 }),
      );
      const b = await uas.done;
      expectAllSucceeded(result, calls);
      expectAllSucceeded(b, calls); // the b-leg scenario only succeeds after it received (and answered) BYE
      expect(delta("b2bua-connected")).toBe(calls);
      expect(delta("b2bua-a-hangup")).toBe(calls);
    } finally {
      uas.kill();
    }
  });

  it("B2BUA from sipp to sipp; the callee hangs up and the caller gets the BYE", async () => {
    const calls = 10;
    const { uas, uri } = await callee("uas-answer-bye.xml", calls, { pauseMs: 200 });
    b2buaTarget = uri;
    try {
      const { result, delta } = await during(() =>
        callEngine({ scenario: "uac-invite-wait-bye.xml", calls, service: "b2bua" }),
      );
      const b = await uas.done;
      expectAllSucceeded(result, calls); // succeeds only after the a-leg received BYE and answered it
      expectAllSucceeded(b, calls);
      expect(delta("b2bua-connected")).toBe(calls);
      expect(delta("b2bua-b-hangup")).toBe(calls);
    } finally {
      uas.kill();
    }
  });

  it("CANCEL before answer: the caller gets 200 and 487, the app's request emits 'cancel'", async () => {
    const { result, delta } = await during(() =>
      callEngine({ scenario: "uac-invite-cancel.xml", calls: 10, service: "ring" }),
    );
    expectAllSucceeded(result, 10); // the scenario requires the 487 after the CANCEL
    expect(delta("ringing")).toBe(10);
    // The engine answers the CANCEL itself and tells the app afterwards, so give the app a moment.
    await until(() => delta("cancel") >= 10, 10_000);
    expect(delta("cancel")).toBe(10);
  });

  it("B2BUA: the callee's 486 Busy Here reaches the caller, both ACKs are exchanged", async () => {
    const calls = 10;
    const { uas, uri } = await callee("uas-reject.xml", calls);
    b2buaTarget = uri;
    try {
      const { result, delta } = await during(() =>
        callEngine({ scenario: "uac-invite-rejected.xml", calls, service: "b2bua" }),
      );
      const b = await uas.done;
      expectAllSucceeded(result, calls);
      expectAllSucceeded(b, calls); // the callee's scenario requires the ACK for its 486
      expect(delta("b2bua-rejected")).toBe(calls);
    } finally {
      uas.kill();
    }
  });

  it("CANCEL through the B2BUA: the caller cancels while the callee rings, the callee gets CANCEL and answers 487", async () => {
    const calls = 10;
    const { uas, uri } = await callee("uas-cancel.xml", calls);
    b2buaTarget = uri;
    try {
      const { result, delta } = await during(() =>
        callEngine({ scenario: "uac-invite-cancel.xml", calls, service: "b2bua" }),
      );
      const b = await uas.done;
      expectAllSucceeded(result, calls); // 180 relayed from the callee, then 200 (CANCEL) and 487
      expectAllSucceeded(b, calls); // the callee's scenario requires the CANCEL and the ACK for its 487
      expect(delta("b2bua-connected")).toBe(0);
      expect(delta("b2bua-cancelled")).toBe(calls);
    } finally {
      uas.kill();
    }
  });

  it("re-INVITE in a dialog is answered by the app (dialog 'modify')", async () => {
    const { result, delta } = await during(() =>
      callEngine({ scenario: "uac-reinvite.xml", calls: 10, service: "answer" }),
    );
    expectAllSucceeded(result, 10);
    expect(delta("reinvite")).toBe(10);
    expect(delta("bye-received")).toBe(10);
  });

  it("INFO and NOTIFY in a dialog reach the app and get 200", async () => {
    const { result, delta } = await during(() =>
      callEngine({ scenario: "uac-info-notify.xml", calls: 10, service: "answer" }),
    );
    expectAllSucceeded(result, 10);
    expect(delta("info")).toBe(10);
    expect(delta("notify")).toBe(10);
  });

  // How likely a call fails through loss alone, with sipp dropping each message it sends or receives with
  // probability p (retransmissions included) and RFC 3261 timers on both sides (T1 0.5 s, T2 4 s, 64*T1 = 32 s):
  // - the caller's INVITE: sipp sends it 6 times (0, 0.5, 1.5, 3.5, 7.5, 15.5 s; 5 retransmissions is sipp's limit),
  //   all lost: p^6. Once one arrives, the engine's answers and 2xx retransmissions (11 in 32 s) each get through
  //   with 1-p: negligible;
  // - the engine's b-leg INVITE (B2BUA only): timer A sends it 7 times before timer B (32 s), all lost: p^7;
  // - the caller's BYE: 10 sends in 31.5 s (sipp's non-INVITE limit), each failing if the BYE or its 200 is lost
  //   (1-(1-p)^2): (2p-p^2)^10;
  // - everything else (the 2xx until ACK, the b-leg 200s and BYE, ACK or BYE before the ACK, all absorbed by the
  //   scenarios) has 10 or more independent chances: p^10 or less. The 45 s run timeout needs several such
  //   delays in one call.
  // At p = 10% that is 1.2e-6 per call, 2.3e-5 per 20-call run: a spurious CI failure every ~40,000 runs of each
  // test. At p = 5%: 1.56e-8 + 7.8e-10 + 7.8e-11 = 1.65e-8 per call, 6.6e-7 per 40-call run. 40 calls at 5% lose
  // as many messages per run as 20 at 10% (about 2 per kind of message), so both legs' retransmissions are still
  // exercised in nearly every run.
  const LOSS_PERCENT = 5;
  const LOSSY_CALLS = 40;

  it("UDP with 5% packet loss: retransmissions recover every call", async () => {
    const { result, delta } = await during(() =>
      callEngine({
        scenario: "uac-invite.xml",
        calls: LOSSY_CALLS,
        rate: 10,
        service: "answer",
        lostPercent: LOSS_PERCENT,
        timeoutSeconds: 45,
      }),
    );
    expectAllSucceeded(result, LOSSY_CALLS);
    expect(delta("answered")).toBe(LOSSY_CALLS);
  });

  it("UDP with 5% loss on both legs of a B2BUA: the engine's client-side retransmissions recover too", async () => {
    const calls = LOSSY_CALLS;
    const { uas, uri } = await callee("uas-answer-linger.xml", calls, {
      lostPercent: LOSS_PERCENT,
      timeoutSeconds: 45,
    });
    b2buaTarget = uri;
    try {
      const { result, delta } = await during(() =>
        callEngine({
          scenario: "uac-invite.xml",
          calls,
          rate: 10,
          service: "b2bua",
          lostPercent: LOSS_PERCENT,
          pauseMs: 1000,
          timeoutSeconds: 45,
        }),
      );
      const b = await uas.done;
      expectAllSucceeded(result, calls);
      expectAllSucceeded(b, calls);
      expect(delta("b2bua-connected")).toBe(calls);
    } finally {
      uas.kill();
    }
  });

  it("TCP: OPTIONS, REGISTER with digest and INVITE/BYE over TCP", async () => {
    const options = await callEngine({ scenario: "uac-options.xml", calls: 10, transport: "tcp" });
    expectAllSucceeded(options, 10);
    const register = await callEngine({
      scenario: "uac-register-auth.xml",
      calls: 10,
      transport: "tcp",
      service: "bob",
      auth: { username: "bob", password: "s3cret-bob" },
    });
    expectAllSucceeded(register, 10);
    const invite = await callEngine({
      scenario: "uac-invite.xml",
      calls: 10,
      transport: "tcp",
      service: "answer",
    });
    expectAllSucceeded(invite, 10);
  });

  it("TCP: B2BUA from a sipp TCP caller to a sipp TCP callee", async () => {
    const calls = 5;
    const { uas, uri } = await callee("uas-answer.xml", calls, { transport: "tcp" });
    b2buaTarget = uri;
    try {
      const a = await callEngine({ scenario: "uac-invite.xml", calls, service: "b2bua", transport: "tcp" });
      const b = await uas.done;
      expectAllSucceeded(a, calls);
      expectAllSucceeded(b, calls);
    } finally {
      uas.kill();
    }
  });

  it("the app reported no errors", () => {
    expect(app.errors).toEqual([]);
  });
});
