// The voice webhooks as Twilio drives them: signed form POSTs to a real edge over a real
// libSQL database, the relay online over the real WebSocket link (or not). What a user
// would notice: which phones ring, what the caller hears, what the call history says.
import {
  blocklist,
  cdrs,
  devices,
  dids,
  jobs,
  processedWebhooks,
  type RelayEvent,
  routingRules,
  settings,
  systemEvents,
} from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyRelayEvent } from "../relay/events.ts";
import type { TestEdge } from "../test-support.ts";
import {
  callSid,
  connectRelay,
  createVoiceEdge,
  type LiveRelay,
  pathOf,
  postWebhook,
  register,
  seedVoice,
  type VoiceSeed,
} from "./testing.ts";

let t: TestEdge;
let seed: VoiceSeed;
let relay: LiveRelay | undefined;

beforeEach(async () => {
  t = await createVoiceEdge();
  seed = await seedVoice(t);
  relay = await connectRelay(t);
});
afterEach(async () => {
  await relay?.close();
  relay = undefined;
  await t.close();
});

const CALLER = "+15557654321";

function inbound(sid: string, over: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: "AC00000000000000000000000000000a11",
    CallSid: sid,
    From: CALLER,
    To: "+15550001000",
    CallStatus: "ringing",
    Direction: "inbound",
    CallerName: "Jane Caller",
    ...over,
  };
}

async function voice(sid: string, over: Record<string, string> = {}) {
  const res = await postWebhook(t, "/api/webhooks/twilio/voice", inbound(sid, over));
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/xml");
  return res.text();
}

async function cdrOf(sid: string) {
  const rows = await t.db.select().from(cdrs).where(eq(cdrs.twilioCallSid, sid));
  expect(rows).toHaveLength(1);
  const [row] = rows;
  if (!row) throw new Error("no CDR");
  return row;
}

/** The `<Sip>` URIs of a TwiML answer. */
const sipUris = (xml: string) => [...xml.matchAll(/<Sip [^>]*>([^<]+)<\/Sip>/g)].map((m) => m[1]);
/** The action URL of the `<Dial>` (XML entities undone). */
function dialAction(xml: string): string {
  const m = /<Dial [^>]*action="([^"]+)"/.exec(xml);
  if (!m?.[1]) throw new Error(`no Dial action in ${xml}`);
  return m[1].replace(/&amp;/g, "&");
}

describe("the signature gate", () => {
  it("a forged signature is refused with 403 and leaves no CDR", async () => {
    const sid = callSid();
    const res = await postWebhook(t, "/api/webhooks/twilio/voice", inbound(sid), {
      signature: "bm90IGEgcmVhbCBzaWduYXR1cmU=",
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "forbidden" } });
    expect(await t.db.select().from(cdrs)).toHaveLength(0);
    expect(await t.db.select().from(processedWebhooks)).toHaveLength(0);
  });
});

