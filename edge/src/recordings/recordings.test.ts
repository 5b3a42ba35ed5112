// Recordings end to end on the edge: the relay uploads the audio (relay token,
// checksum checked), its recording.ready event links it to the call, and users
// play it back with Range requests; a user sees only their own recordings.
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { cdrs, recordings, relayTokens } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { applyRelayEvent } from "../relay/events.ts";
import { newRelayToken, relayTokenHash } from "../relay/tokens.ts";
import {
  createUser,
  type ErrorJson,
  request,
  signIn,
  type TestEdge,
  type TestSession,
  type TestUser,
  useAdminEdge,
} from "../test-support.ts";

let t: TestEdge;
let admin: TestSession;
let token: string;
let alice: TestUser;
let aliceSession: TestSession;
let aliceDevice: string;

useAdminEdge((edge) => {
  t = edge.t;
  admin = edge.admin.session;
});
beforeEach(async () => {
  token = newRelayToken();
  await t.db.insert(relayTokens).values({ name: "home", tokenHash: relayTokenHash(token) });
  alice = await createUser(t);
  aliceSession = await signIn(t, alice);
  const res = await request(t, "POST", "/api/devices", {
    as: admin,
    body: { name: "Alice", userId: alice.id },
  });
  aliceDevice = ((await res.json()) as { id: string }).id;
});

/** A short WAV file: 44-byte header and `samples` bytes of 8 kHz 8-bit mono audio. */
function wav(samples: number): Uint8Array {
  const bytes = new Uint8Array(44 + samples);
  const view = new DataView(bytes.buffer);
  const text = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) view.setUint8(at + i, s.charCodeAt(i));
  };
  text(0, "RIFF");
  view.setUint32(4, 36 + samples, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, 8000, true);
  view.setUint32(28, 8000, true);
  view.setUint16(32, 1, true);
  view.setUint16(34, 8, true);
  text(36, "data");
  view.setUint32(40, samples, true);
  for (let i = 0; i < samples; i++) bytes[44 + i] = 128 + Math.round(100 * Math.sin(i / 5));
  return bytes;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function upload(id: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(
    t.app.request(
      `http://localhost:8080/api/relay/recordings/${id}`,
      {
        method: "PUT",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "audio/wav",
          "content-length": String(body.byteLength),
          "x-content-sha256": sha(body),
          ...headers,
        },
        body,
      },
      { clientIp: "192.0.2.10" },
    ),
  );
}

async function aliceCall(callId: string): Promise<string> {
  const outcome = await applyRelayEvent(t.deps, {
    key: `started-${callId}`,
    at: "2026-01-15T12:00:00.000Z",
    event: {
      kind: "call.started",
      callId,
      direction: "inbound",
      from: "+15557654321",
      to: "101",
      deviceId: aliceDevice,
      twilioCallSid: null,
      startedAt: "2026-01-15T12:00:00.000Z",
    },
  });
  expect(outcome.kind).toBe("stored");
  const [row] = await t.db.select({ id: cdrs.id }).from(cdrs).where(eq(cdrs.relayCallId, callId));
  return row?.id ?? "";
}

function ready(recordingId: string, callId: string, audio: Uint8Array) {
  return applyRelayEvent(t.deps, {
    key: `ready-${recordingId}`,
    at: "2026-01-15T12:01:00.000Z",
    event: {
      kind: "recording.ready",
      recordingId,
      callId,
      deviceId: aliceDevice,
      trigger: "on_demand",
      contentType: "audio/wav",
      sizeBytes: audio.byteLength,
      sha256: sha(audio),
      durationSeconds: 1,
      startedAt: "2026-01-15T12:00:01.000Z",
      endedAt: "2026-01-15T12:00:02.000Z",
    },
  });
}

async function blobFiles(): Promise<string[]> {
  try {
    return await readdir(join(t.dataDir, "blobs", "recordings"));
  } catch {
    return [];
  }
}

