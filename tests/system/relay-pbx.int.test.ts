/**
 * The relay PBX as a user meets it, every part real and on loopback: the Node
 * edge, `npm run relay` as a child process (built-in engine, PBX app, rtpengine
 * child) linked over the sync WebSocket, baresip as the desk phone (registers
 * with its device's digest credentials, auto-answers, plays 440 Hz, records what
 * it hears), and a SIP engine + drachtio-srf app playing Twilio (the inbound
 * trunk answering the relay's 407, and the SIP Domain answering outbound calls
 * with 407 then 200), whose media plays 1 kHz and analyses what it hears.
 *
 * Each test asserts what someone would notice: the phone rang and answered,
 * each side heard the other's tone, the call is on the call history with the
 * right disposition, the edge going away does not drop a call or lose its
 * record, a relay restart keeps the phone reachable.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readWav } from "../../relay/src/pbx/media/recording-file.ts";
import { freeUdpPort } from "../../relay/src/pbx/media/rtpengine-process.ts";
import { dominantFrequency } from "../../relay/src/testing/rtp-audio.ts";
import {
  BaresipPhone,
  type CreatedDevice,
  freeTcpPort,
  RelayProcess,
  SIP_DOMAIN,
  SystemEdge,
  TwilioSide,
  until,
  wait,
} from "./support.ts";

const INBOUND = { username: "twilio-inbound", password: "inbound-secret-system" };
const DOMAIN_CREDS = { username: "gosip-relay", password: "domain-secret-system" };

interface CdrJson {
  id: string;
  direction: string;
  from: string;
  to: string;
  deviceId: string | null;
  status: string;
  disposition: string | null;
  durationSeconds: number;
  hangupBy: string | null;
  twilioCallSid: string | null;
  sipStatus: number | null;
}

let edge: SystemEdge;
let relay: RelayProcess;
let twilio: TwilioSide;
let phone: BaresipPhone;
let alice: CreatedDevice;

async function cdrsWhere(pred: (c: CdrJson) => boolean): Promise<CdrJson[]> {
  const page = await edge.ok<{ items: CdrJson[] }>("GET", "/api/cdrs?limit=100");
  return page.items.filter(pred);
}

/** The one ended CDR of a Twilio call, once the edge has it. */
function endedCdr(callSid: string, timeoutMs = 20_000): Promise<CdrJson> {
  return until(`the ended CDR of ${callSid}`, timeoutMs, async () => {
    const [cdr] = await cdrsWhere((c) => c.twilioCallSid === callSid && c.status === "ended");
    return cdr;
  });
}

async function registrations(deviceId: string): Promise<{ online: boolean; userAgent: string | null }[]> {
  const d = await edge.ok<{ registrations: { online: boolean; userAgent: string | null }[] }>(
    "GET",
    `/api/devices/${deviceId}`,
  );
  return d.registrations;
}

beforeAll(async () => {
  edge = await SystemEdge.start();
  await edge.signInAdmin();
  twilio = await TwilioSide.start(DOMAIN_CREDS);
  await edge.ok("PUT", "/api/settings/relay", {
    v: 1,
    inboundUsername: INBOUND.username,
    inboundPassword: INBOUND.password,
  });
  await edge.ok("PUT", "/api/settings/twilio", {
    v: 1,
    accountSid: `AC${"0".repeat(31)}1`,
    authToken: "not-a-real-token",
    sipDomainName: SIP_DOMAIN,
    sipUsername: DOMAIN_CREDS.username,
    sipPassword: DOMAIN_CREDS.password,
  });
  alice = await edge.createDevice("Alice desk", "101");
  const { token } = await edge.ok<{ token: string }>("POST", "/api/relay/tokens", {
    name: "system test relay",
  });
  relay = new RelayProcess({
    edgeUrl: edge.url,
    token,
    dataDir: `${edge.dataDir}/relay`,
    sipPort: await freeUdpPort("127.0.0.1"),
    metricsPort: await freeTcpPort(),
    twilioSipProxy: `127.0.0.1:${twilio.sipPort}`,
    rtpPorts: [33000, 33400],
  });
  await relay.start();
  await until("the relay's link to the edge", 20_000, async () => {
    const s = await edge.ok<{ connected: boolean }>("GET", "/api/relay/status");
    return s.connected ? s : undefined;
  });
  phone = await BaresipPhone.start(alice, relay.opts.sipPort, 440);
  await until("the phone's registration on the edge", 20_000, async () => {
    const regs = await registrations(alice.id);
    return regs.some((r) => r.online) ? regs : undefined;
  });
}, 180_000);

