// Recording with the real rtpengine and two RTP peers playing the phones (offer/answer straight through
// MediaService, no SIP needed), a real libSQL file and a local HTTP server playing the edge's upload endpoint:
// the recording is playable audio of the call's length with each party's tone, its checksum matches the
// uploaded bytes, the row goes recording → ready → uploaded → confirmed, uploads survive a failing edge,
// low storage leaves the call unrecorded, *1 on the keypad toggles recording, recordAlways records by itself.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTempDb, type TempDb } from "@gosip/drizzle/test-support/temp-db";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { dominantFrequency } from "../../testing/rtp-audio.ts";
import { type MediaTarget, RtpPeer, sdpMediaTarget } from "../../testing/rtp-peer.ts";
import { CommandError } from "../context.ts";
import { MediaService } from "../media/media.ts";
import { readWav } from "../media/recording-file.ts";
import { type RtpengineProcess, startRtpengine } from "../media/rtpengine-process.ts";
import {
  FakeDirectory,
  MemoryCommandBus,
  MemoryEventSink,
  testDevice,
  testSettings,
} from "../testing/fakes.ts";
import { createRecorder, DtmfListener, HttpUploader, type Recorder, type RecorderOptions } from "./index.ts";
import { localRecordings } from "./recorder.ts";
import type { FreeSpaceProbe } from "./storage.ts";

const log = pino({ level: "silent" });
const MIN_FREE = 50 * 1024 * 1024;
const alice = testDevice("alice", "alice-secret-1", { id: "dev-alice", extension: "201" });
const carol = testDevice("carol", "carol-secret-1", {
  id: "dev-carol",
  extension: "203",
  recordAlways: true,
});

let dir: string;
let rtpe: RtpengineProcess;
let media: MediaService;
let dtmf: DtmfListener;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-recording-"));
  dtmf = await DtmfListener.open();
  rtpe = await startRtpengine({
    interface: "127.0.0.1",
    portMin: 36000,
    portMax: 36199,
    recordingDir: dir,
    logger: log,
    extraArgs: dtmf.rtpengineArgs(),
  });
  media = new MediaService({ ng: rtpe.ng, recordingDir: dir, logger: log });
});

