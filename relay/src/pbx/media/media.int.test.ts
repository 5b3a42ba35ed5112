// The media path as a B2BUA drives it, against the real rtpengine-daemon: two test RTP peers play phone A and
// phone B; audio must cross both ways with the right tones and packet counts (at both ends and in rtpengine's
// own counters), DTMF and hold/resume must work, sessions must go on delete, a kill -9 of rtpengine must be
// survived, a phone behind NAT must still hear the other side, and a recording must be the call's audio.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dominantFrequency } from "../../testing/rtp-audio.ts";
import { type RtpPeer as Peer, RtpPeer, sdpDirection, sdpMediaTarget } from "../../testing/rtp-peer.ts";
import { MediaError, MediaService } from "./media.ts";
import {
  pcapToWav,
  readWav,
  recordingComplete,
  recordingMetadataPath,
  removeRecordingFiles,
} from "./recording-file.ts";
import { type RtpengineProcess, startRtpengine } from "./rtpengine-process.ts";

let rtpe: RtpengineProcess;
let media: MediaService;
let recordingDir: string;
const log = pino({ level: process.env.MEDIA_TEST_LOG ?? "warn" });
let callSeq = 0;

beforeAll(async () => {
  recordingDir = await mkdtemp(join(tmpdir(), "gosip-media-"));
  rtpe = await startRtpengine({
    interface: "127.0.0.1",
    portMin: 34000,
    portMax: 34999,
    recordingDir,
    logger: log,
  });
  media = new MediaService({ ng: rtpe.ng, recordingDir, logger: log });
});

afterAll(async () => {
  media?.close();
  await rtpe?.stop();
  if (recordingDir) await rm(recordingDir, { recursive: true, force: true });
});

interface Call {
  callId: string;
  fromTag: string;
  toTag: string;
  a: Peer;
  b: Peer;
  sdpForA: string;
  sdpForB: string;
}

/** INVITE A->B with SDP, 200 from B with SDP, the way the B2BUA runs offer/answer. */
async function setUpCall(
  opts: {
    codec?: "PCMU" | "PCMA";
    aBehindNat?: boolean;
    aSdp?: (s: string) => string;
    aSource?: string;
  } = {},
): Promise<Call> {
  const a = await RtpPeer.open({ behindNat: opts.aBehindNat ?? false });
  const b = await RtpPeer.open();
  const n = ++callSeq;
  const callId = `media-test-${n}@127.0.0.1`;
  const fromTag = `a-tag-${n}`;
  const toTag = `b-tag-${n}`;
  const offerSdp = a.sdp({ codec: opts.codec ?? "PCMU", dtmf: true });
  const offered = await media.offer({
    callId,
    fromTag,
    sdp: opts.aSdp ? opts.aSdp(offerSdp) : offerSdp,
    label: "caller",
    ...(opts.aSource ? { sipSourceAddress: opts.aSource } : {}),
  });
  const answered = await media.answer({
    callId,
    fromTag,
    toTag,
    sdp: b.sdp({ codec: opts.codec ?? "PCMU" }),
    label: "callee",
  });
  return {
    callId,
    fromTag,
    toTag,
    a,
    b,
    sdpForB: offered.sdp,
    sdpForA: answered.sdp,
  };
}

// A sends to the port in the SDP it got (the answer), B to the one in its offer.
const aSends = (c: Call) => sdpMediaTarget(c.sdpForA);
const bSends = (c: Call) => sdpMediaTarget(c.sdpForB);