describe("PUT /api/relay/recordings/{id}", () => {
  it("stores the audio, answers 200 to the same upload again, and refuses other audio once stored", async () => {
    const audio = wav(8000);
    const first = await upload("rec-1", audio);
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({
      recordingId: "rec-1",
      sizeBytes: audio.byteLength,
      sha256: sha(audio),
      contentType: "audio/wav",
    });
    expect((await upload("rec-1", audio)).status).toBe(200);
    expect(await blobFiles()).toEqual(["rec-1", "rec-1.meta.json"]);

    const cdrId = await aliceCall("call-a");
    expect((await ready("rec-1", "call-a", audio)).kind).toBe("stored");
    expect((await upload("rec-1", wav(100))).status).toBe(409);
    const [cdr] = await t.db.select().from(cdrs).where(eq(cdrs.id, cdrId));
    expect(cdr?.recordingId).toBeTruthy();
  });

  it("refuses a body that does not match X-Content-SHA256 and stores nothing", async () => {
    const audio = wav(4000);
    const res = await upload("rec-bad", audio, { "x-content-sha256": sha(wav(10)) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorJson).error.message).toMatch(/X-Content-SHA256/);
    expect(await blobFiles()).toEqual([]);
    // The event for audio never stored is nacked: the relay keeps nothing waiting for it.
    await aliceCall("call-b");
    expect(await ready("rec-bad", "call-b", audio)).toMatchObject({ kind: "invalid" });
  });

  it("needs a relay token, an audio type, a checksum and a length", async () => {
    const audio = wav(10);
    expect((await upload("rec-x", audio, { authorization: "Bearer nope" })).status).toBe(401);
    expect((await upload("rec-x", audio, { "content-type": "text/plain" })).status).toBe(415);
    expect((await upload("rec-x", audio, { "x-content-sha256": "abc" })).status).toBe(400);
    expect((await upload("rec-x", audio, { "content-length": String(300 * 1024 * 1024) })).status).toBe(413);
    expect((await upload("..", audio)).status).not.toBe(201);
    // A session is not a relay token.
    const asAdmin = await request(t, "PUT", "/api/relay/recordings/rec-x", { as: admin });
    expect(asAdmin.status).toBe(401);
    expect(await blobFiles()).toEqual([]);
  });
});

describe("/api/recordings", () => {
  let recordingId: string;
  let audio: Uint8Array;

  beforeEach(async () => {
    audio = wav(16_000);
    expect((await upload("rec-play", audio)).status).toBe(201);
    await aliceCall("call-play");
    expect((await ready("rec-play", "call-play", audio)).kind).toBe("stored");
    const [row] = await t.db.select({ id: recordings.id }).from(recordings);
    recordingId = row?.id ?? "";
  });

  it("lists and serves it to its user and the admin; another user gets 404", async () => {
    const mine = (await (await request(t, "GET", "/api/recordings", { as: aliceSession })).json()) as {
      items: { id: string; status: string; sizeBytes: number; audioUrl: string; userId: string }[];
      total: number;
    };
    expect(mine.total).toBe(1);
    expect(mine.items[0]).toMatchObject({
      id: recordingId,
      status: "stored",
      sizeBytes: audio.byteLength,
      userId: alice.id,
      audioUrl: `/api/recordings/${recordingId}/audio`,
      durationSeconds: 1,
    });
    const bob = await signIn(t, await createUser(t));
    expect(
      ((await (await request(t, "GET", "/api/recordings", { as: bob })).json()) as { total: number }).total,
    ).toBe(0);
    for (const path of [`/api/recordings/${recordingId}`, `/api/recordings/${recordingId}/audio`]) {
      expect((await request(t, "GET", path, { as: bob })).status).toBe(404);
    }
    expect((await request(t, "DELETE", `/api/recordings/${recordingId}`, { as: bob })).status).toBe(404);
    expect((await request(t, "GET", `/api/recordings/${recordingId}`, { as: admin })).status).toBe(200);

    const whole = await request(t, "GET", `/api/recordings/${recordingId}/audio`, { as: aliceSession });
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("audio/wav");
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    const body = new Uint8Array(await whole.arrayBuffer());
    expect(sha(body)).toBe(sha(audio));
    expect(new TextDecoder().decode(body.slice(0, 4))).toBe("RIFF");
  });

  it("answers Range requests with 206 and the bytes asked for, 416 outside the file", async () => {
    const path = `/api/recordings/${recordingId}/audio`;
    const part = await request(t, "GET", path, { as: aliceSession, headers: { range: "bytes=44-143" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 44-143/${audio.byteLength}`);
    expect(part.headers.get("content-length")).toBe("100");
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(audio.slice(44, 144));

    const tail = await request(t, "GET", path, { as: aliceSession, headers: { range: "bytes=-10" } });
    expect(tail.status).toBe(206);
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(audio.slice(-10));

    const open = await request(t, "GET", path, {
      as: aliceSession,
      headers: { range: `bytes=${audio.byteLength - 5}-` },
    });
    expect(open.status).toBe(206);
    expect((await open.arrayBuffer()).byteLength).toBe(5);

    const outside = await request(t, "GET", path, {
      as: aliceSession,
      headers: { range: `bytes=${audio.byteLength}-` },
    });
    expect(outside.status).toBe(416);
    expect(outside.headers.get("content-range")).toBe(`bytes */${audio.byteLength}`);
    expect(((await outside.json()) as ErrorJson).error.code).toBe("range_not_satisfiable");
  });

  it("deletes the recording and its audio; the call forgets it", async () => {
    expect((await request(t, "DELETE", `/api/recordings/${recordingId}`, { as: aliceSession })).status).toBe(
      204,
    );
    expect((await request(t, "GET", `/api/recordings/${recordingId}`, { as: admin })).status).toBe(404);
    expect(await blobFiles()).toEqual([]);
    const [cdr] = await t.db.select().from(cdrs).where(eq(cdrs.relayCallId, "call-play"));
    expect(cdr?.recordingId).toBeNull();
  });
});
