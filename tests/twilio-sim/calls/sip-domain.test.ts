/**
 * The simulator's SIP Domain against a real SIP client (a second engine + srf UAC playing the relay):
 * the 407 challenge Twilio sends, 403 for wrong credentials or a domain that is not the account's, 404
 * after a good 407 when the Domain has no Voice URL, and a call whose Voice URL (a tiny hono app that
 * checks the signature) answers <Dial callerId><Number>: the relay's leg is answered through Twilio's
 * media anchor and hears the PSTN party, the party hears the relay, BYE from either side ends it.
 */
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import type Srf from "drachtio-srf";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyTwilioSignature } from "../../../edge/src/twilio/signature.ts";
import { RtpPeer, sdpMediaTarget } from "../../../relay/src/testing/rtp-peer.ts";
import { SimState } from "../state.ts";
import { startTwilioSimCalls, type TwilioSimCalls } from "./index.ts";
import { SimSip, sipStatusOf } from "./sip.ts";
import { mediaProblem } from "./sip-domain.ts";

const ACCOUNT = "AC6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b";
const TOKEN = "abcdefabcdefabcdefabcdefabcdef12";
const DOMAIN = "home-test.sip.twilio.com";
const BARE_DOMAIN = "bare-test.sip.twilio.com";
const CREDS = { username: "gosip-relay", password: "domain-password-1" };
const DID = "+15551230009";

let state: SimState;
let calls: TwilioSimCalls;
let relay: SimSip;
let server: ReturnType<typeof createAdaptorServer>;
let appUrl = "";
const posted: { path: string; params: Record<string, string>; signatureOk: boolean }[] = [];
const peers: RtpPeer[] = [];

beforeAll(async () => {
  const app = new Hono();
  app.post("/*", async (c) => {
    const form = await c.req.parseBody();
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) if (typeof v === "string") params[k] = v;
    const path = new URL(c.req.url).pathname;
    const signatureOk = await verifyTwilioSignature(
      TOKEN,
      `${appUrl}${path}`,
      params,
      c.req.header("X-Twilio-Signature"),
    );
    posted.push({ path, params, signatureOk });
    if (path === "/sip-outbound") {
      const to = /^sip:([^@]+)@/.exec(params.To ?? "")?.[1] ?? "";
      return c.body(
        `<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="${DID}" answerOnBridge="true"><Number>${to}</Number></Dial></Response>`,
        200,
        { "content-type": "text/xml" },
      );
    }
    return c.body("<Response/>", 200, { "content-type": "text/xml" });
  });
  server = createAdaptorServer({ fetch: app.fetch, hostname: "127.0.0.1" });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  state = new SimState({ accountSid: ACCOUNT, authToken: TOKEN });
  const domain = state.addSipDomain({
    domainName: DOMAIN,
    voiceUrl: `${appUrl}/sip-outbound`,
    voiceStatusCallbackUrl: `${appUrl}/call-status`,
  });
  const bare = state.addSipDomain({ domainName: BARE_DOMAIN });
  const list = state.addCredentialList("relay");
  state.addCredential(list.sid, CREDS.username, CREDS.password);
  state.mapCredentialList("auth-calls", domain.sid, list.sid);
  state.mapCredentialList("auth-calls", bare.sid, list.sid);
  calls = await startTwilioSimCalls({ state });
  relay = await SimSip.start();
}, 30_000);

afterAll(async () => {
  for (const p of peers) p.close();
  await calls?.close();
  await relay?.close();
  await new Promise<void>((r) => server.close(() => r()));
});

/** The relay's outbound INVITE to `number` at `domain`, through the simulator as its proxy. */
async function invite(
  number: string,
  domain: string,
  creds: { username: string; password: string } | undefined,
): Promise<{ dialog?: Srf.Dialog; status?: number; peer: RtpPeer; challenged: boolean }> {
  const peer = await RtpPeer.open();
  peers.push(peer);
  let challenged = false;
  const opts: Srf.CreateUACOptions = {
    localSdp: peer.sdp({ codec: "PCMU" }),
    proxy: `sip:127.0.0.1:${calls.sipPort}`,
    headers: {
      From: `<sip:${CREDS.username}@${domain}>`,
      "X-GoSIP-Device": "dev_alice",
    },
  };
  if (creds) opts.auth = creds;
  const createUac = relay.srf.createUAC.bind(relay.srf) as unknown as (
    uri: string,
    o: Srf.CreateUACOptions,
    cbs: { cbProvisional: (res: Srf.SrfResponse) => void },
  ) => Promise<Srf.Dialog>;
  try {
    const dialog = await createUac(`sip:${number}@${domain}`, opts, {
      cbProvisional: () => undefined,
    });
    return { dialog, peer, challenged: true };
  } catch (err) {
    const status = sipStatusOf(err);
    if (status === 407) challenged = true;
    return { peer, challenged, ...(status !== undefined ? { status } : {}) };
  }
}