describe("inbound calls", () => {
  it("rings only the DID's phones that are registered now, through the relay with its credentials", async () => {
    await register(t, seed.desk.id, "101");
    const sid = callSid();
    const xml = await voice(sid);
    expect(sipUris(xml)).toEqual([`sip:101@relay.example.net:5060;transport=udp?X-GoSIP-CallSid=${sid}`]);
    expect(xml).toContain('<Sip username="twilio-in" password="inbound-password-1">');
    expect(xml).toMatch(
      /<Dial timeout="30" answerOnBridge="true" action="http:\/\/localhost:8080\/api\/webhooks\/twilio\/dial-result\?/,
    );
    const cdr = await cdrOf(sid);
    expect(cdr).toMatchObject({
      direction: "inbound",
      status: "ringing",
      fromNumber: CALLER,
      toNumber: "+15550001000",
      didId: seed.did.id,
      userId: seed.aliceId,
      disposition: null,
    });
  });

  it("a duplicate webhook (same CallSid) answers the same TwiML and writes no second CDR", async () => {
    await register(t, seed.desk.id, "101");
    await register(t, seed.soft.id, "102");
    const sid = callSid();
    const first = await voice(sid);
    const second = await voice(sid);
    expect(second).toBe(first);
    expect(sipUris(first)).toHaveLength(2);
    await cdrOf(sid);
    expect(await t.db.select().from(cdrs)).toHaveLength(1);
  });

  it("nobody registered → straight to voicemail (greeting + Record), never silence", async () => {
    const sid = callSid();
    const xml = await voice(sid);
    expect(xml).toContain("<Record ");
    expect(xml).not.toContain("<Dial");
    const cdr = await cdrOf(sid);
    expect(cdr).toMatchObject({ disposition: "voicemail", reason: "nobody_registered" });
    expect(xml).toContain(`cdrId=${cdr.id}`);
  });

  it("relay offline → voicemail, even with phones registered", async () => {
    await register(t, seed.desk.id, "101");
    await relay?.close();
    relay = undefined;
    const sid = callSid();
    const xml = await voice(sid);
    expect(xml).toContain("<Record ");
    expect(xml).not.toContain("<Sip");
    expect(await cdrOf(sid)).toMatchObject({ disposition: "voicemail", reason: "relay_offline" });
  });

  it("no relay settings (address, credentials) → voicemail", async () => {
    await register(t, seed.desk.id, "101");
    await t.db.delete(settings).where(eq(settings.key, "relay"));
    const sid = callSid();
    const xml = await voice(sid);
    expect(xml).toContain("<Record ");
    expect(await cdrOf(sid)).toMatchObject({ disposition: "voicemail", reason: "relay_unconfigured" });
  });

  it("a blocklisted caller hears busy; the CDR says blocked by the blocklist", async () => {
    await register(t, seed.desk.id, "101");
    await t.db.insert(blocklist).values({ pattern: "+1555765", matchType: "prefix", action: "reject" });
    const sid = callSid();
    expect(await voice(sid)).toContain('<Reject reason="busy"/>');
    expect(await cdrOf(sid)).toMatchObject({ status: "ended", disposition: "blocked", reason: "blocklist" });
  });

  it("anonymous callers are rejected when the setting says so", async () => {
    await register(t, seed.desk.id, "101");
    await t.db.insert(settings).values({ key: "callScreening", value: { v: 1, rejectAnonymous: true } });
    const sid = callSid();
    expect(await voice(sid, { From: "anonymous" })).toContain('<Reject reason="busy"/>');
    expect(await cdrOf(sid)).toMatchObject({
      fromNumber: "anonymous",
      disposition: "rejected",
      reason: "anonymous",
    });
  });

  it("a caller failing STIR/SHAKEN scores as spam, is blocked, and the score is on the CDR", async () => {
    await register(t, seed.desk.id, "101");
    const sid = callSid();
    expect(await voice(sid, { StirVerstat: "TN-Validation-Failed-A" })).toContain("<Reject");
    const cdr = await cdrOf(sid);
    expect(cdr).toMatchObject({ disposition: "blocked", reason: "spam" });
    expect(cdr.spamScore).toBeGreaterThan(0.7);
    const clean = callSid();
    await voice(clean, { StirVerstat: "TN-Validation-Passed-A" });
    expect((await cdrOf(clean)).spamScore).toBe(0);
  });

  it("DND on the DID sends the call to voicemail without ringing", async () => {
    await register(t, seed.desk.id, "101");
    await t.db.update(dids).set({ dnd: true }).where(eq(dids.id, seed.did.id));
    const sid = callSid();
    const xml = await voice(sid);
    expect(xml).not.toContain("<Dial");
    expect(xml).toContain("<Record ");
    expect(await cdrOf(sid)).toMatchObject({ disposition: "voicemail", reason: "dnd" });
  });

  it("a call to a number that is not a DID here gets a polite message, a CDR and a warning", async () => {
    const sid = callSid();
    const xml = await voice(sid, { To: "+15550009999" });
    expect(xml).toMatch(/<Say>Sorry, this number is not set up[^<]*<\/Say><Hangup\/>/);
    expect(await cdrOf(sid)).toMatchObject({ didId: null, disposition: "rejected", reason: "unknown_did" });
    expect(t.logs.some((l) => l.level === "warn" && l.msg.includes("not a DID"))).toBe(true);
    expect(JSON.stringify(t.logs)).not.toContain("+15550009999");
  });

  it("a broken stored rule fails closed: busy, CDR rejected (error), routing.error event", async () => {
    await register(t, seed.desk.id, "101");
    await t.client.execute({
      sql: "insert into routing_rules (id, did_id, name, priority, enabled, rule, created_at, updated_at) values (?, ?, ?, 1, 1, ?, 0, 0)",
      args: ["rule-bad", seed.did.id, "broken", JSON.stringify({ v: 1, conditions: "nope" })],
    });
    const sid = callSid();
    expect(await voice(sid)).toContain('<Reject reason="busy"/>');
    expect(await cdrOf(sid)).toMatchObject({ status: "ended", disposition: "rejected", reason: "error" });
    const events = await t.db.select().from(systemEvents).where(eq(systemEvents.type, "routing.error"));
    expect(events).toHaveLength(1);
    expect(events[0]?.severity).toBe("error");
  });

  it("a webhook without a CallSid is refused with 400 and stores nothing", async () => {
    const params = inbound("");
    delete (params as Record<string, string | undefined>).CallSid;
    const res = await postWebhook(t, "/api/webhooks/twilio/voice", params);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "validation_failed" } });
    expect(await t.db.select().from(cdrs)).toHaveLength(0);
  });
});