afterAll(async () => {
  await phone?.stop();
  await relay?.stop();
  await twilio?.close();
  await edge?.close();
});

describe("the relay PBX with the edge, a real phone and Twilio's side", () => {
  it("the phone registered with its digest credentials; the edge shows the registration", async () => {
    const regs = await registrations(alice.id);
    expect(regs).toHaveLength(1);
    expect(regs[0]?.online).toBe(true);
    expect(regs[0]?.userAgent ?? "").toMatch(/baresip/i);
    expect((await relay.metrics()).gosip_registrations).toBe(1);
  });

  it("Twilio calls extension 101: the phone answers, each side hears the other, the CDR says answered", async () => {
    await phone.clearRecordings();
    const leg = await twilio.callRelay(relay.opts.sipPort, "101", {
      from: "+15557654321",
      callSid: "CAsystem0001",
      creds: INBOUND,
    });
    await wait(300);
    const live = await until("the live call on the edge", 10_000, async () => {
      const [c] = await cdrsWhere((c) => c.twilioCallSid === "CAsystem0001" && c.status === "answered");
      return c;
    });
    expect(live.deviceId).toBe(alice.id);

    const talk = await twilio.talk(leg, 1000, 2000);
    expect(talk.heardHz, phone.output.slice(-2000)).toBeGreaterThan(430);
    expect(talk.heardHz).toBeLessThan(450);
    expect(talk.heardPackets).toBeGreaterThan(talk.sent * 0.8);
    leg.dialog.destroy();

    const cdr = await endedCdr("CAsystem0001");
    expect(cdr).toMatchObject({
      direction: "inbound",
      disposition: "answered",
      deviceId: alice.id,
      hangupBy: "caller",
      from: "+15557654321",
    });
    expect(cdr.durationSeconds).toBeGreaterThanOrEqual(2);
    const detail = await edge.ok<{ ladder: { steps: { label: string; leg: string }[] } | null }>(
      "GET",
      `/api/cdrs/${cdr.id}`,
    );
    const labels = (detail.ladder?.steps ?? []).map((s) => s.label);
    expect(labels).toContain("INVITE");
    expect(labels.some((l) => l.startsWith("200"))).toBe(true);
    expect(labels).toContain("BYE");

    await wait(300);
    const heard = await phone.lastHeard();
    expect(heard.length).toBeGreaterThan(8000);
    const f = dominantFrequency(heard);
    expect(f).toBeGreaterThan(990);
    expect(f).toBeLessThan(1010);
    expect((await relay.metrics()).gosip_rtpengine_sessions).toBe(0);
  });

  it("the phone dials a national number: out through TWILIO_SIP_PROXY to the SIP Domain with its credentials, audio both ways", async () => {
    const next = twilio.nextDomainCall();
    await phone.command("dial", `sip:2025550123@127.0.0.1:${relay.opts.sipPort};transport=udp`);
    const call = await next.catch((err: unknown) => {
      throw new Error(
        `${String(err)}\nphone: ${phone.output.slice(-1500)}\nrelay: ${relay.output.slice(-1500)}`,
      );
    });
    expect(call.requestUri).toMatch(new RegExp(`^sip:\\+12025550123@${SIP_DOMAIN.replace(/\./g, "\\.")}`));
    expect(call.from).toContain(alice.sipUsername);
    expect(call.headers["x-gosip-device"]).toBe(alice.id);

    const talk = await twilio.talk(call.leg, 1000, 1500);
    expect(talk.heardHz).toBeGreaterThan(430);
    expect(talk.heardHz).toBeLessThan(450);
    call.leg.dialog.destroy();
    const cdr = await until("the outbound CDR", 20_000, async () => {
      const [c] = await cdrsWhere((c) => c.direction === "outbound" && c.status === "ended");
      return c;
    });
    expect(cdr).toMatchObject({
      to: "+12025550123",
      deviceId: alice.id,
      disposition: "answered",
      hangupBy: "callee",
    });
  });

  it("recording on demand from the API: a stereo WAV of the call in GoSIP's storage, each side's tone on its channel", async () => {
    const leg = await twilio.callRelay(relay.opts.sipPort, "101", {
      from: "+15550005555",
      callSid: "CAsystem0006",
      creds: INBOUND,
    });
    const live = await until("the live call on the edge", 10_000, async () => {
      const [c] = await cdrsWhere((c) => c.twilioCallSid === "CAsystem0006" && c.status === "answered");
      return c;
    });
    const started = await edge.api("POST", `/api/cdrs/${live.id}/recording`, { action: "start" });
    expect(started.status, JSON.stringify(started.json)).toBe(200);
    await twilio.talk(leg, 1000, 3000);
    leg.dialog.destroy();
    const rec = await until("the stored recording", 30_000, async () => {
      const page = await edge.ok<{
        items: {
          id: string;
          status: string;
          cdrId: string | null;
          audioUrl: string | null;
          durationSeconds: number | null;
        }[];
      }>("GET", "/api/recordings");
      return page.items.find((r) => r.status === "stored");
    });
    expect(rec.cdrId).toBe(live.id);
    expect(rec.durationSeconds).toBeGreaterThanOrEqual(2);
    const audio = await fetch(`${edge.url}/api/recordings/${rec.id}/audio`, {
      headers: { cookie: edge.session },
    });
    expect(audio.status).toBe(200);
    expect(audio.headers.get("content-type")).toMatch(/audio\/(x-)?wav/);
    const wav = readWav(Buffer.from(await audio.arrayBuffer()));
    expect(wav.sampleRate).toBe(8000);
    const freqs = wav.channels.map((ch) => dominantFrequency(ch));
    // one channel carries the caller (1 kHz), the other the phone (440 Hz)
    expect(freqs.some((f) => f !== undefined && Math.abs(f - 1000) < 10)).toBe(true);
    expect(freqs.some((f) => f !== undefined && Math.abs(f - 440) < 10)).toBe(true);
    // the relay keeps no copy once the edge has it
    await until("the relay's local copy to go", 10_000, async () =>
      (await relay.localRecordings()).length === 0 ? true : undefined,
    );
  });

  it("the edge goes away mid-call: the call goes on, and its CDR arrives exactly once when the edge is back", async () => {
    const leg = await twilio.callRelay(relay.opts.sipPort, "101", {
      from: "+15550001111",
      callSid: "CAsystem0002",
      creds: INBOUND,
    });
    await wait(300);
    await edge.down();
    await wait(1500);
    const during = await twilio.talk(leg, 1000, 1500);
    expect(during.heardHz).toBeGreaterThan(430);
    expect(during.heardPackets).toBeGreaterThan(during.sent * 0.8);
    leg.dialog.destroy();
    await wait(500);
    expect((await relay.metrics()).gosip_outbox_depth).toBeGreaterThan(0);

    await edge.up();
    const cdr = await endedCdr("CAsystem0002", 40_000);
    expect(cdr.disposition).toBe("answered");
    await until("the outbox to drain", 20_000, async () =>
      (await relay.metrics()).gosip_outbox_depth === 0 ? true : undefined,
    );
    expect(await cdrsWhere((c) => c.twilioCallSid === "CAsystem0002")).toHaveLength(1);
  });

  it("a relay restart keeps the phone's registration: it is reachable again without registering anew", async () => {
    await relay.stop("SIGTERM");
    await relay.start();
    await until("the relay's link to the edge", 20_000, async () => {
      const s = await edge.ok<{ connected: boolean }>("GET", "/api/relay/status");
      return s.connected ? s : undefined;
    });
    expect((await relay.metrics()).gosip_registrations).toBe(1);
    const leg = await twilio.callRelay(relay.opts.sipPort, "101", {
      from: "+15550002222",
      callSid: "CAsystem0003",
      creds: INBOUND,
    });
    const talk = await twilio.talk(leg, 1000, 1000);
    expect(talk.heardHz).toBeGreaterThan(430);
    leg.dialog.destroy();
    expect((await endedCdr("CAsystem0003")).disposition).toBe("answered");
    expect((await registrations(alice.id)).filter((r) => r.online)).toHaveLength(1);
  });

  it("kill -9 of rtpengine mid-call ends the call with a CDR; the next call works once it is back", async () => {
    const leg = await twilio.callRelay(relay.opts.sipPort, "101", {
      from: "+15550003333",
      callSid: "CAsystem0004",
      creds: INBOUND,
    });
    await wait(300);
    const pid = await relay.rtpenginePid();
    expect(pid).toBeDefined();
    process.kill(pid ?? 0, "SIGKILL");
    await leg.ended;
    const cdr = await endedCdr("CAsystem0004");
    expect(cdr.hangupBy).toBe("relay");

    await until("rtpengine to be back", 20_000, async () => {
      const p = await relay.rtpenginePid();
      return p !== undefined && p !== pid ? p : undefined;
    });
    const next = await twilio.callRelay(relay.opts.sipPort, "101", {
      from: "+15550004444",
      callSid: "CAsystem0005",
      creds: INBOUND,
    });
    const talk = await twilio.talk(next, 1000, 1000);
    expect(talk.heardHz).toBeGreaterThan(430);
    next.dialog.destroy();
    expect((await endedCdr("CAsystem0005")).disposition).toBe("answered");
  });
});
