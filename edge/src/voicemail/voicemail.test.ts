// Voicemail end to end on the edge: the TwiML the voice webhook returns, Twilio's signed
// recording and transcription callbacks, and the outbox jobs (driven by the real runner)
// against a local server playing Twilio's REST API (real WAV media, DELETE, Intelligence),
// with a real SMTP server on loopback receiving the emails.
import type { AddressInfo } from "node:net";
import { cdrs, dids, jobs, voicemails } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runDueJobs } from "../jobs/runner.ts";
import { nodeSmtpTransport } from "../platform/node/smtp.ts";
import { writeSetting } from "../settings/store.ts";
import {
  createTestEdge,
  createUser,
  request,
  signIn,
  TestClock,
  type TestEdge,
  type TestUser,
} from "../test-support.ts";
import { twilioSignature } from "../twilio/signature.ts";
import { twiml } from "../twiml/builder.ts";
import { FakeTwilio, makeWav, sid, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN } from "./fake-twilio.test-support.ts";
import { INTELLIGENCE_POLL_MS, voicemailJobs } from "./jobs.ts";
import { TWILIO_DELETE_DEADLINE_MS } from "./store.ts";
import { DEFAULT_GREETING, voicemailTwiml } from "./twiml.ts";

let t: TestEdge;
let clock: TestClock;
let twilio: FakeTwilio;
let smtp: SMTPServer;
let mails: ParsedMail[];
let owner: TestUser;
let didId: string;
let cdrId: string;
let callSid: string;

const CALLER = "+15557654321";

beforeEach(async () => {
  twilio = await new FakeTwilio().start();
  clock = new TestClock(Date.UTC(2026, 0, 15, 17, 30, 0));
  t = await createTestEdge({
    clock,
    env: {
      TWILIO_ACCOUNT_SID: TEST_ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: TEST_AUTH_TOKEN,
      TWILIO_API_BASE: twilio.base,
    },
  });
  t.deps.mail = nodeSmtpTransport;
  mails = [];
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((mail) => {
          mails.push(mail);
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve()));
  const port = (smtp.server.address() as AddressInfo).port;
  await writeSetting(t.deps, "email", {
    v: 1,
    provider: "smtp",
    from: "pbx@example.test",
    smtp: { host: "127.0.0.1", port, secure: false },
  });
  owner = await createUser(t, { role: "user", email: "owner@example.test", name: "Owner" });
  const [did] = await t.db
    .insert(dids)
    .values({ e164: "+15551230001", label: "Office" })
    .returning({ id: dids.id });
  if (!did) throw new Error("no DID");
  didId = did.id;
  callSid = sid("CA");
  const [cdr] = await t.db
    .insert(cdrs)
    .values({
      direction: "inbound",
      fromNumber: CALLER,
      toNumber: "+15551230001",
      didId,
      userId: owner.id,
      status: "ended",
      disposition: "missed",
      startedAt: new Date(clock.now()),
      twilioCallSid: callSid,
    })
    .returning({ id: cdrs.id });
  if (!cdr) throw new Error("no CDR");
  cdrId = cdr.id;
});

afterEach(async () => {
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await twilio.close();
  await t.close();
});

/** The `<Record>` of the voicemail TwiML the voice webhook would answer. */
async function recordVerb(): Promise<Record<string, string>> {
  const verbs = await voicemailTwiml(t.deps, { didId, userId: owner.id, cdrId, callSid });
  const record = verbs.find((v) => v.name === "Record");
  if (!record) throw new Error("no <Record>");
  return Object.fromEntries(Object.entries(record.attributes).map(([k, v]) => [k, String(v)]));
}

/** A form POST to `url` signed the way Twilio signs it. */
async function postSigned(url: string, params: Record<string, string>, token = TEST_AUTH_TOKEN) {
  const signature = await twilioSignature(token, url, params);
  return t.app.request(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature },
    body: new URLSearchParams(params).toString(),
  });
}