async function endCall(c: Call): Promise<void> {
  await media.delete({ callId: c.callId });
  c.a.close();
  c.b.close();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for packets still in flight through rtpengine: until `done` holds (at most 5 s, for a loaded
 * machine), then 100 ms more so that extra packets (duplicates) would show in exact counts too.
 */
async function settle(done: () => boolean = () => false): Promise<void> {
  const until = Date.now() + 5000;
  while (!done() && Date.now() < until) await sleep(20);
  await sleep(100);
}

async function twoWayAudio(c: Call, ms = 1000): Promise<void> {
  const atA = c.a.received().audioPackets;
  const atB = c.b.received().audioPackets;
  const [sentA, sentB] = await Promise.all([
    c.a.sendTone(440, ms, aSends(c)),
    c.b.sendTone(1000, ms, bSends(c)),
  ]);
  await settle(
    () => c.b.received().audioPackets >= atB + sentA && c.a.received().audioPackets >= atA + sentB,
  );
}

describe("calls through rtpengine", () => {
  it("carries G.711 PCMU both ways: B hears A's 440 Hz, A hears B's 1 kHz, every packet counted", async () => {
    const c = await setUpCall({ codec: "PCMU" });
    try {
      // rtpengine's address in both SDPs, codecs and telephone-event untouched, no ICE.
      for (const sdp of [c.sdpForA, c.sdpForB]) {
        expect(sdp).toMatch(/^m=audio \d+ RTP\/AVP 0 101\r$/m);
        expect(sdp).toContain("a=rtpmap:101 telephone-event/8000");
        expect(sdp).not.toContain("a=ice-");
        expect(sdpMediaTarget(sdp).port).toBeGreaterThanOrEqual(34000);
      }
      await twoWayAudio(c);
      const atB = c.b.received();
      const atA = c.a.received();
      expect(Math.abs((atB.frequency ?? 0) - 440)).toBeLessThanOrEqual(3);
      expect(Math.abs((atA.frequency ?? 0) - 1000)).toBeLessThanOrEqual(3);
      expect(atB.audioPackets).toBe(50);
      expect(atA.audioPackets).toBe(50);
      expect(atB.lost + atA.lost).toBe(0);
      expect(atB.durationMs).toBe(1000);
      // Media came from rtpengine, not straight from the other phone.
      expect(atB.sources).toEqual([`127.0.0.1:${bSends(c).port}`]);
      expect(atA.sources).toEqual([`127.0.0.1:${aSends(c).port}`]);

      const stats = await media.stats(c.callId);
      const legA = stats.legs.find((l) => l.tag === c.fromTag);
      const legB = stats.legs.find((l) => l.tag === c.toTag);
      expect(legA?.in.packets).toBe(50);
      expect(legB?.in.packets).toBe(50);
      expect(legA?.out.packets).toBe(50);
      expect(legA?.in.bytes).toBe(50 * (12 + 160));
      expect(legA?.label).toBe("caller");
      expect(legA?.peerTag).toBe(c.toTag);
      expect(stats.totals.rtp.packets).toBe(100);
    } finally {
      await endCall(c);
    }
  });

  it("carries G.711 PCMA both ways", async () => {
    const c = await setUpCall({ codec: "PCMA" });
    try {
      expect(c.sdpForB).toMatch(/^m=audio \d+ RTP\/AVP 8 101\r$/m);
      expect(c.sdpForB).toContain("a=rtpmap:8 PCMA/8000");
      await twoWayAudio(c);
      const atB = c.b.received();
      const atA = c.a.received();
      expect(atB.packets.every((p) => p.payloadType === 8)).toBe(true);
      expect(Math.abs((atB.frequency ?? 0) - 440)).toBeLessThanOrEqual(3);
      expect(Math.abs((atA.frequency ?? 0) - 1000)).toBeLessThanOrEqual(3);
      expect([atA.audioPackets, atB.audioPackets]).toEqual([50, 50]);
    } finally {
      await endCall(c);
    }
  });

  it("passes RFC 2833 DTMF through in both directions", async () => {
    const c = await setUpCall();
    try {
      // Phones stream audio from the start and send events in between (rtpengine 10.5 loses the second
      // event of a stream that carried only events so far).
      await twoWayAudio(c, 200);
      c.a.reset();
      c.b.reset();
      for (const d of "1#9") await c.a.sendDtmf(d, aSends(c));
      for (const d of "*0") await c.b.sendDtmf(d, bSends(c));
      await settle(() => c.b.received().dtmf.length >= 3 && c.a.received().dtmf.length >= 2);
      expect(c.b.received().dtmf).toBe("1#9");
      expect(c.a.received().dtmf).toBe("*0");
      expect(c.b.received().packets.every((p) => p.payloadType === 101)).toBe(true);
    } finally {
      await endCall(c);
    }
  });

  it("holds (a=sendonly, then inactive) and resumes by re-offer, with audio both ways after resume", async () => {
    const c = await setUpCall();
    try {
      await twoWayAudio(c, 400);
      // A puts B on hold: re-INVITE from A with a=sendonly, B answers recvonly.
      const hold = await media.offer({
        callId: c.callId,
        fromTag: c.fromTag,
        toTag: c.toTag,
        sdp: c.a.sdp({ direction: "sendonly" }),
      });
      expect(sdpDirection(hold.sdp)).toBe("sendonly");
      const holdAns = await media.answer({
        callId: c.callId,
        fromTag: c.fromTag,
        toTag: c.toTag,
        sdp: c.b.sdp({ direction: "recvonly" }),
      });
      expect(sdpDirection(holdAns.sdp)).toBe("recvonly");
      // Ports stay the same across the re-offer, so the phones keep sending where they did.
      expect(sdpMediaTarget(hold.sdp)).toEqual(bSends(c));
      expect(sdpMediaTarget(holdAns.sdp)).toEqual(aSends(c));
      c.a.reset();
      c.b.reset();
      // Music on hold from A still reaches B.
      await c.a.sendTone(600, 400, aSends(c));
      await settle(() => c.b.received().audioPackets >= 20);
      expect(Math.abs((c.b.received().frequency ?? 0) - 600)).toBeLessThanOrEqual(3);

      // Now B re-INVITEs with inactive (tags in B's direction).
      const inactive = await media.offer({
        callId: c.callId,
        fromTag: c.toTag,
        toTag: c.fromTag,
        sdp: c.b.sdp({ direction: "inactive" }),
      });
      expect(sdpDirection(inactive.sdp)).toBe("inactive");
      const inactiveAns = await media.answer({
        callId: c.callId,
        fromTag: c.toTag,
        toTag: c.fromTag,
        sdp: c.a.sdp({ direction: "inactive" }),
      });
      expect(sdpDirection(inactiveAns.sdp)).toBe("inactive");

      // A resumes: sendrecv re-offer from A.
      const resume = await media.offer({
        callId: c.callId,
        fromTag: c.fromTag,
        toTag: c.toTag,
        sdp: c.a.sdp({ direction: "sendrecv" }),
      });
      expect(sdpDirection(resume.sdp)).toBe("sendrecv");
      const resumeAns = await media.answer({
        callId: c.callId,
        fromTag: c.fromTag,
        toTag: c.toTag,
        sdp: c.b.sdp(),
      });
      expect(sdpDirection(resumeAns.sdp)).toBe("sendrecv");
      c.a.reset();
      c.b.reset();
      await Promise.all([
        c.a.sendTone(440, 600, sdpMediaTarget(resumeAns.sdp)),
        c.b.sendTone(1000, 600, sdpMediaTarget(resume.sdp)),
      ]);
      await settle(() => c.a.received().audioPackets >= 30 && c.b.received().audioPackets >= 30);
      const atB = c.b.received();
      const atA = c.a.received();
      expect(Math.abs((atB.frequency ?? 0) - 440)).toBeLessThanOrEqual(3);
      expect(Math.abs((atA.frequency ?? 0) - 1000)).toBeLessThanOrEqual(3);
      expect([atA.audioPackets, atB.audioPackets]).toEqual([30, 30]);
    } finally {
      await endCall(c);
    }
  });

  it("delete releases the session: query fails, media stops, a second delete is not an error", async () => {
    const c = await setUpCall();
    try {
      await twoWayAudio(c, 200);
      expect(await media.delete({ callId: c.callId })).toBe(true);
      const err = await media.query(c.callId).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MediaError);
      expect((err as MediaError).code).toBe("error");
      expect((err as MediaError).reason).toMatch(/unknown call/i);
      c.b.reset();
      await c.a.sendTone(440, 200, aSends(c));
      await sleep(500); // nothing may come
      expect(c.b.received().audioPackets).toBe(0);
      expect(await media.delete({ callId: c.callId })).toBe(false);
      expect(await media.delete("never-existed")).toBe(false);
    } finally {
      c.a.close();
      c.b.close();
    }
  });

  it("an answer for an unknown call is a MediaError with rtpengine's reason", async () => {
    const p = await RtpPeer.open();
    try {
      const err = await media
        .answer({ callId: "no-such-call", fromTag: "x", toTag: "y", sdp: p.sdp() })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MediaError);
      expect((err as MediaError).code).toBe("error");
      expect((err as MediaError).command).toBe("answer");
      expect((err as MediaError).reason.length).toBeGreaterThan(0);
    } finally {
      p.close();
    }
  });
});

