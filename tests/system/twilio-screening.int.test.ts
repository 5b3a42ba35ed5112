/**
 * Call screening through the Twilio simulator, every part real and on loopback: the Node edge pointed
 * at the simulator's REST server, `npm run relay` with rtpengine, baresip as the front-desk phone, and
 * the simulator's call driver playing the phone network (signed voice webhooks, the edge's TwiML
 * executed, <Dial><Sip> into the relay).
 *
 * What a user notices: a blocked number, a withheld number (when anonymous calls are refused) and a
 * caller whose caller ID failed STIR/SHAKEN are turned away and the call history says why; with Do Not
 * Disturb on, callers go to voicemail and the phone stays silent; an after-hours rule plays its message
 * instead of ringing; a forged webhook is refused and leaves no trace; Twilio repeating a webhook does
 * not make a second call in the history.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { twilioSignature } from "../../edge/src/twilio/signature.ts";
import { freeUdpPort } from "../../relay/src/pbx/media/rtpengine-process.ts";
import type { InboundCallResult } from "../twilio-sim/calls/index.ts";
import { specViolations } from "../twilio-sim/openapi/conformance.ts";
import { postSignedWebhook } from "../twilio-sim/webhooks.ts";
import { BaresipPhone, freeTcpPort, RelayProcess, until, wait } from "./support.ts";
import {
  allCdrs,
  cdrsOfCall,
  endedCdr,
  SIM_AUTH_TOKEN,
  startTwilioWorld,
  type TwilioWorld,
} from "./twilio-support.ts";

const DID = "+15551230003";
const INBOUND = { username: "twilio-inbound", password: "inbound-secret-screening" };
/** Installation time zone: far from UTC so a rule read in the wrong zone would not match. */
const TIME_ZONE = "Asia/Kolkata";

let w: TwilioWorld;
let relay: RelayProcess;
let phone: BaresipPhone;

/** A call from `from`, run to the end (callbacks included). */
async function callFrom(
  from: string,
  extra: Partial<Parameters<TwilioWorld["sim"]["calls"]["driver"]["placeInboundCall"]>[0]> = {},
): Promise<InboundCallResult> {
  const call = await w.sim.calls.driver.placeInboundCall({ from, to: DID, ...extra });
  return call.settled();
}

/**
 * Whether the phone's log shows a call coming in after offset `since` (baresip, answering
 * automatically, logs "answering call …" and "Call established"; "Incoming call" when asked to ring).
 */
function phoneRangSince(since: number): boolean {
  return /incoming call|answering call|call established/i.test(phone.output.slice(since));
}

/** The rejected call's story: Twilio was told to <Reject>, nothing was dialled. */
function expectRejected(result: InboundCallResult): void {
  const story = result.transcript.story();
  expect(story, JSON.stringify(result.transcript.entries).slice(0, 2000)).toEqual(["Reject"]);
  expect(result.transcript.of("sip")).toHaveLength(0);
  expect(["busy", "no-answer", "failed", "canceled", "completed"]).toContain(result.status);
}

/** HH:MM of `instant` in `timeZone`, `minutes` later. */
function localClock(instant: number, minutes: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(instant + minutes * 60_000));
  const hh = parts.find((p) => p.type === "hour")?.value ?? "00";
  const mm = parts.find((p) => p.type === "minute")?.value ?? "00";
  return `${hh}:${mm}`;
}

function callSid(): string {
  return `CA${randomBytes(16).toString("hex")}`;
}