describe("dial-result", () => {
  it("answered: the CDR is answered with the talk time and SIP status, Twilio hangs up", async () => {
    await register(t, seed.desk.id, "101");
    const sid = callSid();
    const action = dialAction(await voice(sid));
    const res = await postWebhook(t, pathOf(action), {
      CallSid: sid,
      DialCallStatus: "completed",
      DialCallSid: callSid(),
      DialCallDuration: "42",
      DialSipResponseCode: "200",
    });
    expect(await res.text()).toContain("<Hangup/>");
    expect(await cdrOf(sid)).toMatchObject({
      status: "ended",
      disposition: "answered",
      durationSeconds: 42,
      sipStatus: 200,
    });
  });

  it("sequential ring group: no answer on the first phone rings the next, then voicemail", async () => {
    await register(t, seed.desk.id, "101");
    await register(t, seed.bobDesk.id, "201");
    // Alice's softphone is in the group but not registered: it is skipped.
    await t.db.insert(routingRules).values({
      didId: seed.did.id,
      name: "Front desk then Bob",
      priority: 1,
      rule: {
        v: 1,
        conditions: [{ type: "default" }],
        action: {
          type: "ring",
          deviceIds: [seed.desk.id, seed.soft.id, seed.bobDesk.id],
          strategy: "sequential",
          timeoutSeconds: 15,
          onNoAnswer: "voicemail",
        },
        record: false,
      },
    });
    const sid = callSid();
    const first = await voice(sid);
    expect(sipUris(first)).toEqual([`sip:101@relay.example.net:5060;transport=udp?X-GoSIP-CallSid=${sid}`]);
    expect(first).toContain('timeout="15"');

    const step1 = {
      CallSid: sid,
      DialCallStatus: "no-answer",
      DialCallDuration: "0",
      DialSipResponseCode: "487",
    };
    const second = await (await postWebhook(t, pathOf(dialAction(first)), step1)).text();
    expect(sipUris(second)).toEqual([`sip:201@relay.example.net:5060;transport=udp?X-GoSIP-CallSid=${sid}`]);
    // Twilio repeating the same action gets the same step again, nothing more.
    const again = await (await postWebhook(t, pathOf(dialAction(first)), step1)).text();
    expect(again).toBe(second);

    const third = await (
      await postWebhook(t, pathOf(dialAction(second)), {
        CallSid: sid,
        DialCallStatus: "busy",
        DialSipResponseCode: "486",
      })
    ).text();
    expect(third).toContain("<Record ");
    expect(await cdrOf(sid)).toMatchObject({
      disposition: "voicemail",
      sipStatus: 486,
      ruleId: expect.any(String),
    });
  });

  it("no answer with onNoAnswer hangup: missed, and the owner is told once", async () => {
    await register(t, seed.desk.id, "101");
    await t.db.insert(settings).values({
      key: "email",
      value: { v: 1, provider: "smtp", from: "pbx@example.test", smtp: { host: "127.0.0.1", port: 2525 } },
    });
    await t.db.insert(routingRules).values({
      didId: seed.did.id,
      name: "Desk only",
      priority: 1,
      rule: {
        v: 1,
        conditions: [{ type: "default" }],
        action: {
          type: "ring",
          deviceIds: [seed.desk.id],
          strategy: "simultaneous",
          timeoutSeconds: 20,
          onNoAnswer: "hangup",
        },
        record: false,
      },
    });
    const sid = callSid();
    const action = pathOf(dialAction(await voice(sid)));
    const res = await postWebhook(t, action, { CallSid: sid, DialCallStatus: "no-answer" });
    expect(await res.text()).toContain("<Hangup/>");
    await postWebhook(t, "/api/webhooks/twilio/call-status", {
      CallSid: sid,
      CallStatus: "completed",
      CallDuration: "25",
    });
    expect(await cdrOf(sid)).toMatchObject({ status: "ended", disposition: "missed", durationSeconds: 0 });
    const queued = await t.db.select().from(jobs);
    const emails = queued.filter((j) => j.kind === "email.send");
    expect(emails).toHaveLength(1);
    expect(JSON.stringify(emails[0]?.payload)).toContain("Missed call from +15557654321");
  });

  it("refuses an action URL this edge did not write (400, nothing changes)", async () => {
    const sid = callSid();
    await voice(sid);
    const res = await postWebhook(t, "/api/webhooks/twilio/dial-result?cdrId=x&kind=ring&step=abc", {
      CallSid: sid,
      DialCallStatus: "completed",
    });
    expect(res.status).toBe(400);
  });
});