describe("NAT", () => {
  it("a phone sending from another port than its SDP says still hears the other side (symmetric RTP)", async () => {
    const c = await setUpCall({ aBehindNat: true });
    try {
      expect(c.a.port).not.toBe(c.a.mediaPort);
      await twoWayAudio(c);
      const atA = c.a.received();
      const atB = c.b.received();
      expect(Math.abs((atB.frequency ?? 0) - 440)).toBeLessThanOrEqual(3);
      expect(Math.abs((atA.frequency ?? 0) - 1000)).toBeLessThanOrEqual(3);
      // rtpengine follows A's real source at once; at most the packets B sent before A's first one went to
      // the advertised (unreachable behind NAT) port.
      expect(atA.audioPackets + c.a.strayPackets.length).toBe(50);
      expect(atA.audioPackets).toBeGreaterThanOrEqual(48);
      const legA = (await media.stats(c.callId)).legs.find((l) => l.tag === c.fromTag);
      expect(legA?.endpoint).toEqual({ address: "127.0.0.1", port: c.a.mediaPort });
    } finally {
      await endCall(c);
    }
  });

  it("with a private SDP address, media goes to the SIP source address before the phone sends any", async () => {
    // Phone A's SDP names its LAN address; its SIP came from 127.0.0.1 (its "public" side here).
    const c = await setUpCall({
      aSdp: (s) => s.replace(/IN IP4 127\.0\.0\.1/g, "IN IP4 192.168.77.10"),
      aSource: "127.0.0.1",
    });
    try {
      await c.b.sendTone(1000, 400, bSends(c));
      await settle(() => c.a.received().audioPackets >= 20);
      const atA = c.a.received();
      expect(atA.audioPackets).toBe(20);
      expect(Math.abs((atA.frequency ?? 0) - 1000)).toBeLessThanOrEqual(3);
    } finally {
      await endCall(c);
    }
  });
});

