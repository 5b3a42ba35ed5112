/**
 * The simulator's TwiML executor against a tiny hono app that answers scripted TwiML on loopback and
 * checks every request's X-Twilio-Signature the way the edge does. Each verb, action chaining, the
 * Voice Fallback URL on a 500 / a timeout / a broken document, the recording and transcription
 * callbacks, and <Dial> over real SIP: a second SIP engine plays the relay (407 challenge, a phone that
 * rings, one that is busy, one that answers with real RTP).
 */
import type { AddressInfo } from "node:net";
import { computeDigestResponse, computeHa1 } from "@gosip/drizzle";
import { createAdaptorServer } from "@hono/node-server";
import type Srf from "drachtio-srf";
import { Hono } from "hono";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { verifyTwilioSignature } from "../../../edge/src/twilio/signature.ts";
import { RtpPeer, sdpMediaTarget } from "../../../relay/src/testing/rtp-peer.ts";
import { startTwilioSim } from "../server.ts";
import { SimState } from "../state.ts";
import { wavDurationSeconds } from "./audio.ts";
import { CallDriver } from "./driver.ts";
import { PstnNetwork } from "./pstn.ts";
import { digestParams, SimSip } from "./sip.ts";

const ACCOUNT = "AC5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const TOKEN = "0123456789abcdef0123456789abcdef";
const NUMBER = "+15551230001";
const CALLER = "+15557654321";
const RELAY_CREDS = { username: "twilio-inbound", password: "relay-secret-for-tests" };

interface Seen {
  path: string;
  params: Record<string, string>;
  signatureOk: boolean;
}

/** The scripted application: path → TwiML (or a status / a delay). */
type Script = Record<string, string | { status: number } | { delayMs: number; twiml: string }>;

let script: Script = {};
let seen: Seen[] = [];
let appUrl = "";
let server: ReturnType<typeof createAdaptorServer>;
let state: SimState;
let driver: CallDriver;
let pstn: PstnNetwork;
let sip: SimSip;
let relaySide: SimSip;
const relayPeers: RtpPeer[] = [];
/** What the fake relay saw per INVITE. */
const relayInvites: { user: string; headers: Record<string, string>; canceled: boolean }[] = [];