beforeAll(async () => {
  w = await startTwilioWorld({ did: DID });
  await w.edge.ok("PUT", "/api/settings/installation", { v: 1, timeZone: TIME_ZONE });
  const relaySipPort = await freeUdpPort("127.0.0.1");
  await w.edge.ok("PUT", "/api/settings/relay", {
    v: 1,
    publicSipUri: `sip:127.0.0.1:${relaySipPort};transport=udp`,
    inboundUsername: INBOUND.username,
    inboundPassword: INBOUND.password,
  });
  const { token } = await w.edge.ok<{ token: string }>("POST", "/api/relay/tokens", { name: "screening" });
  relay = new RelayProcess({
    edgeUrl: w.edge.url,
    token,
    dataDir: `${w.edge.dataDir}/relay`,
    sipPort: relaySipPort,
    metricsPort: await freeTcpPort(),
    twilioSipProxy: `127.0.0.1:${w.sim.calls.sipPort}`,
    rtpPorts: [36000, 36400],
  });
  await relay.start();
  await until("the relay's link to the edge", 20_000, async () => {
    const s = await w.edge.ok<{ connected: boolean }>("GET", "/api/relay/status");
    return s.connected ? s : undefined;
  });
  phone = await BaresipPhone.start(w.device, relaySipPort, 440);
  await until("the phone's registration on the edge", 20_000, async () => {
    const d = await w.edge.ok<{ registrations: { online: boolean }[] }>("GET", `/api/devices/${w.device.id}`);
    return d.registrations.some((r) => r.online) ? d : undefined;
  });
}, 180_000);

afterAll(async () => {
  await phone?.stop();
  await relay?.stop();
  await w?.close();
});