describe("advertised address", () => {
  it("with advertiseAddress, SDP names the external address while RTP binds the local one", async () => {
    const ext = await startRtpengine({
      interface: "127.0.0.1",
      advertiseAddress: "198.51.100.7",
      portMin: 35000,
      portMax: 35099,
      logger: log,
    });
    const svc = new MediaService({ ng: ext.ng });
    const a = await RtpPeer.open();
    try {
      expect(ext.args).toContain("--interface=127.0.0.1!198.51.100.7");
      const { sdp } = await svc.offer({ callId: "adv-1", fromTag: "a", sdp: a.sdp() });
      expect(sdp).toMatch(/^c=IN IP4 198\.51\.100\.7\r$/m);
      expect(sdp).toMatch(/^o=- \d+ \d+ IN IP4 198\.51\.100\.7\r$/m);
      const port = sdpMediaTarget(sdp).port;
      expect(port).toBeGreaterThanOrEqual(35000);
      expect(port).toBeLessThanOrEqual(35099);
      expect(await svc.delete("adv-1")).toBe(true);
    } finally {
      a.close();
      svc.close();
      const pid = ext.pid;
      await ext.stop();
      // stop() ends the daemon for good: the pid is gone and no restart follows.
      expect(() => process.kill(pid ?? 0, 0)).toThrow();
    }
    expect(ext.pid).toBeUndefined();
  });
});

