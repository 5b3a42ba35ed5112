// Per-DID voicemail greetings (admin API) and what the caller then hears: text-to-speech
// in <Say>, an uploaded recording in <Play> of a signed URL that Twilio (no session) can
// fetch until it expires, and nothing else can.
import { dids } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import {
  type ErrorJson,
  loginAs,
  request,
  TestClock,
  type TestEdge,
  type TestSession,
  useAdminEdge,
} from "../test-support.ts";
import { twiml } from "../twiml/builder.ts";
import { makeWav, sid, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN } from "./fake-twilio.test-support.ts";
import { MAX_GREETING_BYTES } from "./greetings.ts";
import { playableAudioUrl } from "./playable.ts";
import { DEFAULT_GREETING, voicemailTwiml } from "./twiml.ts";

const clock = new TestClock(Date.UTC(2026, 0, 15, 12, 10, 0));
let t: TestEdge;
let admin: TestSession;
let didId: string;

useAdminEdge(
  (edge) => {
    t = edge.t;
    admin = edge.admin.session;
  },
  { clock, env: { TWILIO_ACCOUNT_SID: TEST_ACCOUNT_SID, TWILIO_AUTH_TOKEN: TEST_AUTH_TOKEN } },
);

beforeEach(async () => {
  clock.set(Date.UTC(2026, 0, 15, 12, 10, 0));
  const [did] = await t.db.insert(dids).values({ e164: "+15551230001" }).returning({ id: dids.id });
  if (!did) throw new Error("no DID");
  didId = did.id;
});

function upload(body: Uint8Array, contentType: string, as = admin): Promise<Response> {
  return Promise.resolve(
    t.app.request(`http://localhost:8080/api/voicemails/greetings/${didId}`, {
      method: "PUT",
      headers: { ...as.headers, "content-type": contentType },
      body,
    }),
  );
}

async function callerHears(): Promise<string> {
  return twiml(await voicemailTwiml(t.deps, { didId, userId: null, cdrId: "cdr-1", callSid: sid("CA") }));
}

/** The URL inside <Play>…</Play>, unescaped as Twilio reads it. */
function playUrl(xml: string): string {
  const m = /<Play>([^<]+)<\/Play>/.exec(xml);
  if (!m?.[1]) throw new Error(`no <Play> in ${xml}`);
  return m[1].replace(/&amp;/g, "&");
}