describe("screening through the Twilio simulator", () => {
  it("an ordinary caller rings the phone (the baseline the other tests depart from)", async () => {
    const since = phone.output.length;
    const call = await w.sim.calls.driver.placeInboundCall({ from: "+15557651000", to: DID });
    const bridge = await call.nextBridge(20_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\nrelay: ${relay.output.slice(-1500)}`);
    });
    expect(bridge.kind).toBe("sip");
    await call.hangup();
    const result = await call.settled();
    expect(result.transcript.story()).toEqual(["Dial"]);
    await until("the phone's log of the call", 5_000, async () => (phoneRangSince(since) ? true : undefined));
    const cdr = await endedCdr(w.edge, result.callSid);
    expect(cdr.disposition).toBe("answered");
  });

  it("blocklisted callers (an exact number and a prefix) are rejected, the history says blocked by the blocklist; a voicemail entry takes a message without ringing", async () => {
    const exact = await w.edge.api("POST", "/api/blocklist", {
      pattern: "+15557652000",
      matchType: "exact",
      note: "the persistent one",
    });
    expect(exact.status).toBe(201);
    const prefix = await w.edge.api("POST", "/api/blocklist", { pattern: "+1900", matchType: "prefix" });
    expect(prefix.status).toBe(201);

    for (const from of ["+15557652000", "+19005550123"]) {
      const result = await callFrom(from);
      expectRejected(result);
      const cdr = await endedCdr(w.edge, result.callSid);
      expect(cdr).toMatchObject({ from, disposition: "blocked", reason: "blocklist" });
    }
    // An entry that sends to voicemail instead: the caller may leave a message, the phone stays silent.
    const toVoicemail = await w.edge.api("POST", "/api/blocklist", {
      pattern: "+15557652500",
      matchType: "exact",
      action: "voicemail",
    });
    expect(toVoicemail.status).toBe(201);
    const since = phone.output.length;
    const screened = await callFrom("+15557652500", { speak: { seconds: 4 } });
    expect(screened.transcript.story()).toContain("Record");
    expect(screened.transcript.story()).not.toContain("Dial");
    const screenedCdr = await until("the blocklisted caller's voicemail", 20_000, async () => {
      const [c] = await cdrsOfCall(w.edge, screened.callSid);
      return c?.status === "ended" && c.voicemailId ? c : undefined;
    });
    expect(screenedCdr).toMatchObject({ disposition: "voicemail", reason: "blocklist" });
    expect(phoneRangSince(since)).toBe(false);

    // A neighbour of the blocked number is not caught by the exact entry.
    const neighbour = await w.sim.calls.driver.placeInboundCall({ from: "+15557652001", to: DID });
    await neighbour.nextBridge(20_000);
    await neighbour.hangup();
    expect((await neighbour.settled()).transcript.story()).toEqual(["Dial"]);
  });

  it("an anonymous caller is rejected once anonymous calls are refused", async () => {
    await w.edge.ok("PUT", "/api/settings/callScreening", { v: 1, rejectAnonymous: true });
    try {
      const result = await callFrom("anonymous");
      expectRejected(result);
      const cdr = await endedCdr(w.edge, result.callSid);
      expect(cdr).toMatchObject({ disposition: "rejected", reason: "anonymous" });
    } finally {
      await w.edge.ok("PUT", "/api/settings/callScreening", { v: 1, rejectAnonymous: false });
    }
  });

  it("a caller whose STIR/SHAKEN validation failed, or a robocaller by the spam add-on, is rejected as spam with the score kept", async () => {
    const stir = await callFrom("+15557653000", { stirVerstat: "TN-Validation-Failed" });
    expectRejected(stir);
    const stirCdr = await endedCdr(w.edge, stir.callSid);
    expect(stirCdr).toMatchObject({ disposition: "blocked", reason: "spam" });
    expect(stirCdr.spamScore).toBeCloseTo(0.9, 5);

    const robo = await callFrom("+15557653001", {
      addOns: {
        status: "successful",
        message: null,
        code: null,
        results: {
          nomorobo_spamscore: {
            request_sid: `XR${randomBytes(16).toString("hex")}`,
            status: "successful",
            message: null,
            code: null,
            result: { status: "success", message: "success", score: 1 },
          },
        },
      },
    });
    expectRejected(robo);
    const roboCdr = await endedCdr(w.edge, robo.callSid);
    expect(roboCdr).toMatchObject({ disposition: "blocked", reason: "spam", spamScore: 1 });

    // A passed attestation is let through, its (low) score still on the record.
    const fine = await w.sim.calls.driver.placeInboundCall({
      from: "+15557653002",
      to: DID,
      stirVerstat: "TN-Validation-Passed-A",
    });
    await fine.nextBridge(20_000);
    await fine.hangup();
    const fineResult = await fine.settled();
    const fineCdr = await endedCdr(w.edge, fineResult.callSid);
    expect(fineCdr).toMatchObject({ disposition: "answered", spamScore: 0 });
  });

  it("with Do Not Disturb on, a caller goes straight to voicemail and the phone does not ring", async () => {
    await w.edge.ok("PUT", "/api/settings/dnd", { v: 1, enabled: true });
    try {
      const since = phone.output.length;
      const result = await callFrom("+15557654000", {
        speak: { seconds: 4, transcript: "Calling during do not disturb." },
      });
      const story = result.transcript.story();
      expect(story).toContain("Record");
      expect(story).not.toContain("Dial");
      expect(result.transcript.of("sip")).toHaveLength(0);
      const cdr = await until("the voicemail on the CDR", 20_000, async () => {
        const [c] = await cdrsOfCall(w.edge, result.callSid);
        return c?.status === "ended" && c.voicemailId ? c : undefined;
      });
      expect(cdr).toMatchObject({ disposition: "voicemail", reason: "dnd" });
      // Give a stray INVITE time to show up in the phone's log before saying it stayed silent.
      await wait(1000);
      expect(phoneRangSince(since), phone.output.slice(since)).toBe(false);
    } finally {
      await w.edge.ok("PUT", "/api/settings/dnd", { v: 1, enabled: false });
    }
  });

  it("an after-hours rule matching now in the installation's time zone plays its message instead of ringing", async () => {
    const now = Date.now();
    const start = localClock(now, -30, TIME_ZONE);
    const end = localClock(now, 30, TIME_ZONE);
    // The same window read in UTC would be hours away: only the installation's zone makes it match.
    expect(localClock(now, 0, "UTC")).not.toBe(localClock(now, 0, TIME_ZONE));
    const rule = await w.edge.ok<{ id: string }>("POST", "/api/routes", {
      didId: w.did.id,
      name: "after hours",
      rule: {
        v: 1,
        conditions: [
          {
            type: "time",
            windows: [{ days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start, end }],
          },
        ],
        action: {
          type: "playMessage",
          message: { kind: "tts", text: "We are closed. Please call again tomorrow." },
        },
      },
    });
    try {
      const since = phone.output.length;
      const result = await callFrom("+15557655000");
      const story = result.transcript.story();
      expect(story).not.toContain("Dial");
      expect(story[0]).toBe("Say");
      expect(result.transcript.of("say")[0]?.text).toBe("We are closed. Please call again tomorrow.");
      expect(result.transcript.of("sip")).toHaveLength(0);
      const cdr = await endedCdr(w.edge, result.callSid);
      expect(cdr.reason).toBe("message");
      await wait(500);
      expect(phoneRangSince(since)).toBe(false);
    } finally {
      await w.edge.ok("DELETE", `/api/routes/${rule.id}`);
    }
  });

  it("a forged voice webhook is refused with 403 and leaves no call in the history", async () => {
    const url = `${w.hooks}/voice`;
    const sid = callSid();
    const params = {
      AccountSid: w.sim.rest.state.accountSid,
      CallSid: sid,
      From: "+15557656000",
      To: DID,
      CallStatus: "ringing",
      Direction: "inbound",
      ApiVersion: "2010-04-01",
    };
    // Signed with someone else's token.
    const wrongToken = await postSignedWebhook(url, params, "ffffffffffffffffffffffffffffffff");
    expect(wrongToken.status).toBe(403);
    expect(JSON.parse(wrongToken.body)).toMatchObject({ error: { code: "forbidden" } });
    // Signed correctly, then a parameter changed on the way.
    const signature = await twilioSignature(SIM_AUTH_TOKEN, url, params);
    const tampered = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature },
      body: new URLSearchParams({ ...params, From: "+15557656001" }).toString(),
    });
    expect(tampered.status).toBe(403);
    // No signature at all.
    const unsigned = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(params).toString(),
    });
    expect(unsigned.status).toBe(403);
    expect(await cdrsOfCall(w.edge, sid)).toHaveLength(0);
    expect(
      (await allCdrs(w.edge)).filter((c) => c.from === "+15557656000" || c.from === "+15557656001"),
    ).toEqual([]);
  });

  it("Twilio repeating a voice webhook (same CallSid) leaves one call in the history, unchanged", async () => {
    const result = await callFrom("+15557652000");
    expectRejected(result);
    const before = await endedCdr(w.edge, result.callSid);
    const [voice] = result.transcript.webhooks("voice");
    expect(voice?.status).toBe(200);
    // Twilio retries the same request (its idempotency token kept, or a fresh one): both signed.
    for (let i = 0; i < 2; i++) {
      const again = await postSignedWebhook(voice?.url ?? "", voice?.params ?? {}, SIM_AUTH_TOKEN);
      expect(again.status).toBe(200);
      expect(again.body).toContain("<Reject");
    }
    const after = await cdrsOfCall(w.edge, result.callSid);
    expect(after).toHaveLength(1);
    expect(after[0]).toEqual(before);

    // The same for a call the phone would take: the repeated webhook does not ring it a second time
    // or add a second record.
    const sid = callSid();
    const params = {
      AccountSid: w.sim.rest.state.accountSid,
      CallSid: sid,
      From: "+15557657000",
      To: DID,
      CallStatus: "ringing",
      Direction: "inbound",
      ApiVersion: "2010-04-01",
    };
    const url = `${w.hooks}/voice`;
    const first = await postSignedWebhook(url, params, SIM_AUTH_TOKEN);
    const second = await postSignedWebhook(url, params, SIM_AUTH_TOKEN);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(await cdrsOfCall(w.edge, sid)).toHaveLength(1);
    // Twilio ends the call (the caller gave up): the one record ends.
    const status = await postSignedWebhook(
      `${w.hooks}/call-status`,
      { ...params, CallStatus: "no-answer", CallDuration: "0" },
      SIM_AUTH_TOKEN,
    );
    expect(status.status).toBeLessThan(300);
    const ended = await endedCdr(w.edge, sid);
    expect(ended.from).toBe("+15557657000");
    expect(await cdrsOfCall(w.edge, sid)).toHaveLength(1);
  });
});

describe("what the edge asked of Twilio", () => {
  it("every REST request (if any) is one Twilio's API description knows, with parameters it documents", () => {
    expect(specViolations(w.sim.rest.state.requests)).toEqual([]);
  });
});