const wav = (() => {
  const n = 8000;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write("RIFF", 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write("WAVEfmt ", 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(8000, 24);
  buf.writeUInt32LE(16000, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write("data", 36);
  buf.writeUInt32LE(n * 2, 40);
  return buf;
})();

function twiml(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Response>${body}</Response>`;
}

function app(): Hono {
  const a = new Hono();
  a.get("/audio/greeting.wav", (c) => c.body(wav, 200, { "content-type": "audio/wav" }));
  a.get("/audio/page.html", (c) => c.html("<p>not audio</p>"));
  a.post("/*", async (c) => {
    const form = await c.req.parseBody();
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) if (typeof v === "string") params[k] = v;
    const url = `${appUrl}${new URL(c.req.url).pathname}${new URL(c.req.url).search}`;
    const signatureOk = await verifyTwilioSignature(TOKEN, url, params, c.req.header("X-Twilio-Signature"));
    const path = new URL(c.req.url).pathname;
    seen.push({ path, params, signatureOk });
    const entry = script[path];
    if (entry === undefined) return c.text("", 200);
    if (typeof entry === "string") return c.body(entry, 200, { "content-type": "text/xml" });
    if ("status" in entry) return c.text("boom", entry.status as 500);
    await new Promise((r) => setTimeout(r, entry.delayMs));
    return c.body(entry.twiml, 200, { "content-type": "text/xml" });
  });
  return a;
}

/** The fake relay: 407 first, then per extension: "ring" rings until canceled, "busy", "answer". */
function installRelay(): void {
  const nonces = new Set<string>();
  relaySide.onInvite((req: Srf.SrfRequest, res: Srf.SrfResponse) => {
    const auth = req.get("Proxy-Authorization");
    if (!auth) {
      const nonce = `n${Math.random().toString(16).slice(2)}`;
      nonces.add(nonce);
      res.send(407, {
        headers: {
          "Proxy-Authenticate": `Digest realm="gosip", nonce="${nonce}", algorithm=MD5, qop="auth"`,
        },
      });
      return;
    }
    const p = digestParams(auth);
    const expected = computeDigestResponse({
      ha1: computeHa1(RELAY_CREDS.username, "gosip", RELAY_CREDS.password, "MD5"),
      algorithm: "MD5",
      method: "INVITE",
      uri: p.uri ?? "",
      nonce: p.nonce ?? "",
      ...(p.qop === "auth" ? { qop: "auth" as const, nc: p.nc ?? "", cnonce: p.cnonce ?? "" } : {}),
    });
    if (p.username !== RELAY_CREDS.username || p.response !== expected || !nonces.has(p.nonce ?? "")) {
      res.send(403);
      return;
    }
    const user = /^sip:([^@]+)@/.exec(req.uri)?.[1] ?? "";
    const seenInvite = {
      user,
      headers: {
        "x-gosip-callsid": req.get("X-GoSIP-CallSid") ?? "",
        "x-twilio-callsid": req.get("X-Twilio-CallSid") ?? "",
        from: req.get("From"),
      },
      canceled: false,
    };
    relayInvites.push(seenInvite);
    req.on("cancel", () => {
      seenInvite.canceled = true;
    });
    if (user.startsWith("busy")) {
      res.send(486);
      return;
    }
    res.send(180);
    if (user.startsWith("ring")) return; // until CANCEL
    void (async () => {
      const peer = await RtpPeer.open();
      relayPeers.push(peer);
      await new Promise((r) => setTimeout(r, 300));
      const dialog = await relaySide.srf.createUAS(req, res, { localSdp: peer.sdp({ codec: "PCMU" }) });
      // The phone "talks" 440 Hz for a second, then (extension answer-bye) hangs up.
      const target = sdpMediaTarget(req.body);
      // The call may be ended (and the peer closed) while it still talks.
      await peer.sendTone(440, 1500, target).catch(() => undefined);
      if (user.startsWith("answer-bye")) dialog.destroy();
    })();
  });
}

beforeAll(async () => {
  server = createAdaptorServer({ fetch: app().fetch, hostname: "127.0.0.1" });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sip = await SimSip.start();
  relaySide = await SimSip.start();
  installRelay();
}, 30_000);

afterAll(async () => {
  await driver?.close();
  for (const p of relayPeers) p.close();
  await sip?.close();
  await relaySide?.close();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(async () => {
  await driver?.close();
  script = {};
  seen = [];
  relayInvites.length = 0;
  state = new SimState({ accountSid: ACCOUNT, authToken: TOKEN, baseUrl: "http://127.0.0.1:9" });
  state.addIncomingNumber({
    phoneNumber: NUMBER,
    voiceUrl: `${appUrl}/voice`,
    voiceFallbackUrl: `${appUrl}/fallback`,
    statusCallback: `${appUrl}/status`,
  });
  pstn = new PstnNetwork();
  driver = new CallDriver(state, sip, { pstn, webhookTimeoutMs: 1500, transcriptionDelayMs: 50 });
});

function at(path: string): Seen[] {
  return seen.filter((s) => s.path === path);
}

describe("the TwiML executor", () => {
  it("posts the voice webhook signed, with Twilio's parameters, and runs Say, Play, Pause, Hangup", async () => {
    script["/voice"] = twiml(
      `<Say voice="alice">Hello &amp; welcome</Say><Play>/audio/greeting.wav</Play><Pause length="2"/><Hangup/><Say>never</Say>`,
    );
    const call = await driver.placeInboundCall({
      from: CALLER,
      to: NUMBER,
      callerName: "ALICE SMITH",
      stirVerstat: "TN-Validation-Passed-A",
      addOns: { status: "successful", results: {} },
    });
    const r = await call.done;
    expect(r.status).toBe("completed");
    expect(r.callSid).toMatch(/^CA[0-9a-f]{32}$/);
    const [voice] = at("/voice");
    expect(voice?.signatureOk).toBe(true);
    expect(voice?.params).toMatchObject({
      AccountSid: ACCOUNT,
      CallSid: r.callSid,
      From: CALLER,
      To: NUMBER,
      Caller: CALLER,
      Called: NUMBER,
      CallStatus: "ringing",
      Direction: "inbound",
      ApiVersion: "2010-04-01",
      CallerName: "ALICE SMITH",
      StirVerstat: "TN-Validation-Passed-A",
    });
    expect(JSON.parse(voice?.params.AddOns ?? "{}")).toMatchObject({ status: "successful" });
    expect(r.transcript.story()).toEqual(["Say", "Play", "Pause", "Hangup"]);
    expect(r.transcript.of("say")[0]?.text).toBe("Hello & welcome");
    expect(r.transcript.of("play")[0]).toMatchObject({
      status: 200,
      contentType: "audio/wav",
      bytes: wav.length,
    });
    const [status] = at("/status");
    expect(status?.signatureOk).toBe(true);
    expect(status?.params).toMatchObject({ CallSid: r.callSid, CallStatus: "completed" });
    // 1 s of greeting + 2 s pause + the Say: Twilio bills the simulated time.
    expect(Number(status?.params.CallDuration)).toBeGreaterThanOrEqual(3);
    expect(state.getCall(r.callSid)?.status).toBe("completed");
  });

  it("a <Play> of something that is not audio is skipped, the call goes on", async () => {
    script["/voice"] = twiml(`<Play>${appUrl}/audio/page.html</Play><Say>after</Say>`);
    const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(r.transcript.of("play")[0]?.contentType).toMatch(/text\/html/);
    expect(r.transcript.of("say").map((s) => s.text)).toEqual(["after"]);
  });

  it("<Gather> posts the caller's digits to its action and runs the answer; without digits it falls through", async () => {
    script["/voice"] = twiml(
      `<Gather numDigits="1" action="/menu" timeout="3"><Say>Press 1</Say></Gather><Say>nothing pressed</Say>`,
    );
    script["/menu"] = twiml(`<Say>you pressed one</Say><Hangup/>`);
    const pressed = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER, digits: ["17"] })).done;
    expect(at("/menu")[0]?.params).toMatchObject({ Digits: "1", CallStatus: "in-progress" });
    expect(pressed.transcript.of("say").map((s) => s.text)).toEqual(["Press 1", "you pressed one"]);

    seen = [];
    const silent = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(at("/menu")).toHaveLength(0);
    expect(silent.transcript.of("say").map((s) => s.text)).toEqual(["Press 1", "nothing pressed"]);
  });

  it("<Redirect> fetches the next document", async () => {
    script["/voice"] = twiml(`<Redirect>/second</Redirect><Say>unreachable</Say>`);
    script["/second"] = twiml(`<Say>second document</Say>`);
    const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(at("/second")[0]?.signatureOk).toBe(true);
    expect(r.transcript.of("say").map((s) => s.text)).toEqual(["second document"]);
  });

  it("<Reject reason=busy> as the first verb: never answered, CallStatus busy", async () => {
    script["/voice"] = twiml(`<Reject reason="busy"/>`);
    const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(r.status).toBe("busy");
    expect(r.transcript.of("answered")).toHaveLength(0);
    expect(at("/status")[0]?.params).toMatchObject({ CallStatus: "busy", CallDuration: "0" });

    script["/voice"] = twiml(`<Reject/>`);
    expect((await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done).status).toBe(
      "no-answer",
    );
  });

  it("the Voice Fallback URL is called when the Voice URL answers 500, times out, or returns broken TwiML", async () => {
    script["/fallback"] = twiml(`<Say>fallback speaking</Say>`);
    for (const primary of [
      { status: 500 },
      { delayMs: 2500, twiml: twiml("<Say>too late</Say>") },
      twiml("<Say>unclosed"),
      twiml("<Sms>not a voice verb</Sms>"),
    ] as const) {
      seen = [];
      script["/voice"] = primary;
      const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
      const [fb] = at("/fallback");
      expect(fb?.signatureOk).toBe(true);
      expect(fb?.params.ErrorUrl).toBe(`${appUrl}/voice`);
      expect(fb?.params.ErrorCode).toMatch(/^(11200|12100|12200)$/);
      expect(r.transcript.of("say").map((s) => s.text)).toEqual(["fallback speaking"]);
    }
  });

  it("both URLs failing: Twilio answers, says it had an application error, hangs up", async () => {
    script["/voice"] = { status: 503 };
    script["/fallback"] = { status: 500 };
    const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(r.transcript.of("application-error")).toHaveLength(1);
    expect(r.status).toBe("completed");
  });

  it("<Record>: the caller speaks, the recording is stored with real audio, callbacks in Twilio's order, then the transcript", async () => {
    script["/voice"] = twiml(
      `<Say>leave a message</Say><Record maxLength="180" timeout="10" playBeep="true" action="/recorded" recordingStatusCallback="/recording" transcribe="true" transcribeCallback="/transcription"/>`,
    );
    script["/recorded"] = twiml(`<Hangup/>`);
    const call = await driver.placeInboundCall({
      from: CALLER,
      to: NUMBER,
      speak: { seconds: 7, transcript: "Call me back about the invoice." },
    });
    const r = await call.settled();
    const [rec] = at("/recording");
    expect(rec?.signatureOk).toBe(true);
    expect(rec?.params).toMatchObject({
      AccountSid: ACCOUNT,
      CallSid: r.callSid,
      RecordingStatus: "completed",
      RecordingDuration: "7",
      RecordingChannels: "1",
    });
    const sid = rec?.params.RecordingSid ?? "";
    expect(sid).toMatch(/^RE[0-9a-f]{32}$/);
    // Like Twilio: the URL has no extension; .wav / .mp3 are appended by whoever downloads it.
    expect(rec?.params.RecordingUrl).toBe(
      `http://127.0.0.1:9/2010-04-01/Accounts/${ACCOUNT}/Recordings/${sid}`,
    );
    const audio = state.recordingAudio.get(sid);
    expect(audio && wavDurationSeconds(audio)).toBeCloseTo(7, 1);
    expect(at("/recorded")[0]?.params).toMatchObject({
      RecordingSid: sid,
      RecordingDuration: "7",
      Digits: "hangup",
    });
    const [tr] = at("/transcription");
    expect(tr?.params).toMatchObject({
      TranscriptionStatus: "completed",
      TranscriptionText: "Call me back about the invoice.",
      RecordingSid: sid,
      CallSid: r.callSid,
    });
    expect(tr?.params.TranscriptionSid).toMatch(/^TR[0-9a-f]{32}$/);
    expect(seen.map((s) => s.path)).toEqual([
      "/voice",
      "/recording",
      "/recorded",
      "/status",
      "/transcription",
    ]);
  });

  it("<Record> of silence is 'absent' (no action, next verb); over 120 s is never transcribed", async () => {
    script["/voice"] = twiml(
      `<Record action="/recorded" recordingStatusCallback="/recording" transcribe="true" transcribeCallback="/transcription"/><Say>no message</Say>`,
    );
    const silent = await (
      await driver.placeInboundCall({ from: CALLER, to: NUMBER, speak: { seconds: 0, endWith: "silence" } })
    ).settled();
    expect(at("/recording")[0]?.params.RecordingStatus).toBe("absent");
    expect(at("/recorded")).toHaveLength(0);
    expect(silent.transcript.of("say").map((s) => s.text)).toEqual(["no message"]);

    seen = [];
    script["/voice"] = twiml(
      `<Record maxLength="300" action="/recorded" recordingStatusCallback="/recording" transcribe="true" transcribeCallback="/transcription"/>`,
    );
    const long = await (
      await driver.placeInboundCall({ from: CALLER, to: NUMBER, speak: { seconds: 150 } })
    ).settled();
    expect(at("/recording")[0]?.params.RecordingDuration).toBe("150");
    expect(at("/transcription")).toHaveLength(0);
    expect(long.transcript.of("transcription")[0]?.skipped).toMatch(/120/);
  });

  it("<Dial><Sip> forks: the busy leg fails, the answering leg wins after the relay's 407, the ringing one gets CANCEL", async () => {
    const relay = `127.0.0.1:${relaySide.port}`;
    script["/voice"] = twiml(
      `<Dial timeout="20" answerOnBridge="true" action="/dial-result">` +
        `<Sip username="${RELAY_CREDS.username}" password="${RELAY_CREDS.password}">sip:busy-1@${relay}</Sip>` +
        `<Sip username="${RELAY_CREDS.username}" password="${RELAY_CREDS.password}">sip:ring-2@${relay}</Sip>` +
        `<Sip username="${RELAY_CREDS.username}" password="${RELAY_CREDS.password}">sip:answer-bye-3@${relay}?X-GoSIP-CallSid=CAparent&amp;X-Other=1</Sip>` +
        `</Dial>`,
    );
    script["/dial-result"] = twiml(`<Say>thanks</Say><Hangup/>`);
    const call = await driver.placeInboundCall({ from: CALLER, to: NUMBER });
    const bridge = await call.nextBridge(10_000);
    expect(bridge.kind).toBe("sip");
    const heard = await call.talk(1000, 1000);
    expect(heard.heardHz).toBeGreaterThan(430);
    expect(heard.heardHz).toBeLessThan(450);
    expect(await bridge.ended).toBe("callee");
    const r = await call.done;
    const [result] = at("/dial-result");
    expect(result?.params).toMatchObject({
      DialCallStatus: "completed",
      DialCallSid: bridge.callSid,
      DialSipResponseCode: "200",
      DialBridged: "true",
    });
    const answered = relayInvites.find((i) => i.user === "answer-bye-3");
    expect(answered?.headers["x-gosip-callsid"]).toBe("CAparent");
    expect(answered?.headers["x-twilio-callsid"]).toBe(bridge.callSid);
    expect(answered?.headers.from).toContain(CALLER);
    expect(relayInvites.find((i) => i.user === "ring-2")?.canceled).toBe(true);
    expect(r.transcript.of("say").map((s) => s.text)).toEqual(["thanks"]);
    const children = [...state.calls.values()].filter((c) => c.parent_call_sid === r.callSid);
    expect(children).toHaveLength(3);
    expect(state.getCall(bridge.callSid)?.status).toBe("completed");
  });

  it("<Dial><Sip> nobody answers within timeout: CANCEL, DialCallStatus no-answer (487); busy alone → busy (486)", async () => {
    const relay = `127.0.0.1:${relaySide.port}`;
    const creds = `username="${RELAY_CREDS.username}" password="${RELAY_CREDS.password}"`;
    script["/voice"] = twiml(
      `<Dial timeout="5" action="/dial-result"><Sip ${creds}>sip:ring-9@${relay}</Sip></Dial>`,
    );
    script["/dial-result"] = twiml(`<Say>voicemail now</Say>`);
    const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(at("/dial-result")[0]?.params).toMatchObject({
      DialCallStatus: "no-answer",
      DialSipResponseCode: "487",
    });
    expect(relayInvites[0]?.canceled).toBe(true);
    expect(r.transcript.of("say").map((s) => s.text)).toEqual(["voicemail now"]);

    seen = [];
    script["/voice"] = twiml(`<Dial action="/dial-result"><Sip ${creds}>sip:busy-5@${relay}</Sip></Dial>`);
    await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(at("/dial-result")[0]?.params).toMatchObject({
      DialCallStatus: "busy",
      DialSipResponseCode: "486",
    });
  });

  it("<Dial><Sip> with wrong credentials fails (the relay keeps answering 403)", async () => {
    const relay = `127.0.0.1:${relaySide.port}`;
    script["/voice"] = twiml(
      `<Dial action="/dial-result"><Sip username="twilio-inbound" password="wrong">sip:answer-1@${relay}</Sip></Dial>`,
    );
    await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(at("/dial-result")[0]?.params).toMatchObject({
      DialCallStatus: "failed",
      DialSipResponseCode: "403",
    });
  });

  it("<Dial><Number> reaches the simulated PSTN: busy, or answered and bridged until the party hangs up", async () => {
    pstn.set("+12025550100", { outcome: "busy" });
    pstn.set("+12025550101", { outcome: "answer", ringMs: 100, hangupAfterMs: 1200 });
    script["/voice"] = twiml(
      `<Dial callerId="${NUMBER}" action="/dial-result"><Number>+12025550100</Number></Dial>`,
    );
    await (await driver.placeInboundCall({ from: CALLER, to: NUMBER })).done;
    expect(at("/dial-result")[0]?.params.DialCallStatus).toBe("busy");
    expect(pstn.parties[0]?.info).toMatchObject({ number: "+12025550100", callerId: NUMBER });

    seen = [];
    script["/voice"] = twiml(`<Dial action="/dial-result"><Number>+12025550101</Number></Dial>`);
    const call = await driver.placeInboundCall({ from: CALLER, to: NUMBER });
    const bridge = await call.nextBridge();
    expect(bridge.party?.info.number).toBe("+12025550101");
    expect(await bridge.ended).toBe("callee");
    await call.done;
    const [result] = at("/dial-result");
    expect(result?.params.DialCallStatus).toBe("completed");
    expect(Number(result?.params.DialCallDuration)).toBeGreaterThanOrEqual(1);
    expect(result?.params.DialSipResponseCode).toBeUndefined();
  });

  it("the caller hanging up while the phone rings cancels the leg; the action still gets the result", async () => {
    const relay = `127.0.0.1:${relaySide.port}`;
    script["/voice"] = twiml(
      `<Dial timeout="30" action="/dial-result"><Sip username="${RELAY_CREDS.username}" password="${RELAY_CREDS.password}">sip:ring-7@${relay}</Sip></Dial>`,
    );
    script["/dial-result"] = twiml(`<Say>ignored, the caller is gone</Say>`);
    const r = await (await driver.placeInboundCall({ from: CALLER, to: NUMBER, hangupAfterMs: 800 })).done;
    expect(relayInvites[0]?.canceled).toBe(true);
    expect(at("/dial-result")[0]?.params).toMatchObject({
      DialCallStatus: "canceled",
      CallStatus: "completed",
    });
    expect(r.transcript.of("say")).toHaveLength(0);
  });
});

