// A rig for call tests with real processes on loopback: the relay (the built-in engine + the PBX's auth chain
// and calls feature as an unmodified drachtio-srf app) with a real rtpengine, and a second engine ("world")
// whose srf app plays everyone outside the relay: the phones (UAS and UAC), Twilio placing inbound calls
// (answering the relay's 407 with the inbound credentials) and the Twilio SIP Domain for outbound calls
// (407, then 200). Media is RtpPeer: real RTP with tones, so audio is checked as audio.
import { computeDeviceHa1, type SyncDevice } from "@gosip/drizzle";
import type Srf from "drachtio-srf";
import pino from "pino";
import { startTestEngine, type TestEngine } from "../../../test/harness.ts";
import { RtpPeer, sdpMediaTarget } from "../../testing/rtp-peer.ts";
import { DigestAuth } from "../auth/digest.ts";
import { authChain } from "../auth/middleware.ts";
import { type CallMedia, type Calls, installCalls, type MediaSupervisor } from "../calls/index.ts";
import type { Contact, LocationService, PbxContext } from "../context.ts";
import { MediaService } from "../media/media.ts";
import { type RtpengineProcess, startRtpengine } from "../media/rtpengine-process.ts";
import { FakeDirectory, MemoryCommandBus, MemoryEventSink, testSettings } from "./fakes.ts";

type SrfRequest = Srf.SrfRequest;
type SrfResponse = Srf.SrfResponse;
type Dialog = Srf.Dialog;

export const DOMAIN = "gosip-test.sip.twilio.com";
export const DOMAIN_CREDS = { username: "gosip-relay", password: "domain-secret-42" };
export const INBOUND_CREDS = { username: "twilio-inbound", password: "inbound-secret-42" };

/** Contacts put in by the test (the registrar's job in production). */
export class FakeLocation implements LocationService {
  private readonly contacts = new Map<string, Contact[]>();
  add(contact: Contact): void {
    this.contacts.set(contact.deviceId, [contact, ...(this.contacts.get(contact.deviceId) ?? [])]);
  }
  clear(): void {
    this.contacts.clear();
  }
  contactsOf(deviceId: string): readonly Contact[] {
    return this.contacts.get(deviceId) ?? [];
  }
  all(): readonly Contact[] {
    return [...this.contacts.values()].flat();
  }
}

/** How a phone answers an INVITE the relay sends it. */
export type PhoneBehaviour =
  /** nat: its RTP comes from another port than its SDP names (a phone behind NAT). */
  | { kind: "answer"; afterMs: number; nat?: boolean; earlyMedia?: boolean }
  | { kind: "reject"; status: number; afterMs?: number }
  | { kind: "ring" };

/** One SIP leg ending in the world app, with its RTP endpoint. */
export interface Leg {
  dialog: Dialog;
  peer: RtpPeer;
  /** The relay's SDP as this leg last saw it. */
  remoteSdp(): string;
  /** Resolves when the relay BYEs this leg. */
  byed: Promise<void>;
}

export interface Phone {
  readonly user: string;
  readonly device: SyncDevice;
  behaviour: PhoneBehaviour;
  /** INVITEs received / CANCELs received. */
  invites: number;
  cancels: number;
  /** Answered legs, newest last. */
  legs: Leg[];
  /** Resolves with the next answered leg. */
  nextLeg(): Promise<Leg>;
}

function userOf(uri: string): string {
  return /^sips?:([^@;]+)@/i.exec(uri)?.[1] ?? "";
}

function hostOf(uri: string): string {
  return /^sips?:(?:[^@]+@)?([^:;>]+)/i.exec(uri)?.[1] ?? "";
}