describe("text-to-speech greeting", () => {
  it("is stored, shown, and spoken to the caller; DELETE brings back the built-in one", async () => {
    const put = await request(t, "PUT", `/api/voicemails/greetings/${didId}`, {
      as: admin,
      body: { kind: "tts", text: "You reached the Smiths.", voice: "Polly.Amy" },
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({
      didId,
      greeting: { kind: "tts", text: "You reached the Smiths.", voice: "Polly.Amy", language: null },
    });
    const got = await request(t, "GET", `/api/voicemails/greetings/${didId}`, { as: admin });
    expect(((await got.json()) as { greeting: { text: string } }).greeting.text).toBe(
      "You reached the Smiths.",
    );
    expect(await callerHears()).toContain('<Say voice="Polly.Amy">You reached the Smiths.</Say>');

    expect((await request(t, "DELETE", `/api/voicemails/greetings/${didId}`, { as: admin })).status).toBe(
      204,
    );
    expect(
      await (await request(t, "GET", `/api/voicemails/greetings/${didId}`, { as: admin })).json(),
    ).toEqual({
      didId,
      greeting: null,
    });
    expect(await callerHears()).toContain(`<Say>${DEFAULT_GREETING}</Say>`);
  });

  it("refuses an empty text and unknown fields, and changes nothing", async () => {
    for (const body of [
      { kind: "tts", text: "  " },
      { kind: "tts", text: "Hi", extra: 1 },
      { kind: "audio" },
    ]) {
      const res = await request(t, "PUT", `/api/voicemails/greetings/${didId}`, { as: admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const [row] = await t.db.select({ greeting: dids.greeting }).from(dids).where(eq(dids.id, didId));
    expect(row?.greeting).toBeNull();
  });
});

describe("uploaded greeting", () => {
  it("is played through a signed URL that works without a session until it expires", async () => {
    const wav = makeWav(2, 660);
    const put = await upload(wav, "audio/wav");
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({
      didId,
      greeting: { kind: "audio", contentType: "audio/wav", sizeBytes: wav.byteLength },
    });
    const preview = await request(t, "GET", `/api/voicemails/greetings/${didId}/audio`, { as: admin });
    expect(new Uint8Array(await preview.arrayBuffer())).toEqual(wav);

    const url = playUrl(await callerHears());
    expect(url).toMatch(/^http:\/\/localhost:8080\/api\/voicemails\/prompt-audio\?key=greetings%2F/);
    const fetched = await t.app.request(url);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("content-type")).toBe("audio/wav");
    expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(wav);

    const tampered = new URL(url);
    tampered.searchParams.set("key", "voicemails/someone-else.wav");
    expect((await t.app.request(tampered.toString())).status).toBe(403);
    const extended = new URL(url);
    extended.searchParams.set("exp", String(Number(extended.searchParams.get("exp")) + 86_400));
    expect((await t.app.request(extended.toString())).status).toBe(403);

    clock.advance(3 * 3_600_000);
    expect((await t.app.request(url)).status).toBe(403);
    // A fresh call gets a fresh URL.
    expect((await t.app.request(playUrl(await callerHears()))).status).toBe(200);
  });

  it("URLs minted in the same hour are the same (Twilio caches media by URL)", async () => {
    const source = { kind: "audio" as const, blobKey: "greetings/x.wav" };
    const a = await playableAudioUrl(t.deps, source);
    clock.advance(10 * 60_000);
    expect(await playableAudioUrl(t.deps, source)).toBe(a);
    expect(await playableAudioUrl(t.deps, { kind: "tts", text: "hi" })).toBeNull();
  });

  it("never publishes private audio: a prompt naming a voicemail or recording blob gets no URL", async () => {
    const bytes = makeWav(1);
    await t.deps.blobs.put("voicemails/secret.wav", bytes, { contentType: "audio/x-wav" });
    expect(await playableAudioUrl(t.deps, { kind: "audio", blobKey: "voicemails/secret.wav" })).toBeNull();
    expect(await playableAudioUrl(t.deps, { kind: "audio", blobKey: "recordings/call.wav" })).toBeNull();
    // A signature minted for a prompt does not open another key either.
    const good = new URL(
      (await playableAudioUrl(t.deps, { kind: "audio", blobKey: "greetings/x.wav" })) ?? "http://x/",
    );
    good.searchParams.set("key", "voicemails/secret.wav");
    const res = await t.app.request(`${good.pathname}${good.search}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(new Uint8Array(await res.arrayBuffer())).not.toEqual(bytes);
  });

  it("a new upload replaces the old file; MP3 is accepted", async () => {
    await upload(makeWav(1), "audio/wav");
    const [first] = await t.db.select({ greeting: dids.greeting }).from(dids).where(eq(dids.id, didId));
    const firstKey = first?.greeting?.source.kind === "audio" ? first.greeting.source.blobKey : "";
    const mp3 = new Uint8Array([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0, 0xff, 0xfb, 0x90, 0x64]);
    const res = await upload(mp3, "audio/mpeg");
    expect(res.status).toBe(200);
    expect(await t.deps.blobs.head(firstKey)).toBeNull();
    const fetched = await t.app.request(playUrl(await callerHears()));
    expect(fetched.headers.get("content-type")).toBe("audio/mpeg");
    expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(mp3);
  });

  it("refuses what is not audio, too large, or not an admin's, and keeps the greeting", async () => {
    await request(t, "PUT", `/api/voicemails/greetings/${didId}`, {
      as: admin,
      body: { kind: "tts", text: "Kept." },
    });
    const notWav = await upload(
      new TextEncoder().encode("definitely not a wav file, just text here......"),
      "audio/wav",
    );
    expect(notWav.status).toBe(400);
    const wrongType = await upload(makeWav(1), "video/mp4");
    expect(wrongType.status).toBe(415);
    const big = new Uint8Array(MAX_GREETING_BYTES + 1);
    big.set(makeWav(0.01));
    const tooBig = await upload(big, "audio/wav");
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as ErrorJson).error.code).toBe("payload_too_large");
    const user = await loginAs(t, "user");
    expect((await upload(makeWav(1), "audio/wav", user.session)).status).toBe(403);
    expect((await request(t, "GET", `/api/voicemails/greetings/${didId}`, { as: user.session })).status).toBe(
      403,
    );
    const unknown = await request(t, "PUT", "/api/voicemails/greetings/no-such-did", {
      as: admin,
      body: { kind: "tts", text: "Hi" },
    });
    expect(unknown.status).toBe(404);
    expect(await callerHears()).toContain("<Say>Kept.</Say>");
  });
});