describe("call-status", () => {
  it("completes the CDR (ended, endedAt, disposition) and a repeat changes nothing", async () => {
    await register(t, seed.desk.id, "101");
    const sid = callSid();
    await voice(sid);
    const cb = { CallSid: sid, CallStatus: "completed", CallDuration: "31" };
    const res = await postWebhook(t, "/api/webhooks/twilio/call-status", cb);
    expect(res.status).toBe(200);
    const done = await cdrOf(sid);
    expect(done).toMatchObject({ status: "ended", disposition: "missed" });
    expect(done.endedAt).toBeInstanceOf(Date);
    await t.db.update(cdrs).set({ disposition: "answered" }).where(eq(cdrs.id, done.id));
    await postWebhook(t, "/api/webhooks/twilio/call-status", cb);
    expect((await cdrOf(sid)).disposition).toBe("answered");
  });

  it("keeps a more specific outcome: a voicemail call stays voicemail", async () => {
    const sid = callSid();
    await voice(sid);
    await postWebhook(t, "/api/webhooks/twilio/call-status", {
      CallSid: sid,
      CallStatus: "completed",
      CallDuration: "40",
    });
    expect(await cdrOf(sid)).toMatchObject({ status: "ended", disposition: "voicemail" });
  });
});

describe("sip-outbound (the SIP Domain's Voice URL)", () => {
  const domain = "gosip-home.sip.twilio.com";
  function outbound(sid: string, to: string, over: Record<string, string> = {}) {
    return postWebhook(t, "/api/webhooks/twilio/sip-outbound", {
      CallSid: sid,
      From: `sip:u101@${domain}`,
      To: `sip:${to}@${domain}`,
      SipDomainSid: `SD${"0".repeat(32)}`,
      "SipHeader_X-GoSIP-Device": seed.desk.id,
      Direction: "inbound",
      ...over,
    });
  }

  it("an allowed number is dialled with the device's DID as caller ID; call-status completes the CDR", async () => {
    const sid = callSid();
    const xml = await (await outbound(sid, "+15551112222")).text();
    expect(xml).toMatch(
      /<Dial callerId="\+15550001000" timeout="60" answerOnBridge="true" action="[^"]+call-status[^"]*"/,
    );
    expect(xml).toContain("<Number>+15551112222</Number>");
    expect(await cdrOf(sid)).toMatchObject({
      direction: "outbound",
      status: "ringing",
      fromNumber: "101",
      toNumber: "+15551112222",
      deviceId: seed.desk.id,
      userId: seed.aliceId,
      didId: seed.did.id,
    });
    const res = await postWebhook(t, pathOf(dialAction(xml)), {
      CallSid: sid,
      DialCallStatus: "completed",
      DialCallDuration: "65",
    });
    expect(await res.text()).toContain("<Hangup/>");
    expect(await cdrOf(sid)).toMatchObject({ status: "ended", disposition: "answered", durationSeconds: 65 });
  });

  it("the policy is enforced again: premium rate refused with a message, CDR rejected (policy)", async () => {
    const sid = callSid();
    const xml = await (await outbound(sid, "+19005551234")).text();
    expect(xml).toMatch(/<Say>[^<]+<\/Say><Hangup\/>/);
    expect(xml).not.toContain("<Dial");
    expect(await cdrOf(sid)).toMatchObject({
      direction: "outbound",
      status: "ended",
      disposition: "rejected",
      reason: "policy",
      deviceId: seed.desk.id,
    });
  });

  it("a device with outbound calls disabled still reaches emergency numbers", async () => {
    await t.db
      .update(devices)
      .set({
        outboundPolicy: {
          v: 1,
          allowOutbound: false,
          allowedPrefixes: [],
          blockedPrefixes: [],
          blockPremiumRate: true,
        },
      })
      .where(eq(devices.id, seed.desk.id));
    const refused = callSid();
    expect(await (await outbound(refused, "+15551112222")).text()).not.toContain("<Dial");
    const emergency = callSid();
    expect(await (await outbound(emergency, "911")).text()).toContain("<Number>911</Number>");
  });

  it("a device header naming another device is refused", async () => {
    const sid = callSid();
    const xml = await (
      await outbound(sid, "+15551112222", { "SipHeader_X-GoSIP-Device": seed.bobDesk.id })
    ).text();
    expect(xml).not.toContain("<Dial");
    expect((await cdrOf(sid)).disposition).toBe("rejected");
  });

  it("caller ID: the default sender when the device is on no DID", async () => {
    await t.db.insert(dids).values({ e164: "+15550002000" });
    await t.db
      .insert(settings)
      .values({ key: "messaging", value: { v: 1, defaultSenderE164: "+15550002000" } });
    const sid = callSid();
    const xml = await (
      await outbound(sid, "+15551112222", {
        From: `sip:201@${domain}`,
        "SipHeader_X-GoSIP-Device": seed.bobDesk.id,
      })
    ).text();
    expect(xml).toContain('callerId="+15550002000"');
  });

  it("merges into the CDR the relay already reported for the call", async () => {
    const [relayRow] = await t.db
      .insert(cdrs)
      .values({
        direction: "outbound",
        fromNumber: "101",
        toNumber: "+15551112222",
        deviceId: seed.desk.id,
        userId: seed.aliceId,
        status: "ringing",
        startedAt: new Date(t.deps.clock.now() - 1000),
        relayCallId: "relay-call-1",
      })
      .returning({ id: cdrs.id });
    const sid = callSid();
    await outbound(sid, "+15551112222");
    const row = await cdrOf(sid);
    expect(row.id).toBe(relayRow?.id);
    expect(row.relayCallId).toBe("relay-call-1");
    expect(await t.db.select().from(cdrs)).toHaveLength(1);
  });
});