/** Twilio's recording status callback to the URL the TwiML named. */
async function recordingCallback(recordingSid: string, seconds: number, status = "completed") {
  const { recordingStatusCallback } = await recordVerb();
  const params: Record<string, string> = {
    AccountSid: TEST_ACCOUNT_SID,
    CallSid: callSid,
    RecordingSid: recordingSid,
    RecordingStatus: status,
    RecordingSource: "RecordVerb",
    RecordingChannels: "1",
  };
  if (status === "completed") {
    params.RecordingUrl = twilio.recordingUrl(recordingSid);
    params.RecordingDuration = String(seconds);
  }
  return postSigned(recordingStatusCallback ?? "", params);
}

async function transcriptionCallback(recordingSid: string, text: string, status = "completed") {
  const { transcribeCallback } = await recordVerb();
  return postSigned(transcribeCallback ?? "", {
    AccountSid: TEST_ACCOUNT_SID,
    CallSid: callSid,
    RecordingSid: recordingSid,
    TranscriptionSid: sid("TR"),
    TranscriptionStatus: status,
    TranscriptionText: text,
    TranscriptionType: "fast",
    TranscriptionUrl: `${twilio.base}/2010-04-01/Accounts/${TEST_ACCOUNT_SID}/Transcriptions/x`,
  });
}

/** Runs due jobs until none is left (SMTP and the fake Twilio answer at once). */
async function drain(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const r = await runDueJobs(t.deps, { random: () => 0 });
    if (r.ran === 0) return;
  }
  throw new Error("jobs kept coming");
}

/** A recording "made" in Twilio: its media served by the fake. */
function recorded(seconds: number): { recordingSid: string; wav: Uint8Array } {
  const recordingSid = sid("RE");
  const wav = makeWav(seconds);
  twilio.recordings.set(recordingSid, wav);
  return { recordingSid, wav };
}

async function theVoicemail() {
  const rows = await t.db.select().from(voicemails);
  expect(rows).toHaveLength(1);
  const [row] = rows;
  if (!row) throw new Error("no voicemail");
  return row;
}

async function theCdr() {
  const [row] = await t.db.select().from(cdrs).where(eq(cdrs.id, cdrId));
  if (!row) throw new Error("no CDR");
  return row;
}