describe("live calls changed over the REST API", () => {
  async function rest(baseUrl: string, callSid: string, form: Record<string, string>): Promise<number> {
    const res = await fetch(`${baseUrl}/2010-04-01/Accounts/${ACCOUNT}/Calls/${callSid}.json`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${ACCOUNT}:${TOKEN}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(form).toString(),
    });
    await res.arrayBuffer();
    return res.status;
  }

  it("Url= on a ringing <Dial> cancels the leg and runs the new document; Status=completed ends a bridged call", async () => {
    const sim = await startTwilioSim({ accountSid: ACCOUNT, authToken: TOKEN });
    const restDriver = new CallDriver(sim.state, sip, { webhookTimeoutMs: 1500 });
    try {
      sim.state.addIncomingNumber({
        phoneNumber: NUMBER,
        voiceUrl: `${appUrl}/voice`,
        statusCallback: `${appUrl}/status`,
      });
      const relay = `127.0.0.1:${relaySide.port}`;
      const creds = `username="${RELAY_CREDS.username}" password="${RELAY_CREDS.password}"`;
      script["/voice"] = twiml(`<Dial timeout="30"><Sip ${creds}>sip:ring-4@${relay}</Sip></Dial>`);
      script["/elsewhere"] = twiml(`<Say>redirected by the application</Say>`);
      const ringing = await restDriver.placeInboundCall({ from: CALLER, to: NUMBER });
      await until(() => relayInvites.some((i) => i.user === "ring-4"));
      expect(await rest(sim.baseUrl, ringing.callSid, { Url: `${appUrl}/elsewhere` })).toBe(200);
      const r = await ringing.done;
      expect(relayInvites.find((i) => i.user === "ring-4")?.canceled).toBe(true);
      expect(at("/elsewhere")[0]?.params).toMatchObject({
        CallSid: ringing.callSid,
        CallStatus: "in-progress",
      });
      expect(r.transcript.of("say").map((x) => x.text)).toEqual(["redirected by the application"]);

      script["/voice"] = twiml(`<Dial><Sip ${creds}>sip:answer-5@${relay}</Sip></Dial><Say>after</Say>`);
      const bridged = await restDriver.placeInboundCall({ from: CALLER, to: NUMBER });
      const bridge = await bridged.nextBridge(10_000);
      expect(await rest(sim.baseUrl, bridged.callSid, { Status: "completed" })).toBe(200);
      expect(await bridge.ended).toBe("api");
      const done = await bridged.done;
      expect(done.status).toBe("completed");
      expect(done.transcript.of("say")).toHaveLength(0);
      expect(sim.state.getCall(bridged.callSid)?.status).toBe("completed");
    } finally {
      await restDriver.close();
      await sim.close();
    }
  });
});

