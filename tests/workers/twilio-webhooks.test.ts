/**
 * The Twilio webhooks inside workerd: the same signed form POSTs Twilio sends,
 * through the deployed Worker (wrangler.toml) and its Hrana-backed database.
 * Core flows only (the full behaviour is tested on Node in edge/src): an inbound
 * call with no relay goes to voicemail and leaves one CDR, the recording callback
 * creates one voicemail, an inbound SMS is stored once, and a forged signature is
 * refused with 403 before anything is stored.
 *
 * Numbers here are unique to this file: the database is shared with the other
 * workers test files, and no user is created (the setup test needs a first run).
 */
import { exports } from "cloudflare:workers";
import { type Client, createClient } from "@libsql/client/web";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { twilioSignature } from "../../edge/src/twilio/signature.ts";

const BASE = "https://gosip.example.com";
/** The fake credentials the Worker gets as TWILIO_* bindings (vitest.config.ts). */
const AUTH_TOKEN = "workers-test-auth-token";
const DID = "+15550109901";
const CALLER = "+15557650901";

let db: Client;

beforeAll(async () => {
  db = createClient({ url: inject("hranaUrl"), authToken: inject("hranaToken") });
  // Migrations run on the Worker's first request; ask for health so the tables exist, then add the DID.
  await exports.default.fetch(new Request(`${BASE}/api/system/health`));
  await db.execute({
    sql: "insert into dids (id, e164, label, default_targets, dnd, created_at, updated_at) values (?, ?, 'Workers line', ?, 0, ?, ?) on conflict do nothing",
    args: ["did-workers-1", DID, JSON.stringify({ v: 1, deviceIds: [] }), Date.now(), Date.now()],
  });
});

afterAll(() => db.close());

async function webhook(path: string, params: Record<string, string>, signature?: string): Promise<Response> {
  const url = `${BASE}${path}`;
  const sig = signature ?? (await twilioSignature(AUTH_TOKEN, url, params));
  return exports.default.fetch(
    new Request(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig },
      body: new URLSearchParams(params).toString(),
    }),
  );
}

async function count(sql: string, args: (string | number)[]): Promise<number> {
  const r = await db.execute({ sql, args });
  return Number(r.rows[0]?.[0] ?? 0);
}

describe("Twilio webhooks on Workers (workerd + Hrana)", () => {
  const callSid = "CA0000000000000000000000000000b001";

  it("refuses a forged voice webhook with 403 and stores nothing", async () => {
    const res = await webhook(
      "/api/webhooks/twilio/voice",
      { CallSid: "CA0000000000000000000000000000f0f0", From: CALLER, To: DID },
      "bm90LWEtc2lnbmF0dXJl",
    );
    expect(res.status).toBe(403);
    expect(
      await count("select count(*) from cdrs where twilio_call_sid = ?", [
        "CA0000000000000000000000000000f0f0",
      ]),
    ).toBe(0);
  });

  it("sends an inbound call to voicemail when no relay is linked, with one CDR even when Twilio retries", async () => {
    const params = {
      AccountSid: "AC0000000000000000000000000000beef",
      CallSid: callSid,
      From: CALLER,
      To: DID,
      CallStatus: "ringing",
      Direction: "inbound",
    };
    const first = await webhook("/api/webhooks/twilio/voice", params);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toContain("text/xml");
    const xml = await first.text();
    // Never silence: a greeting and a recording, with callbacks to this public URL.
    expect(xml).toContain("<Record");
    expect(xml).toContain(`recordingStatusCallback="${BASE}/api/webhooks/twilio/recording`);
    expect(xml).not.toContain("<Sip");

    const again = await webhook("/api/webhooks/twilio/voice", params);
    expect(again.status).toBe(200);
    expect(await count("select count(*) from cdrs where twilio_call_sid = ?", [callSid])).toBe(1);
  });

  it("turns the recording callback into one voicemail linked to the call", async () => {
    const xml = await (
      await webhook("/api/webhooks/twilio/voice", {
        CallSid: callSid,
        From: CALLER,
        To: DID,
        CallStatus: "ringing",
        Direction: "inbound",
      })
    ).text();
    const m = /recordingStatusCallback="([^"]+)"/.exec(xml);
    const callbackUrl = (m?.[1] ?? "").replaceAll("&amp;", "&");
    expect(callbackUrl.startsWith(BASE)).toBe(true);
    const path = callbackUrl.slice(BASE.length);
    const params = {
      AccountSid: "AC0000000000000000000000000000beef",
      CallSid: callSid,
      RecordingSid: "RE0000000000000000000000000000b001",
      RecordingUrl:
        "https://api.twilio.com/2010-04-01/Accounts/AC0000000000000000000000000000beef/Recordings/RE0000000000000000000000000000b001",
      RecordingStatus: "completed",
      RecordingDuration: "14",
      RecordingChannels: "1",
    };
    expect((await webhook(path, params)).status).toBeLessThan(300);
    expect((await webhook(path, params)).status).toBeLessThan(300);
    expect(
      await count("select count(*) from voicemails where twilio_recording_sid = ?", [
        "RE0000000000000000000000000000b001",
      ]),
    ).toBe(1);
    const cdr = await db.execute({
      sql: "select disposition, voicemail_id from cdrs where twilio_call_sid = ?",
      args: [callSid],
    });
    expect(cdr.rows[0]?.disposition).toBe("voicemail");
    expect(cdr.rows[0]?.voicemail_id).toBeTruthy();
    // The audio copy waits in the durable outbox.
    expect(await count("select count(*) from jobs where kind like 'voicemail.%'", [])).toBeGreaterThan(0);
  });

  it("stores an inbound SMS once, however often Twilio delivers the webhook", async () => {
    const params = {
      AccountSid: "AC0000000000000000000000000000beef",
      MessageSid: "SM0000000000000000000000000000b001",
      From: CALLER,
      To: DID,
      Body: "Hello from <workerd> & friends",
      NumMedia: "0",
      NumSegments: "1",
    };
    const res = await webhook("/api/webhooks/twilio/sms", params);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("<Response");
    expect((await webhook("/api/webhooks/twilio/sms", params)).status).toBe(200);
    const rows = await db.execute({
      sql: "select body, direction, peer_number from messages where twilio_message_sid = ?",
      args: ["SM0000000000000000000000000000b001"],
    });
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]?.body).toBe("Hello from <workerd> & friends");
    expect(rows.rows[0]?.peer_number).toBe(CALLER);
  });

  it("refuses a forged SMS webhook and stores nothing", async () => {
    const params = { MessageSid: "SM0000000000000000000000000000f0f0", From: CALLER, To: DID, Body: "spoof" };
    const good = await twilioSignature(AUTH_TOKEN, `${BASE}/api/webhooks/twilio/sms`, params);
    // Signed for other parameters: a tampered body.
    const res = await webhook("/api/webhooks/twilio/sms", { ...params, Body: "tampered" }, good);
    expect(res.status).toBe(403);
    expect(
      await count("select count(*) from messages where twilio_message_sid = ?", [
        "SM0000000000000000000000000000f0f0",
      ]),
    ).toBe(0);
  });
});