describe("voicemail TwiML", () => {
  it("greets with the built-in text, records with the SPEC limits and links the callbacks to DID, mailbox and CDR", async () => {
    const xml = twiml(await voicemailTwiml(t.deps, { didId, userId: owner.id, cdrId, callSid }));
    const query = `didId=${didId}&amp;userId=${owner.id}&amp;cdrId=${cdrId}`;
    expect(xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?><Response><Say>${DEFAULT_GREETING}</Say>` +
        `<Record maxLength="180" timeout="10" playBeep="true" action="http://localhost:8080/api/webhooks/twilio/recording-done?${query}" method="POST"` +
        ` recordingStatusCallback="http://localhost:8080/api/webhooks/twilio/recording?${query}" recordingStatusCallbackMethod="POST"` +
        ` recordingStatusCallbackEvent="completed absent failed" transcribe="true"` +
        ` transcribeCallback="http://localhost:8080/api/webhooks/twilio/transcription?${query}"/>` +
        "<Hangup/></Response>",
    );
  });

  it("speaks the DID's text-to-speech greeting, escaped", async () => {
    await t.db
      .update(dids)
      .set({ greeting: { v: 1, source: { kind: "tts", text: "Hi <there> & bye", voice: "Polly.Joanna" } } })
      .where(eq(dids.id, didId));
    const xml = twiml(await voicemailTwiml(t.deps, { didId, userId: null, cdrId, callSid }));
    expect(xml).toContain('<Say voice="Polly.Joanna">Hi &lt;there&gt; &amp; bye</Say>');
    expect(xml).not.toContain("userId=");
  });

  it("answers the Record action with a hang-up", async () => {
    const { action } = await recordVerb();
    const res = await postSigned(action ?? "", { CallSid: callSid, RecordingSid: sid("RE") });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("<Response><Hangup/></Response>");
  });
});

describe("recording callback", () => {
  it("stores the voicemail, copies the audio, emails it with 'transcript to follow', then the transcript, then removes it from Twilio", async () => {
    const { recordingSid, wav } = recorded(5);
    const res = await recordingCallback(recordingSid, 5);
    expect(res.status).toBe(200);

    const vm = await theVoicemail();
    expect(vm).toMatchObject({
      didId,
      userId: owner.id,
      cdrId,
      fromNumber: CALLER,
      durationSeconds: 5,
      twilioRecordingSid: recordingSid,
      twilioCallSid: callSid,
      transcriptStatus: "pending",
      audioStatus: "pending",
    });
    expect(await theCdr()).toMatchObject({ voicemailId: vm.id, disposition: "voicemail" });

    await drain();
    const stored = await theVoicemail();
    expect(stored).toMatchObject({
      audioStatus: "stored",
      contentType: "audio/x-wav",
      sizeBytes: wav.byteLength,
    });
    const blob = await t.deps.blobs.get(stored.blobKey ?? "");
    expect(new Uint8Array(await new Response(blob?.body).arrayBuffer())).toEqual(wav);
    // The download used the account's credentials.
    expect(twilio.hits("GET", /\.wav$/).every((r) => r.authorized)).toBe(true);

    expect(mails).toHaveLength(1);
    const first = mails[0];
    expect(first?.to).toMatchObject({ value: [{ address: "owner@example.test" }] });
    expect(first?.subject).toBe(`GoSIP: voicemail from ${CALLER} (0:05)`);
    expect(first?.text).toContain("Office (+15551230001)");
    expect(first?.text).toContain("Transcript to follow");
    expect(first?.attachments).toHaveLength(1);
    expect(new Uint8Array(first?.attachments[0]?.content ?? [])).toEqual(wav);
    expect(first?.attachments[0]?.contentType).toBe("audio/x-wav");
    // Twilio still transcribes from the recording: it stays until the transcript came.
    expect(twilio.deletedRecordings).toEqual([]);

    expect((await transcriptionCallback(recordingSid, "Please call me back about the invoice.")).status).toBe(
      200,
    );
    expect(await theVoicemail()).toMatchObject({
      transcript: "Please call me back about the invoice.",
      transcriptStatus: "completed",
    });
    await drain();
    expect(mails).toHaveLength(2);
    expect(mails[1]?.subject).toBe(`GoSIP: transcript of the voicemail from ${CALLER}`);
    expect(mails[1]?.text).toContain("Please call me back about the invoice.");
    expect(twilio.deletedRecordings).toEqual([recordingSid]);
    expect((await theVoicemail()).twilioDeletedAt).not.toBeNull();

    // Twilio sends the same callbacks again: nothing new anywhere.
    expect((await recordingCallback(recordingSid, 5)).status).toBe(200);
    expect((await transcriptionCallback(recordingSid, "Please call me back about the invoice.")).status).toBe(
      200,
    );
    await drain();
    await theVoicemail();
    expect(mails).toHaveLength(2);
  });

  it("a duplicate callback before the jobs ran still makes one voicemail and one email", async () => {
    const { recordingSid } = recorded(4);
    const [a, b] = await Promise.all([
      recordingCallback(recordingSid, 4),
      recordingCallback(recordingSid, 4),
    ]);
    expect([a?.status, b?.status]).toEqual([200, 200]);
    await drain();
    await theVoicemail();
    expect(mails).toHaveLength(1);
    expect(twilio.hits("GET", /\.wav$/)).toHaveLength(1);
  });

  it("keeps a transcript that arrives before its recording and sends it with the first email", async () => {
    const { recordingSid } = recorded(6);
    expect((await transcriptionCallback(recordingSid, "Early bird transcript.")).status).toBe(200);
    expect(await t.db.select().from(voicemails)).toHaveLength(0);

    expect((await recordingCallback(recordingSid, 6)).status).toBe(200);
    expect(await theVoicemail()).toMatchObject({
      transcript: "Early bird transcript.",
      transcriptStatus: "completed",
    });
    await drain();
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain("Transcript:\nEarly bird transcript.");
    expect(mails[0]?.text).not.toContain("to follow");
    // The transcript had settled: the recording leaves Twilio right after the copy.
    expect(twilio.deletedRecordings).toEqual([recordingSid]);
  });

  it("attaches a transcript that comes hours later, and removes the recording at the deadline when none comes", async () => {
    const { recordingSid } = recorded(8);
    await recordingCallback(recordingSid, 8);
    await drain();
    expect(twilio.deletedRecordings).toEqual([]);

    clock.advance(8 * 3_600_000);
    await transcriptionCallback(recordingSid, "Eight hours late.");
    await drain();
    expect((await theVoicemail()).transcript).toBe("Eight hours late.");
    expect(mails.map((m) => m.subject)).toEqual([
      `GoSIP: voicemail from ${CALLER} (0:08)`,
      `GoSIP: transcript of the voicemail from ${CALLER}`,
    ]);
    expect(twilio.deletedRecordings).toEqual([recordingSid]);

    // Another message whose transcript never comes: deleted from Twilio after a day.
    const other = recorded(9);
    await recordingCallback(other.recordingSid, 9);
    await drain();
    expect(twilio.deletedRecordings).not.toContain(other.recordingSid);
    clock.advance(TWILIO_DELETE_DEADLINE_MS + 1000);
    await drain();
    expect(twilio.deletedRecordings).toContain(other.recordingSid);
  });

  it("a failed transcription leaves the transcript empty, sends no follow-up, and frees the recording", async () => {
    const { recordingSid } = recorded(5);
    await recordingCallback(recordingSid, 5);
    await drain();
    await transcriptionCallback(recordingSid, "", "failed");
    await drain();
    expect(await theVoicemail()).toMatchObject({ transcript: null, transcriptStatus: "failed" });
    expect(mails).toHaveLength(1);
    expect(twilio.deletedRecordings).toEqual([recordingSid]);
  });

  it("discards a recording under 3 s: no voicemail, CDR stays missed, deleted from Twilio, no email", async () => {
    const { recordingSid } = recorded(2);
    expect((await recordingCallback(recordingSid, 2)).status).toBe(200);
    await drain();
    expect(await t.db.select().from(voicemails)).toHaveLength(0);
    expect(await theCdr()).toMatchObject({ disposition: "missed", voicemailId: null });
    expect(twilio.deletedRecordings).toEqual([recordingSid]);
    expect(mails).toHaveLength(0);
  });

  it("a caller sent to voicemail who leaves nothing is a missed call, not a voicemail, on the CDR", async () => {
    // The voice webhooks mark the CDR "voicemail" when they send the call to <Record>.
    await t.db.update(cdrs).set({ disposition: "voicemail" }).where(eq(cdrs.id, cdrId));
    expect((await recordingCallback(sid("RE"), 0, "absent")).status).toBe(200);
    expect(await theCdr()).toMatchObject({ disposition: "missed", voicemailId: null });
    await t.db.update(cdrs).set({ disposition: "voicemail" }).where(eq(cdrs.id, cdrId));
    const short = recorded(1);
    await recordingCallback(short.recordingSid, 1);
    expect(await theCdr()).toMatchObject({ disposition: "missed", voicemailId: null });
  });

  it.each(["absent", "failed"])(
    "stores nothing for a recording %s (the CDR stays missed)",
    async (status) => {
      const recordingSid = sid("RE");
      expect((await recordingCallback(recordingSid, 0, status)).status).toBe(200);
      await drain();
      expect(await t.db.select().from(voicemails)).toHaveLength(0);
      expect(await theCdr()).toMatchObject({ disposition: "missed", voicemailId: null });
      expect(twilio.requests).toHaveLength(0);
      expect(mails).toHaveLength(0);
    },
  );

  it("tells the admins when the message belongs to no user's mailbox", async () => {
    await createUser(t, { role: "admin", email: "boss@example.test" });
    const verbs = await voicemailTwiml(t.deps, { didId, userId: null, cdrId, callSid });
    const record = verbs.find((v) => v.name === "Record");
    const { recordingSid } = recorded(5);
    await postSigned(String(record?.attributes.recordingStatusCallback), {
      CallSid: callSid,
      RecordingSid: recordingSid,
      RecordingStatus: "completed",
      RecordingUrl: twilio.recordingUrl(recordingSid),
      RecordingDuration: "5",
    });
    await drain();
    expect((await theVoicemail()).userId).toBeNull();
    expect(mails.map((m) => m.to)).toMatchObject([{ value: [{ address: "boss@example.test" }] }]);
  });

  it("when the copy fails for good, the voicemail says so, the owner is told, and Twilio keeps the recording", async () => {
    const recordingSid = sid("RE"); // Twilio answers 404 for its media
    await recordingCallback(recordingSid, 7);
    await drain();
    expect(await theVoicemail()).toMatchObject({ audioStatus: "failed", blobKey: null });
    expect(mails).toHaveLength(1);
    expect(mails[0]?.attachments).toHaveLength(0);
    expect(mails[0]?.text).toContain("could not be copied from Twilio");
    expect(twilio.hits("DELETE", /Recordings/)).toHaveLength(0);
  });

  it("refuses forged and invalid callbacks without storing anything", async () => {
    const { recordingSid } = recorded(5);
    const { recordingStatusCallback } = await recordVerb();
    const params = {
      CallSid: callSid,
      RecordingSid: recordingSid,
      RecordingStatus: "completed",
      RecordingUrl: twilio.recordingUrl(recordingSid),
      RecordingDuration: "5",
    };
    const forged = await postSigned(recordingStatusCallback ?? "", params, "not-the-auth-token");
    expect(forged.status).toBe(403);
    const bad = await postSigned(recordingStatusCallback ?? "", { ...params, RecordingSid: "RE-nope" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("validation_failed");
    const badTranscript = await postSigned("http://localhost:8080/api/webhooks/twilio/transcription", {
      RecordingSid: recordingSid,
      TranscriptionStatus: "completed",
    });
    expect(badTranscript.status).toBe(400);
    await drain();
    expect(await t.db.select().from(voicemails)).toHaveLength(0);
    expect(await t.db.select().from(jobs)).toHaveLength(0);
    expect(twilio.requests).toHaveLength(0);
  });
});

describe("links and clean-up", () => {
  it("a mailbox owner or DID deleted since the call is not linked (the admins are told instead)", async () => {
    await createUser(t, { role: "admin", email: "boss@example.test" });
    const verbs = await voicemailTwiml(t.deps, { didId: "gone-did", userId: "gone-user", cdrId, callSid });
    const record = verbs.find((v) => v.name === "Record");
    const { recordingSid } = recorded(5);
    const res = await postSigned(String(record?.attributes.recordingStatusCallback), {
      CallSid: callSid,
      RecordingSid: recordingSid,
      RecordingStatus: "completed",
      RecordingUrl: twilio.recordingUrl(recordingSid),
      RecordingDuration: "5",
    });
    expect(res.status).toBe(200);
    // The DID falls back to the CDR's.
    expect(await theVoicemail()).toMatchObject({ userId: null, didId, cdrId });
    await drain();
    expect(mails.map((m) => m.to)).toMatchObject([{ value: [{ address: "boss@example.test" }] }]);
  });

  it("a voicemail deleted by its owner leaves Twilio too, and a recording already gone there counts as done", async () => {
    const { recordingSid } = recorded(5);
    await recordingCallback(recordingSid, 5);
    await drain();
    const vm = await theVoicemail();
    twilio.recordings.delete(recordingSid); // removed in Twilio's console meanwhile
    const session = await signIn(t, owner);
    expect((await request(t, "DELETE", `/api/voicemails/${vm.id}`, { as: session })).status).toBe(204);
    await drain();
    expect(twilio.hits("DELETE", new RegExp(`${recordingSid}\\.json$`))).toHaveLength(1);
    expect((await theVoicemail()).twilioDeletedAt).not.toBeNull();
    const failed = await t.db.select().from(jobs).where(eq(jobs.status, "dead"));
    expect(failed).toEqual([]);
  });
});

describe("messages over two minutes", () => {
  it("without an Intelligence service: stored as 'no transcript', and the email says so", async () => {
    const { recordingSid } = recorded(150);
    await recordingCallback(recordingSid, 150);
    expect((await theVoicemail()).transcriptStatus).toBe("too_long");
    await drain();
    expect((await theVoicemail()).transcriptStatus).toBe("too_long");
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain("No transcript: the message is longer than 2 minutes.");
    expect(twilio.hits("POST", /\/v2\/Transcripts$/)).toHaveLength(0);
  });

  it("with an Intelligence service: a transcript is made from the RecordingSid, polled, attached and emailed", async () => {
    twilio.services = [sid("GA")];
    twilio.nextTranscript = {
      sentences: ["First sentence.", "Second sentence."],
      pendingReads: 1,
      finalStatus: "completed",
    };
    const { recordingSid } = recorded(150);
    await recordingCallback(recordingSid, 150);
    await drain();
    const created = twilio.hits("POST", /\/v2\/Transcripts$/);
    expect(created).toHaveLength(1);
    expect(created[0]?.form.ServiceSid).toBe(twilio.services[0]);
    expect(JSON.parse(created[0]?.form.Channel ?? "{}")).toEqual({
      media_properties: { source_sid: recordingSid },
    });
    // The recording stays in Twilio while Intelligence works from it.
    expect(twilio.deletedRecordings).toEqual([]);
    expect(mails).toHaveLength(1);

    clock.advance(INTELLIGENCE_POLL_MS); // first poll: still in progress
    await drain();
    expect((await theVoicemail()).transcriptStatus).toBe("too_long");
    clock.advance(INTELLIGENCE_POLL_MS); // second poll: completed
    await drain();
    expect(await theVoicemail()).toMatchObject({
      transcriptStatus: "completed",
      transcript: "First sentence.\nSecond sentence.",
    });
    expect(mails).toHaveLength(2);
    expect(mails[1]?.text).toContain("First sentence.\nSecond sentence.");
    expect(twilio.deletedRecordings).toEqual([recordingSid]);
    // The transcript's text is copied: it leaves Twilio too.
    expect(twilio.hits("DELETE", /^\/v2\/Transcripts\/GT/)).toHaveLength(1);
    expect(twilio.transcripts.size).toBe(0);
  });

  it("a retried Intelligence job finds the transcript it made instead of making a second one", async () => {
    twilio.services = [sid("GA")];
    const { recordingSid } = recorded(130);
    await recordingCallback(recordingSid, 130);
    const vm = await theVoicemail();
    const handler = voicemailJobs["voicemail.intelligence-transcript"];
    if (!handler) throw new Error("no handler");
    const job = (attempts: number) => ({
      deps: t.deps,
      ambiguous: attempts > 0,
      job: {
        id: `job-${attempts}`,
        kind: "voicemail.intelligence-transcript",
        payload: { v: 1 as const, voicemailId: vm.id, recordingSid },
        attempts,
        idempotencyKey: `voicemail.intelligence-transcript:${vm.id}`,
      },
    });
    await handler.run(job(0));
    await handler.run(job(1));
    expect(twilio.hits("POST", /\/v2\/Transcripts$/)).toHaveLength(1);
    expect(twilio.transcripts.size).toBe(1);
  });
});