describe("one CDR per call, with the relay's events merged in", () => {
  const ladder = [{ t: 0, leg: "a", dir: "in" as const, label: "INVITE" }];
  const apply = (event: RelayEvent) =>
    applyRelayEvent(t.deps, { key: crypto.randomUUID(), at: new Date().toISOString(), event });

  it("a ring group rings two phones; the second answers: one row, answered by that phone", async () => {
    await register(t, seed.desk.id, "101");
    await register(t, seed.soft.id, "102");
    const sid = callSid();
    const xml = await voice(sid);
    expect(sipUris(xml)).toHaveLength(2);
    const leg = (callId: string) => ({
      callId,
      direction: "inbound" as const,
      from: CALLER,
      to: callId === "leg-a" ? "101" : "102",
      deviceId: null,
      twilioCallSid: sid,
      startedAt: "2026-01-15T12:00:00.000Z",
    });
    await apply({ kind: "call.started", ...leg("leg-a") });
    await apply({ kind: "call.started", ...leg("leg-b") });
    await apply({
      kind: "call.answered",
      callId: "leg-b",
      deviceId: seed.soft.id,
      answeredAt: "2026-01-15T12:00:03.000Z",
    });
    await apply({
      kind: "call.ended",
      ...leg("leg-a"),
      deviceId: seed.desk.id,
      answeredAt: null,
      endedAt: "2026-01-15T12:00:03.000Z",
      disposition: "canceled",
      sipStatus: 487,
      durationSeconds: 0,
      hangupBy: null,
      rtp: null,
      ladder,
    });
    // The losing leg's end does not end the call.
    expect((await cdrOf(sid)).status).not.toBe("ended");
    await apply({
      kind: "call.ended",
      ...leg("leg-b"),
      deviceId: seed.soft.id,
      answeredAt: "2026-01-15T12:00:03.000Z",
      endedAt: "2026-01-15T12:01:03.000Z",
      disposition: "answered",
      sipStatus: 200,
      durationSeconds: 60,
      hangupBy: "caller",
      rtp: { toCaller: 10, toCallee: 10 },
      ladder,
    });
    await postWebhook(t, pathOf(dialAction(xml)), {
      CallSid: sid,
      DialCallStatus: "completed",
      DialCallDuration: "60",
    });
    expect(await t.db.select().from(cdrs)).toHaveLength(1);
    expect(await cdrOf(sid)).toMatchObject({
      status: "ended",
      disposition: "answered",
      deviceId: seed.soft.id,
      userId: seed.aliceId,
      relayCallId: "leg-b",
      durationSeconds: 60,
      fromNumber: CALLER,
      toNumber: "+15550001000",
    });
  });

  it("an outbound call the edge saw first is merged when the relay reports it", async () => {
    const sid = callSid();
    await postWebhook(t, "/api/webhooks/twilio/sip-outbound", {
      CallSid: sid,
      From: "sip:u101@gosip-home.sip.twilio.com",
      To: "sip:+15551112222@gosip-home.sip.twilio.com",
      "SipHeader_X-GoSIP-Device": seed.desk.id,
    });
    await apply({
      kind: "call.started",
      callId: "out-1",
      direction: "outbound",
      from: "101",
      to: "+15551112222",
      deviceId: seed.desk.id,
      twilioCallSid: null,
      startedAt: new Date(t.deps.clock.now()).toISOString(),
    });
    expect(await t.db.select().from(cdrs)).toHaveLength(1);
    expect(await cdrOf(sid)).toMatchObject({ relayCallId: "out-1", didId: seed.did.id });
  });
});