describe("the simulator's SIP Domain", () => {
  it("challenges with 407 (realm sip.twilio.com, MD5, qop=auth) and refuses wrong credentials with 403", async () => {
    const none = await invite("+12025550100", DOMAIN, undefined);
    expect(none.status).toBe(407);
    const wrong = await invite("+12025550100", DOMAIN, { username: CREDS.username, password: "nope" });
    expect(wrong.status).toBe(403);
    const unknownUser = await invite("+12025550100", DOMAIN, {
      username: "someone",
      password: CREDS.password,
    });
    expect(unknownUser.status).toBe(403);
    const otherDomain = await invite("+12025550100", "not-ours.sip.twilio.com", CREDS);
    expect(otherDomain.status).toBe(403);
    expect(posted.filter((p) => p.path === "/sip-outbound")).toHaveLength(0);
  });

  it("a Domain without a Voice URL answers 404 after a successful 407", async () => {
    const r = await invite("+12025550100", BARE_DOMAIN, CREDS);
    expect(r.status).toBe(404);
    expect(calls.domain.refusals.at(-1)).toMatchObject({ status: 404 });
  });

  it("runs the Voice URL's <Dial><Number>: audio both ways through the anchor, BYE from the relay ends it", async () => {
    calls.pstn.set("+12025550177", { outcome: "answer", ringMs: 200, toneHz: 1000 });
    const nextParty = calls.pstn.nextParty();
    const r = await invite("+12025550177", DOMAIN, CREDS);
    expect(r.dialog).toBeDefined();
    const party = await nextParty;
    await party.bridged;
    expect(party.info.callerId).toBe(DID);
    const [webhook] = posted.filter((p) => p.path === "/sip-outbound");
    expect(webhook?.signatureOk).toBe(true);
    expect(webhook?.params).toMatchObject({
      AccountSid: ACCOUNT,
      Direction: "inbound",
      From: `sip:${CREDS.username}@${DOMAIN}`,
      To: `sip:+12025550177@${DOMAIN}`,
      SipDomain: DOMAIN,
      SipUsername: CREDS.username,
      "SipHeader_X-GoSIP-Device": "dev_alice",
    });
    expect(webhook?.params.SipDomainSid).toMatch(/^SD[0-9a-f]{32}$/);
    expect(webhook?.params.SipCallId).toBeTruthy();

    // The relay's side plays 440 Hz while the party plays 1 kHz.
    const dialog = r.dialog as Srf.Dialog;
    const relaySends = r.peer.sendTone(440, 1500, sdpMediaTarget(dialog.remote.sdp));
    const heardByParty = await party.talk(1500);
    await relaySends;
    expect(heardByParty.heardHz).toBeGreaterThan(430);
    expect(heardByParty.heardHz).toBeLessThan(450);
    const heardByRelay = r.peer.received();
    expect(heardByRelay.frequency).toBeGreaterThan(990);
    expect(heardByRelay.frequency).toBeLessThan(1010);

    dialog.destroy();
    const call = calls.domain.calls.at(-1);
    expect(await call?.done).toBe("completed");
    await party.ended;
    expect(party.endedBy).toBe("twilio");
    const status = posted.filter((p) => p.path === "/call-status").at(-1);
    expect(status?.params).toMatchObject({ CallStatus: "completed", CallSid: call?.callSid });
  });

  it("media Twilio cannot take is refused with 488: no G.711, or SRTP over plain UDP", () => {
    const offer = (m: string): string => `v=0\r\nc=IN IP4 127.0.0.1\r\n${m}\r\na=sendrecv\r\n`;
    expect(mediaProblem(offer("m=audio 4000 RTP/AVP 0 101"))).toBeUndefined();
    expect(mediaProblem(offer("m=audio 4000 RTP/AVP 8"))).toBeUndefined();
    expect(mediaProblem(offer("m=audio 4000 RTP/AVP 9 101"))).toMatch(/PCMU\/PCMA/);
    expect(mediaProblem(offer("m=audio 4000 RTP/SAVP 0"))).toMatch(/32209/);
    expect(mediaProblem("v=0\r\n")).toMatch(/no audio/);
  });

  it("a busy number with answerOnBridge: the relay's INVITE gets 486", async () => {
    calls.pstn.set("+12025550188", { outcome: "busy", ringMs: 100 });
    const r = await invite("+12025550188", DOMAIN, CREDS);
    expect(r.status).toBe(486);
  });
});