describe("recording", () => {
  it("records a call into a pcap that becomes a stereo WAV of the call: caller 440 Hz left, callee 1 kHz right", async () => {
    const c = await setUpCall();
    try {
      const rec = await media.startRecording(c.callId, c.fromTag);
      expect(rec.pcapPath).toMatch(/pcaps\/media-test-\d+%40127\.0\.0\.1-[0-9a-f]{16}\.pcap$/);
      expect(rec.callerPorts).toEqual([aSends(c).port]);
      const pcap = rec.pcapPath ?? "";
      await twoWayAudio(c, 2000);
      expect(await recordingComplete(pcap)).toBe(false);
      await media.stopRecording(c.callId);
      expect(await recordingComplete(pcap)).toBe(true);
      const wavPath = join(recordingDir, "call.wav");
      const wav = await pcapToWav(pcap, wavPath, { callerPorts: rec.callerPorts ?? [] });
      expect(wav.packets).toEqual({ caller: 100, callee: 100 });
      expect(wav.channels).toBe(2);
      expect(Math.abs(wav.durationMs - 2000)).toBeLessThan(100);
      expect(wav.sha256).toMatch(/^[0-9a-f]{64}$/);
      const bytes = await readFile(wavPath);
      const { createHash } = await import("node:crypto");
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(wav.sha256);
      const decoded = readWav(bytes);
      expect(decoded.sampleRate).toBe(8000);
      expect(decoded.channels).toHaveLength(2);
      const [left, right] = decoded.channels;
      expect(Math.abs((dominantFrequency(left ?? new Int16Array()) ?? 0) - 440)).toBeLessThanOrEqual(3);
      expect(Math.abs((dominantFrequency(right ?? new Int16Array()) ?? 0) - 1000)).toBeLessThanOrEqual(3);

      const mono = await pcapToWav(pcap, join(recordingDir, "mono.wav"), { mono: true });
      expect(mono.channels).toBe(1);
      expect(Math.abs(mono.durationMs - 2000)).toBeLessThan(100);
    } finally {
      await endCall(c);
    }
  });

  it("a call offered with record: true is recorded from its first packet, SDPs in the metadata", async () => {
    const a = await RtpPeer.open();
    const b = await RtpPeer.open();
    const callId = `recorded-${++callSeq}`;
    const offered = await media.offer({ callId, fromTag: "a", sdp: a.sdp(), record: true });
    const answered = await media.answer({ callId, fromTag: "a", toTag: "b", sdp: b.sdp() });
    const [pcap] = await media.pcapsOf(callId);
    expect(pcap).toBeDefined();
    const callerPorts = [sdpMediaTarget(answered.sdp).port];
    await Promise.all([
      a.sendTone(440, 400, sdpMediaTarget(answered.sdp)),
      b.sendTone(1000, 400, sdpMediaTarget(offered.sdp)),
    ]);
    await settle(() => a.received().audioPackets >= 20 && b.received().audioPackets >= 20);
    expect(await media.delete(callId)).toBe(true);
    a.close();
    b.close();
    const path = pcap ?? "";
    const meta = await readFile(recordingMetadataPath(path), "utf8");
    expect(meta.split("\n")[0]).toBe(path);
    expect(meta).toContain("SDP mode: offer");
    expect(meta).toContain("SDP mode: answer");
    const wav = await pcapToWav(path, join(recordingDir, "recorded.wav"), { callerPorts });
    expect(wav.packets).toEqual({ caller: 20, callee: 20 });
    const [left, right] = readWav(await readFile(wav.wavPath)).channels;
    expect(Math.abs((dominantFrequency(left ?? new Int16Array()) ?? 0) - 440)).toBeLessThanOrEqual(3);
    expect(Math.abs((dominantFrequency(right ?? new Int16Array()) ?? 0) - 1000)).toBeLessThanOrEqual(3);
    await removeRecordingFiles(path);
    expect(await recordingComplete(path)).toBe(false);
    expect(await media.pcapsOf(callId)).toEqual([]);
  });

  it("a recording still running when the call is deleted is finished by the delete", async () => {
    const c = await setUpCall();
    const rec = await media.startRecording(c.callId, c.fromTag);
    const pcap = rec.pcapPath ?? "";
    await twoWayAudio(c, 400);
    await endCall(c);
    expect(await recordingComplete(pcap)).toBe(true);
    const wav = await pcapToWav(pcap, join(recordingDir, "deleted.wav"), {
      callerPorts: rec.callerPorts ?? [],
    });
    expect(wav.packets).toEqual({ caller: 20, callee: 20 });
  });
});