afterAll(async () => {
  media?.close();
  await rtpe?.stop();
  await dtmf?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The edge's PUT /api/relay/recordings/{id}: answers 500 to the first `failures` requests, then 200. */
interface FakeEdge {
  url: string;
  puts: { id: string; auth: string; type: string; sha: string; body: Buffer; status: number }[];
  failures: number;
  close(): Promise<void>;
}

async function fakeEdge(failures = 0): Promise<FakeEdge> {
  const edge: Omit<FakeEdge, "url" | "close"> = { puts: [], failures };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const id = /^\/api\/relay\/recordings\/([^/]+)$/.exec(req.url ?? "")?.[1] ?? "";
      const status = req.method !== "PUT" || !id ? 404 : edge.failures > 0 ? 500 : 200;
      if (status === 500) edge.failures--;
      edge.puts.push({
        id: decodeURIComponent(id),
        auth: req.headers.authorization ?? "",
        type: req.headers["content-type"] ?? "",
        sha: String(req.headers["x-content-sha256"] ?? ""),
        body: Buffer.concat(chunks),
        status,
      });
      res
        .writeHead(status, { "Content-Type": "application/json" })
        .end(status === 200 ? '{"ok":true}' : "{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(edge, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

interface Rig {
  db: TempDb;
  edge: FakeEdge;
  events: MemoryEventSink;
  commands: MemoryCommandBus;
  directory: FakeDirectory;
  recorder: Recorder;
  ctx: Parameters<typeof createRecorder>[0];
}

const rigs: Rig[] = [];
const peers: RtpPeer[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.recorder.close();
    await r.edge.close();
    await r.db.close();
  }
  for (const p of peers.splice(0)) p.close();
});

async function rig(
  opts: { failures?: number; probe?: FreeSpaceProbe; db?: TempDb } & RecorderOptions = {},
): Promise<Rig> {
  const { failures, db: existing, ...recorderOptions } = opts;
  const db = existing ?? (await createTempDb());
  const edge = await fakeEdge(failures ?? 0);
  const events = new MemoryEventSink();
  const commands = new MemoryCommandBus();
  const directory = new FakeDirectory([alice, carol], testSettings({ minFreeBytes: MIN_FREE }));
  const ctx = {
    log,
    db: db.db,
    directory,
    events,
    commands,
    options: { recordingDir: dir, natExpires: 60, keepaliveIntervalMs: 0, ringTimeoutSeconds: 30 },
    now: Date.now,
  };
  const recorder = await createRecorder(
    ctx,
    media,
    new HttpUploader({ edgeUrl: edge.url, relayToken: "relay-token-1" }),
    {
      dtmf,
      backoff: { baseMs: 100, capMs: 400 },
      ...recorderOptions,
    },
  );
  const r = { db, edge, events, commands, directory, recorder, ctx };
  rigs.push(r);
  return r;
}

let seq = 0;
/** A call through rtpengine: caller a (labelled "caller"), callee b; where each must send its RTP. */
async function call(): Promise<{
  callId: string;
  a: RtpPeer;
  b: RtpPeer;
  aSendsTo: MediaTarget;
  bSendsTo: MediaTarget;
}> {
  const a = await RtpPeer.open();
  const b = await RtpPeer.open();
  peers.push(a, b);
  const callId = `rec-${++seq}-${Date.now()}@127.0.0.1`;
  const offer = await media.offer({ callId, fromTag: "a-tag", sdp: a.sdp(), label: "caller" });
  const answer = await media.answer({
    callId,
    fromTag: "a-tag",
    toTag: "b-tag",
    sdp: b.sdp(),
    label: "callee",
  });
  // rtpengine's SDP towards b is where a's peer (b) must send, and vice versa.
  return { callId, a, b, aSendsTo: sdpMediaTarget(answer.sdp), bSendsTo: sdpMediaTarget(offer.sdp) };
}

function talk(c: Awaited<ReturnType<typeof call>>, ms: number): Promise<unknown> {
  return Promise.all([c.a.sendTone(440, ms, c.aSendsTo), c.b.sendTone(1000, ms, c.bSendsTo)]);
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("call recording", () => {
  it("records 3 s on demand: stereo WAV with each party's tone, ≈3 s, uploaded with its SHA-256; row lifecycle to confirmed", async () => {
    const r = await rig();
    const c = await call();
    await r.commands.dispatch({ kind: "recording.start", callId: c.callId });
    expect(r.recorder.isRecording(c.callId)).toBe(true);
    const started = (await r.db.client.execute("SELECT * FROM relay_recordings")).rows;
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ call_id: c.callId, status: "recording", trigger: "on_demand" });
    const recordingId = String(started[0]?.id);

    await talk(c, 3000);
    await r.commands.dispatch({ kind: "recording.stop", callId: c.callId });
    const ready = await r.events.waitFor("recording.ready");
    await media.delete(c.callId);

    expect(ready).toMatchObject({
      recordingId,
      callId: c.callId,
      trigger: "on_demand",
      contentType: "audio/wav",
    });
    expect(ready.durationSeconds).toBe(3);
    // The edge got exactly one PUT, authenticated, whose bytes hash to what the header and the event say.
    expect(r.edge.puts).toHaveLength(1);
    const put = r.edge.puts[0];
    expect(put).toMatchObject({
      id: recordingId,
      auth: "Bearer relay-token-1",
      type: "audio/wav",
      status: 200,
    });
    expect(sha256(put?.body ?? Buffer.alloc(0))).toBe(ready.sha256);
    expect(put?.sha).toBe(ready.sha256);
    expect(put?.body.length).toBe(ready.sizeBytes);

    const wav = readWav(put?.body ?? Buffer.alloc(0));
    expect(wav.sampleRate).toBe(8000);
    expect(wav.channels).toHaveLength(2);
    const [left, right] = wav.channels;
    const seconds = (left?.length ?? 0) / wav.sampleRate;
    expect(Math.abs(seconds - 3)).toBeLessThanOrEqual(0.3);
    expect(Math.abs((dominantFrequency(left ?? []) ?? 0) - 440)).toBeLessThanOrEqual(5);
    expect(Math.abs((dominantFrequency(right ?? []) ?? 0) - 1000)).toBeLessThanOrEqual(5);

    await until(async () => (await r.recorder.row(recordingId))?.status === "uploaded");
    const uploaded = await r.recorder.row(recordingId);
    expect(uploaded).toMatchObject({ status: "uploaded", sha256: ready.sha256, confirmedAt: null });
    expect(uploaded?.path).toBe(`wav/${recordingId}.wav`);
    // Kept locally until the edge confirms; rtpengine's spool files are gone.
    expect(await localRecordings(dir)).toContain(`${recordingId}.wav`);
    expect((await readdir(join(dir, "pcaps"))).filter((f) => f.includes(`rec-${seq}-`))).toEqual([]);

    await r.recorder.confirm(recordingId);
    const confirmed = await r.recorder.row(recordingId);
    expect(confirmed?.confirmedAt).toBeGreaterThan(0);
    expect(confirmed?.path).toBeNull();
    expect(existsSync(join(dir, "wav", `${recordingId}.wav`))).toBe(false);
  });

  it("retries the upload after the edge answered 500 twice; the row stays ready until it succeeds", async () => {
    const r = await rig({ failures: 2 });
    const c = await call();
    const started = await r.recorder.start(c.callId, "on_demand");
    expect(started.status).toBe("recording");
    await talk(c, 1000);
    await r.recorder.stop(c.callId);
    await media.delete(c.callId);
    const id = started.status === "recording" ? started.recordingId : "";
    expect((await r.recorder.row(id))?.status).toBe("ready");
    const ready = await r.events.waitFor("recording.ready");
    expect(r.edge.puts.map((p) => p.status)).toEqual([500, 500, 200]);
    expect(new Set(r.edge.puts.map((p) => sha256(p.body)))).toEqual(new Set([ready.sha256]));
    expect(r.events.of("recording.ready")).toHaveLength(1);
    await until(async () => (await r.recorder.row(id))?.status === "uploaded");
  });

  it("low storage: the call goes on unrecorded, recording.skipped storage_low and storage.status low", async () => {
    let free = MIN_FREE - 1;
    const r = await rig({ probe: async () => ({ freeBytes: free, totalBytes: 10 * MIN_FREE }) });
    const c = await call();
    await expect(r.commands.dispatch({ kind: "recording.start", callId: c.callId })).rejects.toBeInstanceOf(
      CommandError,
    );
    expect(r.recorder.isRecording(c.callId)).toBe(false);
    const skipped = await r.events.waitFor("recording.skipped");
    expect(skipped).toMatchObject({ callId: c.callId, reason: "storage_low" });
    expect(r.events.of("storage.status").at(-1)).toEqual({
      kind: "storage.status",
      freeBytes: MIN_FREE - 1,
      totalBytes: 10 * MIN_FREE,
      low: true,
    });
    expect((await r.db.client.execute("SELECT count(*) AS n FROM relay_recordings")).rows[0]?.n).toBe(0);
    // The call itself is untouched: audio still flows both ways.
    await talk(c, 400);
    expect(c.b.received().audioPackets).toBeGreaterThan(10);
    expect(c.a.received().audioPackets).toBeGreaterThan(10);

    // Space freed: the next start records, and the monitor reports the flip back.
    free = MIN_FREE * 2;
    expect((await r.recorder.start(c.callId, "on_demand")).status).toBe("recording");
    expect(r.events.of("storage.status").at(-1)).toMatchObject({ low: false, freeBytes: MIN_FREE * 2 });
    await r.recorder.stop(c.callId);
    await media.delete(c.callId);
    await r.events.waitFor("recording.ready");
  });

  it("*1 keyed during the call starts the recording, *1 again stops it; the digits still reach the other party", async () => {
    const r = await rig();
    const c = await call();
    await c.a.sendDtmf("*", c.aSendsTo);
    await c.a.sendDtmf("1", c.aSendsTo);
    await until(() => r.recorder.isRecording(c.callId));
    await talk(c, 1500);
    await c.b.sendDtmf("*", c.bSendsTo);
    await c.b.sendDtmf("1", c.bSendsTo);
    const ready = await r.events.waitFor("recording.ready");
    expect(ready).toMatchObject({ callId: c.callId, trigger: "on_demand" });
    expect(ready.durationSeconds).toBeGreaterThanOrEqual(1);
    expect(ready.durationSeconds).toBeLessThanOrEqual(3);
    expect(r.recorder.isRecording(c.callId)).toBe(false);
    expect(c.b.received().dtmf).toBe("*1");
    expect(c.a.received().dtmf).toBe("*1");
    // A lone "1" or a "*" followed by something else does nothing.
    await c.a.sendDtmf("1", c.aSendsTo);
    await c.a.sendDtmf("*", c.aSendsTo);
    await c.a.sendDtmf("2", c.aSendsTo);
    await new Promise((res) => setTimeout(res, 300));
    expect(r.recorder.isRecording(c.callId)).toBe(false);
    await media.delete(c.callId);
  });

  it("recordAlways: a device's answered call is recorded by itself and finished when the call ends", async () => {
    const r = await rig();
    const events = r.recorder.observe(r.events);
    const c = await call();
    await events.emit({
      kind: "call.answered",
      callId: c.callId,
      deviceId: carol.id,
      answeredAt: new Date().toISOString(),
    });
    await until(() => r.recorder.isRecording(c.callId));
    await talk(c, 1000);
    // The B2BUA deletes the rtpengine session, then reports the end (which closes the pcap).
    await media.delete(c.callId);
    const now = new Date().toISOString();
    await events.emit({
      kind: "call.ended",
      callId: c.callId,
      direction: "internal",
      from: "201",
      to: "203",
      deviceId: carol.id,
      twilioCallSid: null,
      startedAt: now,
      answeredAt: now,
      endedAt: now,
      disposition: "answered",
      sipStatus: 200,
      durationSeconds: 1,
      hangupBy: "caller",
      rtp: null,
      ladder: [],
    });
    const ready = await r.events.waitFor("recording.ready");
    expect(ready).toMatchObject({
      callId: c.callId,
      trigger: "device",
      deviceId: carol.id,
      durationSeconds: 1,
    });

    // alice has no recordAlways: her calls are not recorded.
    const d = await call();
    await events.emit({ kind: "call.answered", callId: d.callId, deviceId: alice.id, answeredAt: now });
    await r.recorder.idle();
    expect(r.recorder.isRecording(d.callId)).toBe(false);
    await media.delete(d.callId);
  });

  it("an upload the edge never took resumes after a relay restart; an unconfirmed one is announced again", async () => {
    const db = await createTempDb();
    const first = await rig({ db, failures: 1000, backoff: { baseMs: 50, capMs: 50 } });
    const c = await call();
    const started = await first.recorder.start(c.callId, "on_demand");
    await talk(c, 600);
    await first.recorder.stop(c.callId);
    await media.delete(c.callId);
    await until(() => first.edge.puts.length >= 2);
    // The relay stops; the edge is reachable again when it comes back.
    await first.recorder.close();
    rigs.splice(rigs.indexOf(first), 1);
    await first.edge.close();
    const id = started.status === "recording" ? started.recordingId : "";
    expect((await first.recorder.row(id))?.status).toBe("ready");
    expect(first.events.of("recording.ready")).toHaveLength(0);

    const second = await rig({ db });
    const ready = await second.events.waitFor("recording.ready");
    expect(ready.recordingId).toBe(id);
    expect(second.edge.puts).toHaveLength(1);
    expect(sha256(second.edge.puts[0]?.body ?? Buffer.alloc(0))).toBe(ready.sha256);
    await until(async () => (await second.recorder.row(id))?.status === "uploaded");

    // Restarted before the edge's confirmation came: announced again (no second upload); once confirmed, never.
    await second.recorder.close();
    rigs.splice(rigs.indexOf(second), 1);
    await second.edge.close();
    const third = await rig({ db });
    expect((await third.events.waitFor("recording.ready")).recordingId).toBe(id);
    expect(third.edge.puts).toHaveLength(0);
    await third.recorder.confirm(id);
    await third.recorder.close();
    rigs.splice(rigs.indexOf(third), 1);
    await third.edge.close();
    const fourth = await rig({ db });
    await fourth.recorder.idle();
    expect(fourth.events.of("recording.ready")).toHaveLength(0);
    expect((await fourth.recorder.row(id))?.confirmedAt).toBeGreaterThan(0);
  });
});