describe("calls created over the REST API", () => {
  it("Calls.json to a PSTN number: it rings, answers, the Url's TwiML runs as outbound-api; a busy number ends busy", async () => {
    const sim = await startTwilioSim({ accountSid: ACCOUNT, authToken: TOKEN });
    const network = new PstnNetwork()
      .set("+12025550190", { outcome: "answer", ringMs: 100 })
      .set("+12025550191", { outcome: "busy", ringMs: 50 });
    const restDriver = new CallDriver(sim.state, sip, { pstn: network, webhookTimeoutMs: 1500 });
    try {
      sim.state.addIncomingNumber({ phoneNumber: NUMBER });
      script["/outbound"] = twiml(`<Say>this is a reminder</Say><Hangup/>`);
      const create = async (to: string): Promise<string> => {
        const res = await fetch(`${sim.baseUrl}/2010-04-01/Accounts/${ACCOUNT}/Calls.json`, {
          method: "POST",
          headers: {
            authorization: `Basic ${Buffer.from(`${ACCOUNT}:${TOKEN}`).toString("base64")}`,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: new URLSearchParams({
            To: to,
            From: NUMBER,
            Url: `${appUrl}/outbound`,
            StatusCallback: `${appUrl}/status`,
          }).toString(),
        });
        expect(res.status).toBe(201);
        return ((await res.json()) as { sid: string }).sid;
      };
      const answeredSid = await create("+12025550190");
      await until(() => restDriver.outbound.has(answeredSid));
      const answered = await restDriver.outbound.get(answeredSid);
      expect(answered?.status).toBe("completed");
      expect(at("/outbound")[0]?.params).toMatchObject({
        CallSid: answeredSid,
        Direction: "outbound-api",
        CallStatus: "in-progress",
        From: NUMBER,
        To: "+12025550190",
      });
      expect(answered?.transcript.of("say").map((x) => x.text)).toEqual(["this is a reminder"]);
      expect(network.parties[0]?.info.callerId).toBe(NUMBER);

      const busySid = await create("+12025550191");
      await until(() => restDriver.outbound.has(busySid));
      expect((await restDriver.outbound.get(busySid))?.status).toBe("busy");
      expect(sim.state.getCall(busySid)?.status).toBe("busy");
      expect(at("/status").map((x) => x.params.CallStatus)).toEqual(["completed", "busy"]);
    } finally {
      await restDriver.close();
      await sim.close();
    }
  });
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