describe("supervision", () => {
  it("kill -9 of rtpengine: 'exit' then 'ready' again on the same ng port, and the next call works", async () => {
    const c = await setUpCall();
    await twoWayAudio(c, 200);
    const oldPid = rtpe.pid;
    expect(oldPid).toBeTypeOf("number");
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => rtpe.once("exit", r));
    const ready = new Promise<void>((r) => rtpe.once("ready", () => r()));
    process.kill(oldPid ?? 0, "SIGKILL");
    expect(await exited).toEqual({ code: null, signal: "SIGKILL" });
    const t0 = Date.now();
    await ready;
    const restartMs = Date.now() - t0;
    expect(restartMs).toBeLessThan(3000);
    expect(rtpe.pid).not.toBe(oldPid);
    // The old call died with the process: the watch reports it lost, and deleting it is not an error.
    const lost: string[] = [];
    media.on("lost", (id) => lost.push(id));
    expect(await media.checkActive()).toEqual([c.callId]);
    expect(lost).toEqual([c.callId]);
    expect(await media.delete({ callId: c.callId })).toBe(false);
    c.a.close();
    c.b.close();

    const next = await setUpCall();
    try {
      await twoWayAudio(next, 400);
      expect(Math.abs((next.b.received().frequency ?? 0) - 440)).toBeLessThanOrEqual(3);
      expect(Math.abs((next.a.received().frequency ?? 0) - 1000)).toBeLessThanOrEqual(3);
    } finally {
      await endCall(next);
    }
  });
});

describe("ng round trips", () => {
  it("offer/answer/delete for 500 calls, none failing (latency printed)", async () => {
    const a = await RtpPeer.open();
    const b = await RtpPeer.open();
    const offerSdp = a.sdp();
    const answerSdp = b.sdp();
    const lat = { offer: [] as number[], answer: [] as number[], delete: [] as number[] };
    const t = () => performance.now();
    const started = t();
    for (let i = 0; i < 500; i++) {
      const callId = `bench-${i}`;
      let s = t();
      await media.offer({ callId, fromTag: "a", sdp: offerSdp });
      lat.offer.push(t() - s);
      s = t();
      await media.answer({ callId, fromTag: "a", toTag: "b", sdp: answerSdp });
      lat.answer.push(t() - s);
      s = t();
      expect(await media.delete(callId)).toBe(true);
      lat.delete.push(t() - s);
    }
    const elapsed = t() - started;
    a.close();
    b.close();
    const pct = (xs: number[], q: number) =>
      [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
    const line = (k: keyof typeof lat) =>
      `${k} p50 ${pct(lat[k], 0.5).toFixed(2)} ms p99 ${pct(lat[k], 0.99).toFixed(2)} ms`;
    console.log(
      `ng round trips over 500 sequential calls: ${line("offer")}; ${line("answer")}; ${line("delete")}; ${(500 / (elapsed / 1000)).toFixed(0)} calls/s`,
    );

    // The same with 32 calls in flight, the way a busy B2BUA drives it.
    const setup: number[] = [];
    let failed = 0;
    const total = 2000;
    let next = 0;
    const t1 = t();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          const callId = `burst-${next++}`;
          const s = t();
          try {
            await media.offer({ callId, fromTag: "a", sdp: offerSdp });
            await media.answer({ callId, fromTag: "a", toTag: "b", sdp: answerSdp });
            setup.push(t() - s);
            if (!(await media.delete(callId))) failed++;
          } catch {
            failed++;
          }
        }
      }),
    );
    const rate = total / ((t() - t1) / 1000);
    console.log(
      `ng with 32 calls in flight: ${total} calls, ${failed} failed, ${rate.toFixed(0)} calls/s (offer+answer+delete), offer+answer p50 ${pct(setup, 0.5).toFixed(2)} ms p99 ${pct(setup, 0.99).toFixed(2)} ms`,
    );
    expect(failed).toBe(0);
    expect(media.activeCalls).toBe(0);
  });

  it("a command rtpengine never answers fails with MediaError('timeout')", async () => {
    const { createSocket } = await import("node:dgram");
    const sink = createSocket("udp4");
    await new Promise<void>((r) => sink.bind(0, "127.0.0.1", () => r()));
    const dead = new MediaService({ ng: { host: "127.0.0.1", port: sink.address().port }, timeoutMs: 300 });
    try {
      const t0 = Date.now();
      const err = await dead.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MediaError);
      expect((err as MediaError).code).toBe("timeout");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    } finally {
      dead.close();
      sink.close();
    }
  });
});
