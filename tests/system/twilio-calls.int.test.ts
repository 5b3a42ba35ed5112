/**
 * Calls through the Twilio simulator, every part real and on loopback: the Node edge pointed at the
 * simulator's REST server (TWILIO_API_BASE, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), `npm run relay` as a
 * child with rtpengine, baresip as desk phone 101, and the simulator's call side playing Twilio: it
 * posts the DID's signed voice webhook, runs the edge's TwiML (<Dial><Sip> into the relay with the
 * inbound credentials, <Record> for voicemail), and acts as the SIP Domain for the phone's outbound
 * calls (407, the sip-outbound webhook, <Dial callerId><Number> to a simulated PSTN party with real RTP).
 *
 * What a user would notice: the phone rang and each side heard the other; the call history says
 * answered; an unanswered call left a voicemail whose audio GoSIP stored and whose transcript arrived; a
 * call the phone dialled reached the outside number with audio both ways.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort } from "../../relay/src/pbx/media/rtpengine-process.ts";
import { dominantFrequency } from "../../relay/src/testing/rtp-audio.ts";
import { type FullTwilioSim, startFullTwilioSim } from "../twilio-sim/index.ts";
import {
  BaresipPhone,
  type CreatedDevice,
  freeTcpPort,
  RelayProcess,
  SIP_DOMAIN,
  SystemEdge,
  until,
  wait,
} from "./support.ts";

const ACCOUNT_SID = "AC7e57ca11c0ffee7e57ca11c0ffee7e57";
const AUTH_TOKEN = "feedfacefeedfacefeedfacefeedface";
const DID = "+15551230001";
const INBOUND = { username: "twilio-inbound", password: "inbound-secret-sim" };
const DOMAIN_CREDS = { username: "gosip-relay", password: "domain-secret-sim" };
const OUTSIDE = "+12025550123";

interface CdrJson {
  id: string;
  direction: string;
  from: string;
  to: string;
  deviceId: string | null;
  status: string;
  disposition: string | null;
  durationSeconds: number;
  twilioCallSid: string | null;
}

interface VoicemailJson {
  id: string;
  fromNumber: string;
  durationSeconds: number;
  audioStatus: string;
  contentType: string | null;
  sizeBytes: number | null;
  transcript: string | null;
  transcriptStatus: string;
  audioUrl: string | null;
  cdrId: string | null;
}

let sim: FullTwilioSim;
let edge: SystemEdge;
let relay: RelayProcess;
let phone: BaresipPhone;
let alice: CreatedDevice;
let didId: string;

async function cdrsWhere(pred: (c: CdrJson) => boolean): Promise<CdrJson[]> {
  const page = await edge.ok<{ items: CdrJson[] }>("GET", "/api/cdrs?limit=100");
  return page.items.filter(pred);
}

async function voicemails(): Promise<VoicemailJson[]> {
  return (await edge.ok<{ items: VoicemailJson[] }>("GET", "/api/voicemails?limit=100")).items;
}

beforeAll(async () => {
  sim = await startFullTwilioSim({
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    calls: { transcriptionDelayMs: 500 },
  });
  edge = await SystemEdge.start({
    env: {
      TWILIO_API_BASE: sim.rest.baseUrl,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    },
  });
  await edge.signInAdmin();
  const relaySipPort = await freeUdpPort("127.0.0.1");
  await edge.ok("PUT", "/api/settings/relay", {
    v: 1,
    publicSipUri: `sip:127.0.0.1:${relaySipPort};transport=udp`,
    inboundUsername: INBOUND.username,
    inboundPassword: INBOUND.password,
  });
  await edge.ok("PUT", "/api/settings/twilio", {
    v: 1,
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    sipDomainName: SIP_DOMAIN,
    sipUsername: DOMAIN_CREDS.username,
    sipPassword: DOMAIN_CREDS.password,
  });
  alice = await edge.createDevice("Alice desk", "101");
  const did = await edge.ok<{ id: string }>("POST", "/api/dids", {
    e164: DID,
    label: "Main line",
    defaultTargets: { v: 1, deviceIds: [alice.id] },
  });
  didId = did.id;

  // The simulated account: the DID pointed at the edge, the SIP Domain with the relay's credentials.
  const hooks = `${edge.url}/api/webhooks/twilio`;
  sim.rest.state.addIncomingNumber({
    phoneNumber: DID,
    voiceUrl: `${hooks}/voice`,
    statusCallback: `${hooks}/call-status`,
  });
  const domain = sim.rest.state.addSipDomain({
    domainName: SIP_DOMAIN,
    voiceUrl: `${hooks}/sip-outbound`,
    voiceStatusCallbackUrl: `${hooks}/call-status`,
  });
  const list = sim.rest.state.addCredentialList("GoSIP relay");
  sim.rest.state.addCredential(list.sid, DOMAIN_CREDS.username, DOMAIN_CREDS.password);
  sim.rest.state.mapCredentialList("auth-calls", domain.sid, list.sid);

  const { token } = await edge.ok<{ token: string }>("POST", "/api/relay/tokens", { name: "sim relay" });
  relay = new RelayProcess({
    edgeUrl: edge.url,
    token,
    dataDir: `${edge.dataDir}/relay`,
    sipPort: relaySipPort,
    metricsPort: await freeTcpPort(),
    twilioSipProxy: `127.0.0.1:${sim.calls.sipPort}`,
    rtpPorts: [33500, 33900],
  });
  await relay.start();
  await until("the relay's link to the edge", 20_000, async () => {
    const s = await edge.ok<{ connected: boolean }>("GET", "/api/relay/status");
    return s.connected ? s : undefined;
  });
  phone = await BaresipPhone.start(alice, relaySipPort, 440);
  await until("the phone's registration on the edge", 20_000, async () => {
    const d = await edge.ok<{ registrations: { online: boolean }[] }>("GET", `/api/devices/${alice.id}`);
    return d.registrations.some((r) => r.online) ? d : undefined;
  });
}, 180_000);

afterAll(async () => {
  await phone?.stop();
  await relay?.stop();
  await sim?.close();
  await edge?.close();
});

describe("calls through the Twilio simulator", () => {
  it("an inbound call rings the phone, it answers, each side hears the other, the caller hangs up: CDR answered", async () => {
    await phone.clearRecordings();
    const call = await sim.calls.driver.placeInboundCall({ from: "+15557654321", to: DID });
    const bridge = await call.nextBridge(20_000).catch((err: unknown) => {
      throw new Error(
        `${String(err)}\ntranscript: ${JSON.stringify(call.transcript.entries).slice(0, 3000)}\nrelay: ${relay.output.slice(-1500)}`,
      );
    });
    expect(bridge.kind).toBe("sip");
    const talk = await call.talk(1000, 2000);
    expect(talk.heardHz, phone.output.slice(-1500)).toBeGreaterThan(430);
    expect(talk.heardHz).toBeLessThan(450);
    expect(talk.heardPackets).toBeGreaterThan(talk.sent * 0.8);
    await call.hangup();
    const result = await call.done;
    expect(result.status).toBe("completed");
    expect(result.transcript.story()).toEqual(["Dial"]);
    const [voice] = result.transcript.webhooks("voice");
    expect(voice?.status).toBe(200);
    const dialed = result.transcript.of("sip").filter((s) => s.label === "INVITE");
    expect(dialed).toHaveLength(1);

    const cdr = await until("the ended CDR of the call", 20_000, async () => {
      const [c] = await cdrsWhere((c) => c.twilioCallSid === result.callSid && c.status === "ended");
      return c;
    });
    expect(cdr).toMatchObject({ direction: "inbound", disposition: "answered", deviceId: alice.id });
    expect(cdr.from).toBe("+15557654321");
    expect(await cdrsWhere((c) => c.twilioCallSid === result.callSid)).toHaveLength(1);

    await wait(300);
    const f = dominantFrequency(await phone.lastHeard());
    expect(f).toBeGreaterThan(990);
    expect(f).toBeLessThan(1010);
  });

  it("nobody answers: after the ring time the caller leaves a voicemail; GoSIP stores its audio and the transcript", async () => {
    const caller = "+15550009999";
    await edge.ok("POST", "/api/routes", {
      didId,
      name: "short ring for the voicemail test",
      rule: {
        v: 1,
        conditions: [{ type: "callerId", match: { by: "exact", numbers: [caller] } }],
        action: { type: "ring", deviceIds: [alice.id], timeoutSeconds: 5, onNoAnswer: "voicemail" },
      },
    });
    // Keep a copy of what the caller said: GoSIP deletes the recording from Twilio once it has it.
    const said = new Map<string, Uint8Array>();
    const keep = (r: { sid: string }): void => {
      const audio = sim.rest.state.recordingAudio.get(r.sid);
      if (audio) said.set(r.sid, audio);
    };
    sim.rest.state.events.on("recording-created", keep);
    await phone.command("answermode", "manual");
    try {
      const call = await sim.calls.driver.placeInboundCall({
        from: caller,
        to: DID,
        speak: { seconds: 6, transcript: "Hi, it is Carol, please call me back." },
      });
      const result = await call.settled();
      const story = result.transcript.story();
      expect(story[0]).toBe("Dial");
      expect(story).toContain("Record");
      expect(result.transcript.of("dial-result")[0]?.dialCallStatus).toBe("no-answer");
      // The phone did ring: the relay answered the INVITE with a provisional response.
      expect(result.transcript.of("sip").some((s) => s.direction === "in" && s.status === 180)).toBe(true);
      const [record] = result.transcript.of("record");
      expect(record?.status).toBe("completed");
      const recordingSid = record?.recordingSid ?? "";
      expect(result.transcript.webhooks("recording-status")[0]?.status).toBe(200);

      const vm = await until("the stored voicemail", 30_000, async () => {
        const v = (await voicemails()).find((x) => x.fromNumber === caller && x.audioStatus === "stored");
        return v;
      });
      expect(vm.durationSeconds).toBe(6);
      expect(vm.audioUrl).toBe(`/api/voicemails/${vm.id}/audio`);
      const res = await fetch(`${edge.url}${vm.audioUrl}`, { headers: { cookie: edge.session } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/audio\/(x-)?wav/);
      const stored = new Uint8Array(await res.arrayBuffer());
      const original = said.get(recordingSid) ?? new Uint8Array(0);
      expect(stored.byteLength).toBeGreaterThan(6 * 8000);
      expect(Buffer.from(stored).equals(Buffer.from(original))).toBe(true);
      const withText = await until("the transcript on the voicemail", 30_000, async () => {
        const v = (await voicemails()).find((x) => x.id === vm.id);
        return v?.transcript ? v : undefined;
      });
      expect(withText.transcript).toBe("Hi, it is Carol, please call me back.");
    } finally {
      sim.rest.state.events.off("recording-created", keep);
      await phone.command("answermode", "auto");
    }
  });

  it("a message under 3 s is discarded: no voicemail is kept", async () => {
    const caller = "+15550008888";
    await edge.ok("POST", "/api/routes", {
      didId,
      name: "voicemail only for the short-message test",
      rule: {
        v: 1,
        conditions: [{ type: "callerId", match: { by: "exact", numbers: [caller] } }],
        action: { type: "voicemail" },
      },
    });
    const before = (await voicemails()).length;
    const call = await sim.calls.driver.placeInboundCall({ from: caller, to: DID, speak: { seconds: 2 } });
    const result = await call.settled();
    expect(result.transcript.story()).toContain("Record");
    expect(result.transcript.webhooks("recording-status")[0]?.status).toBe(200);
    await wait(2500);
    expect((await voicemails()).filter((v) => v.fromNumber === caller)).toHaveLength(0);
    expect((await voicemails()).length).toBe(before);
  });

  it("the phone dials out: through the relay to the SIP Domain, the PSTN party answers, audio both ways: CDR outbound answered", async () => {
    sim.calls.pstn.set(OUTSIDE, { outcome: "answer", ringMs: 300, toneHz: 1000 });
    await phone.clearRecordings();
    const nextParty = sim.calls.pstn.nextParty(20_000);
    const nextDomainCall = sim.calls.domain.nextCall(20_000);
    await phone.command("dial", `sip:2025550123@127.0.0.1:${relay.opts.sipPort};transport=udp`);
    const domainCall = await nextDomainCall.catch((err: unknown) => {
      throw new Error(
        `${String(err)}\nrefusals: ${JSON.stringify(sim.calls.domain.refusals)}\nrelay: ${relay.output.slice(-1500)}`,
      );
    });
    expect(domainCall.requestUri).toMatch(/^sip:\+12025550123@gosip-system\.sip\.twilio\.com/);
    expect(domainCall.username).toBe(DOMAIN_CREDS.username);
    expect(domainCall.xHeaders["X-GoSIP-Device"]).toBe(alice.id);
    const party = await nextParty.catch((err: unknown) => {
      throw new Error(
        `${String(err)}\ntranscript: ${JSON.stringify(domainCall.transcript.entries).slice(0, 3000)}`,
      );
    });
    expect(party.info.number).toBe(OUTSIDE);
    expect(party.info.callerId).toBe(DID);
    await party.bridged;
    const talk = await party.talk(2000);
    expect(talk.heardHz, phone.output.slice(-1500)).toBeGreaterThan(430);
    expect(talk.heardHz).toBeLessThan(450);
    expect(talk.heardPackets).toBeGreaterThan(talk.sent * 0.8);
    party.end("party");
    const status = await domainCall.done;
    expect(status).toBe("completed");
    const [webhook] = domainCall.transcript.webhooks("voice");
    expect(webhook?.params).toMatchObject({
      SipDomain: SIP_DOMAIN,
      "SipHeader_X-GoSIP-Device": alice.id,
      To: `sip:${OUTSIDE}@${SIP_DOMAIN}`,
    });
    expect(webhook?.status).toBe(200);

    const cdr = await until("the outbound CDR", 20_000, async () => {
      const [c] = await cdrsWhere((c) => c.direction === "outbound" && c.status === "ended");
      return c;
    });
    expect(cdr).toMatchObject({ to: OUTSIDE, deviceId: alice.id, disposition: "answered" });
    await wait(300);
    const f = dominantFrequency(await phone.lastHeard());
    expect(f).toBeGreaterThan(990);
    expect(f).toBeLessThan(1010);
  });
});