function wait(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface DomainCall {
  req: SrfRequest;
  leg: Leg;
}

export interface CallRig {
  relay: TestEngine;
  world: TestEngine;
  worldSrf: Srf;
  rtpengine: RtpengineProcess;
  media: MediaService;
  directory: FakeDirectory;
  location: FakeLocation;
  events: MemoryEventSink;
  commands: MemoryCommandBus;
  calls: Calls;
  /** The relay's share of each call's setup (INVITE in → INVITE out), ms, in call order. */
  setupTimes: number[];
  /** How long each rtpengine offer took (part of the setup share), ms. */
  offerTimes: number[];
  /** A phone at the world engine, registered (in the fake location) as a contact of `device`. */
  phone(device: SyncDevice, behaviour: PhoneBehaviour, suffix?: string): Phone;
  /** What the SIP Domain does: answer (default) or reject with a status. */
  domain: { behaviour: PhoneBehaviour; invites: SrfRequest[]; calls: DomainCall[]; challenged: number };
  /** Places a call into the relay from the world: as a device (its digest creds) or as Twilio. */
  dial(
    to: string,
    as: { device: SyncDevice; password: string } | { trunk: true; from: string; callSid?: string },
    opts?: { cancelAfterMs?: number },
  ): Promise<Leg>;
  close(): Promise<void>;
}

export interface RigOptions {
  devices: SyncDevice[];
  ringTimeoutSeconds?: number;
  /** Wrap the media service (to inject failures). */
  wrapMedia?: (m: MediaService) => CallMedia;
}

/** A media leg answering `sdpIn` (the far side's SDP) with a fresh RtpPeer. */
async function newLeg(dialog: Dialog, peer: RtpPeer, remote: () => string): Promise<Leg> {
  const byed = new Promise<void>((resolve) => dialog.on("destroy", () => resolve()));
  return { dialog, peer, remoteSdp: remote, byed };
}

export async function startCallRig(opts: RigOptions): Promise<CallRig> {
  const log = pino({ level: process.env.CALLS_LOG ?? "silent" });
  const rtpengine = await startRtpengine({
    interface: "127.0.0.1",
    portMin: 31000,
    portMax: 31999,
    logger: log,
  });
  const media = new MediaService({ ng: rtpengine.ng, logger: log });
  const directory = new FakeDirectory(
    opts.devices,
    testSettings({
      twilioDomain: { name: DOMAIN, ...DOMAIN_CREDS },
      inbound: INBOUND_CREDS,
    }),
  );
  const location = new FakeLocation();
  const events = new MemoryEventSink();
  const commands = new MemoryCommandBus();
  const world = await startTestEngine();
  const relay = await startTestEngine();
  let calls: Calls | undefined;
  const setupTimes: number[] = [];
  const offerTimes: number[] = [];
  const timedMedia = (m: CallMedia): CallMedia => ({
    offer: async (p) => {
      const t = performance.now();
      const r = await m.offer(p);
      offerTimes.push(performance.now() - t);
      return r;
    },
    answer: (p) => m.answer(p),
    delete: (id) => m.delete(id),
    stats: (id) => m.stats(id),
  });
  const ctx: PbxContext = {
    log,
    // The calls feature never touches the database.
    db: undefined as unknown as PbxContext["db"],
    directory,
    location,
    events,
    commands,
    local: { host: "127.0.0.1", port: relay.sipPort, hostports: [`udp/127.0.0.1:${relay.sipPort}`] },
    options: {
      twilioSipProxy: world.sipTarget,
      natExpires: 120,
      keepaliveIntervalMs: 30_000,
      recordingDir: "",
      ringTimeoutSeconds: opts.ringTimeoutSeconds ?? 30,
    },
    now: () => Date.now(),
  };
  await relay.connectApp((srf) => {
    for (const mw of authChain(ctx, { authFailed: () => undefined, authSucceeded: () => undefined }))
      srf.use("invite", mw);
    calls = installCalls(srf, ctx, {
      media: timedMedia(opts.wrapMedia ? opts.wrapMedia(media) : media),
      rtpengine: rtpengine as MediaSupervisor,
      onSetup: (ms) => setupTimes.push(ms),
    });
  });
  if (!calls) throw new Error("calls not installed");

  const phones = new Map<string, Phone & { waiters: ((l: Leg) => void)[] }>();
  const domain: CallRig["domain"] = {
    behaviour: { kind: "answer", afterMs: 50 },
    invites: [],
    calls: [],
    challenged: 0,
  };
  const domainAuth = new DigestAuth({ realm: () => "sip.twilio.com" });
  const domainHa1 = computeDeviceHa1(DOMAIN_CREDS.username, "sip.twilio.com", DOMAIN_CREDS.password);
  const peers: RtpPeer[] = [];

  /** Plays a UAS: 180, then answer/reject/ring as told. */
  const uas = async (
    req: SrfRequest,
    res: SrfResponse,
    behaviour: PhoneBehaviour,
    onCancel: () => void,
  ): Promise<Leg | undefined> => {
    let canceled = false;
    req.on("cancel", () => {
      canceled = true;
      onCancel();
    });
    const early = behaviour.kind === "answer" && behaviour.earlyMedia === true;
    const earlyPeer = early ? await RtpPeer.open() : undefined;
    if (earlyPeer) {
      // Twilio's way: 183 with SDP (ringback as early media), then the 200 with the same SDP.
      peers.push(earlyPeer);
      res.send(183, "Session Progress", {
        body: earlyPeer.sdp(),
        headers: { "Content-Type": "application/sdp" },
      });
    } else res.send(180, "Ringing", {});
    if (behaviour.kind === "ring") return undefined;
    await wait(behaviour.afterMs ?? 0);
    if (canceled) return undefined;
    if (behaviour.kind === "reject") {
      res.send(behaviour.status, {});
      return undefined;
    }
    const peer = earlyPeer ?? (await RtpPeer.open({ behindNat: behaviour.nat ?? false }));
    if (!earlyPeer) peers.push(peer);
    let dialog: Dialog;
    try {
      dialog = await worldSrf.createUAS(req, res, { localSdp: peer.sdp() });
    } catch {
      return undefined; // canceled in the meantime
    }
    const leg = await newLeg(dialog, peer, () => dialog.remote.sdp);
    dialog.on("modify", (r: SrfRequest, s: SrfResponse) => {
      // A re-INVITE from the relay: answer in kind (hold → recvonly, resume → sendrecv).
      const dir = /a=(sendonly|inactive)/.exec(r.body)?.[1];
      const answer = peer.sdp({
        direction: dir === "sendonly" ? "recvonly" : dir === "inactive" ? "inactive" : "sendrecv",
      });
      dialog.remote.sdp = r.body;
      dialog.local.sdp = answer;
      s.send(200, { body: answer, headers: { "Content-Type": "application/sdp" } });
    });
    return leg;
  };

  const worldSrf = await world.connectApp((srf) => {
    srf.invite((req, res) => {
      if (hostOf(req.uri) === DOMAIN) {
        void (async () => {
          const outcome = domainAuth.verify(
            { method: "INVITE", uri: req.uri },
            req.get("Proxy-Authorization") || undefined,
            (u) => (u === DOMAIN_CREDS.username ? { ...domainHa1, subject: u } : undefined),
          );
          if (!outcome.ok) {
            domain.challenged++;
            domainAuth.challenge(res, { status: 407 });
            return;
          }
          domain.invites.push(req);
          const leg = await uas(req, res, domain.behaviour, () => undefined);
          if (leg) domain.calls.push({ req, leg });
        })();
        return;
      }
      const phone = phones.get(userOf(req.uri));
      if (!phone) {
        res.send(404);
        return;
      }
      phone.invites++;
      void uas(req, res, phone.behaviour, () => {
        phone.cancels++;
      }).then((leg) => {
        if (!leg) return;
        phone.legs.push(leg);
        for (const w of phone.waiters.splice(0)) w(leg);
      });
    });
  });

  const rig: CallRig = {
    relay,
    world,
    worldSrf,
    rtpengine,
    media,
    directory,
    location,
    events,
    commands,
    calls,
    setupTimes,
    offerTimes,
    domain,
    phone(device, behaviour, suffix = "") {
      const user = `${device.sipUsername}${suffix}`;
      const phone = {
        user,
        device,
        behaviour,
        invites: 0,
        cancels: 0,
        legs: [] as Leg[],
        waiters: [] as ((l: Leg) => void)[],
        nextLeg(): Promise<Leg> {
          return new Promise<Leg>((resolve) => phone.waiters.push(resolve));
        },
      };
      phones.set(user, phone);
      const now = new Date().toISOString();
      location.add({
        deviceId: device.id,
        contactUri: `sip:${user}@127.0.0.1:${world.sipPort}`,
        sourceAddress: "127.0.0.1",
        sourcePort: world.sipPort,
        transport: "udp",
        userAgent: "world-phone",
        instanceId: null,
        callId: null,
        cseq: null,
        expiresAt: new Date(Date.now() + 3600_000).toISOString(),
        lastSeenAt: now,
      });
      return phone;
    },
    async dial(to, as, dialOpts = {}) {
      const peer = await RtpPeer.open();
      peers.push(peer);
      const uri = `sip:${to}@${relay.sipTarget}`;
      const headers: Record<string, string> = {};
      let auth: { username: string; password: string };
      if ("trunk" in as) {
        headers.From = `"${as.from}" <sip:${as.from}@twilio.test>`;
        headers["X-Twilio-CallSid"] = as.callSid ?? "CA0123456789abcdef0123456789abcdef";
        auth = INBOUND_CREDS;
      } else {
        headers.From = `<sip:${as.device.sipUsername}@${relay.sipTarget}>`;
        auth = { username: as.device.sipUsername, password: as.password };
      }
      const createUac = worldSrf.createUAC.bind(worldSrf) as unknown as (
        uri: string,
        o: Srf.CreateUACOptions,
        cb: { cbRequest: (err: unknown, req?: SrfRequest) => void },
      ) => Promise<Dialog>;
      const dialog = await createUac(
        uri,
        { localSdp: peer.sdp(), headers, auth },
        {
          cbRequest: (_err, req) => {
            if (req && dialOpts.cancelAfterMs !== undefined) {
              const r = req;
              setTimeout(() => r.cancel(() => undefined), dialOpts.cancelAfterMs);
            }
          },
        },
      );
      const leg = await newLeg(dialog, peer, () => dialog.remote.sdp);
      dialog.on("modify", (r: SrfRequest, s: SrfResponse) => {
        const dir = /a=(sendonly|inactive)/.exec(r.body)?.[1];
        const answer = peer.sdp({
          direction: dir === "sendonly" ? "recvonly" : dir === "inactive" ? "inactive" : "sendrecv",
        });
        s.send(200, { body: answer, headers: { "Content-Type": "application/sdp" } });
      });
      return leg;
    },
    async close() {
      try {
        await calls?.close();
      } catch {
        // best effort
      }
      for (const p of peers) p.close();
      media.close();
      await relay.close();
      await world.close();
      await rtpengine.stop();
    },
  };
  return rig;
}

/** Both sides send a tone at once; returns what each heard. */
export async function talk(
  a: Leg,
  b: Leg,
  opts: { ms?: number; aHz?: number; bHz?: number } = {},
): Promise<{
  aHeard: ReturnType<RtpPeer["received"]>;
  bHeard: ReturnType<RtpPeer["received"]>;
  sent: number;
}> {
  const ms = opts.ms ?? 1000;
  a.peer.reset();
  b.peer.reset();
  const [sent] = await Promise.all([
    a.peer.sendTone(opts.aHz ?? 440, ms, sdpMediaTarget(a.remoteSdp())),
    b.peer.sendTone(opts.bHz ?? 1000, ms, sdpMediaTarget(b.remoteSdp())),
  ]);
  await wait(200);
  return { aHeard: a.peer.received(), bHeard: b.peer.received(), sent };
}

export { sdpMediaTarget, wait };
