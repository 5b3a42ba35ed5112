// Inbound SMS/MMS through the real webhook: signature, storage, media copied
// from the Twilio fixture into the blob store, duplicates, auto-replies (always,
// after hours, DND, keyword; the 30-minute ledger; STOP/short codes excluded)
// and the email forward.
import { jobs, messageMedia, messages, processedWebhooks } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { writeSetting } from "../settings/store.ts";
import { request } from "../test-support.ts";
import {
  ALICE_DID,
  addAutoReply,
  inboundParams,
  PEER,
  postWebhook,
  runJobs,
  type SmsWorld,
  useSmsWorld,
} from "./sms-test-support.ts";

let w: SmsWorld;
useSmsWorld((world) => {
  w = world;
});

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
const VCARD = new TextEncoder().encode(
  "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol\r\nTEL:+15557654321\r\nEND:VCARD\r\n",
);

async function allMessages() {
  return w.t.db.select().from(messages).orderBy(messages.createdAt);
}

async function autoReplyRows() {
  return w.t.db.select().from(messages).where(eq(messages.isAutoReply, true));
}

describe("POST /api/webhooks/twilio/sms", () => {
  it("stores the message and answers empty TwiML", async () => {
    const params = inboundParams({ Body: "Are you open <today> & tomorrow?" });
    const res = await postWebhook(w.t, "/sms", params);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/xml");
    expect(await res.text()).toBe('<?xml version="1.0" encoding="UTF-8"?><Response/>');
    const rows = await allMessages();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      direction: "inbound",
      status: "received",
      didId: w.aliceDid.id,
      fromNumber: PEER,
      toNumber: ALICE_DID,
      peerNumber: PEER,
      body: "Are you open <today> & tomorrow?",
      twilioMessageSid: params.MessageSid,
      isAutoReply: false,
      readAt: null,
    });
  });

  it("refuses a forged or missing signature with 403 and stores nothing", async () => {
    const forged = await postWebhook(w.t, "/sms", inboundParams(), { authToken: "not-the-auth-token" });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ error: { code: "forbidden" } });
    const unsigned = await w.t.app.request("http://localhost:8080/api/webhooks/twilio/sms", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(inboundParams()).toString(),
    });
    expect(unsigned.status).toBe(403);
    // A valid signature over other parameters than the ones sent (a tampered body).
    const params = inboundParams();
    const signed = await postWebhook(w.t, "/sms", { ...params, Body: "original" });
    expect(signed.status).toBe(200);
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "auto" });
    const tampered = await w.t.app.request("http://localhost:8080/api/webhooks/twilio/sms", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": "c2lnbmF0dXJlLW9mLXNvbWV0aGluZy1lbHNl",
      },
      body: new URLSearchParams({ ...inboundParams(), Body: "tampered" }).toString(),
    });
    expect(tampered.status).toBe(403);
    const rows = await allMessages();
    expect(rows.map((r) => r.body)).toEqual(["original"]);
    expect(await w.t.db.select().from(processedWebhooks)).toHaveLength(1);
    expect(await w.t.db.select().from(jobs)).toHaveLength(0);
  });

  it("answers 400 for a webhook without a usable MessageSid and stores nothing", async () => {
    const res = await postWebhook(w.t, "/sms", inboundParams({ MessageSid: "nope" }));
    expect(res.status).toBe(400);
    expect(await allMessages()).toHaveLength(0);
  });

  it("copies MMS media into the blob store, byte for byte, then deletes it at Twilio", async () => {
    const sid = `MM${crypto.randomUUID().replaceAll("-", "")}`;
    const png = w.twilio.addMedia("image/png", PNG, sid);
    const vcard = w.twilio.addMedia("text/vcard", VCARD, sid);
    const exe = w.twilio.addMedia("application/x-msdownload", new Uint8Array([0x4d, 0x5a]), sid);
    const res = await postWebhook(
      w.t,
      "/sms",
      inboundParams({
        MessageSid: sid,
        Body: "",
        NumMedia: "3",
        MediaUrl0: png,
        MediaContentType0: "image/png",
        MediaUrl1: vcard,
        MediaContentType1: "text/vcard",
        MediaUrl2: exe,
        MediaContentType2: "application/x-msdownload",
      }),
    );
    expect(res.status).toBe(200);
    const outcome = await runJobs(w.t);
    expect(outcome).toMatchObject({ succeeded: 3, dead: 0, retried: 0 });

    const [message] = await allMessages();
    const media = await w.t.db
      .select()
      .from(messageMedia)
      .where(eq(messageMedia.messageId, message?.id ?? ""))
      .orderBy(messageMedia.blobKey);
    expect(media.map((m) => m.contentType)).toEqual(["image/png", "text/vcard"]);
    expect(media.map((m) => m.sizeBytes)).toEqual([PNG.byteLength, VCARD.byteLength]);

    // Alice (the DID rings her phone) downloads the same bytes with the right type.
    const [first, second] = media;
    const got = await request(w.t, "GET", `/api/messages/media/${first?.id}`, { as: w.alice.session });
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("image/png");
    expect(got.headers.get("x-content-type-options")).toBe("nosniff");
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(PNG);
    const card = await request(w.t, "GET", `/api/messages/media/${second?.id}`, { as: w.alice.session });
    expect(new Uint8Array(await card.arrayBuffer())).toEqual(VCARD);
    // Bob's phone is not on this DID: the media does not exist for him.
    const bob = await request(w.t, "GET", `/api/messages/media/${first?.id}`, { as: w.bob.session });
    expect(bob.status).toBe(404);

    // Twilio's copies of what GoSIP stored are deleted; the refused one is left alone.
    expect(w.twilio.deletedMedia).toHaveLength(2);
    expect(media.map((m) => m.twilioMediaSid).sort()).toEqual([...w.twilio.deletedMedia].sort());
    expect(w.twilio.media.size).toBe(1);

    // Running the jobs again changes nothing (they succeeded once).
    expect(await runJobs(w.t)).toMatchObject({ ran: 0 });
  });

  it("keeps nothing of a webhook whose write failed, and applies Twilio's retry in full", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "Away" });
    // The database refuses the batch's last statement (the reply's send job).
    await w.t.client.execute(
      "create trigger refuse_jobs before insert on jobs begin select raise(abort, 'disk full'); end",
    );
    const params = inboundParams();
    const failed = await postWebhook(w.t, "/sms", params);
    expect(failed.status).toBe(500);
    expect(await allMessages()).toHaveLength(0);
    expect(await w.t.db.select().from(processedWebhooks)).toHaveLength(0);
    await w.t.client.execute("drop trigger refuse_jobs");
    expect((await postWebhook(w.t, "/sms", params)).status).toBe(200);
    expect((await allMessages()).map((m) => [m.direction, m.isAutoReply])).toEqual([
      ["inbound", false],
      ["outbound", true],
    ]);
    expect(await w.t.db.select().from(jobs).where(eq(jobs.kind, "sms.send"))).toHaveLength(1);
  });

  it("does not keep media over 5 MB (and leaves it at Twilio)", async () => {
    const sid = `MM${crypto.randomUUID().replaceAll("-", "")}`;
    const big = new Uint8Array(5 * 1024 * 1024 + 1);
    big.set(PNG);
    const url = w.twilio.addMedia("image/png", big, sid);
    await postWebhook(
      w.t,
      "/sms",
      inboundParams({ MessageSid: sid, NumMedia: "1", MediaUrl0: url, MediaContentType0: "image/png" }),
    );
    expect(await runJobs(w.t)).toMatchObject({ succeeded: 1, dead: 0 });
    expect(await w.t.db.select().from(messageMedia)).toHaveLength(0);
    expect(w.twilio.deletedMedia).toHaveLength(0);
    // The message itself is there.
    expect(await allMessages()).toHaveLength(1);
  });

  it("stores a duplicate webhook once and auto-replies once, even when both arrive together", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "Thanks, we will call you back." });
    const params = inboundParams();
    const [a, b] = await Promise.all([postWebhook(w.t, "/sms", params), postWebhook(w.t, "/sms", params)]);
    const again = await postWebhook(w.t, "/sms", params);
    expect([a.status, b.status, again.status]).toEqual([200, 200, 200]);
    const rows = await allMessages();
    expect(rows.filter((r) => r.direction === "inbound")).toHaveLength(1);
    expect(await autoReplyRows()).toHaveLength(1);
    expect(await w.t.db.select().from(jobs).where(eq(jobs.kind, "sms.send"))).toHaveLength(1);

    await runJobs(w.t);
    expect(w.twilio.sendAttempts).toHaveLength(1);
    const form = w.twilio.sendAttempts[0]?.form;
    expect(form?.get("To")).toBe(PEER);
    expect(form?.get("From")).toBe(ALICE_DID);
    expect(form?.get("Body")).toBe("Thanks, we will call you back.");
    expect(form?.get("StatusCallback")).toBe("http://localhost:8080/api/webhooks/twilio/sms-status");
    const [reply] = await autoReplyRows();
    expect(reply).toMatchObject({
      direction: "outbound",
      status: "queued",
      didId: w.aliceDid.id,
      fromNumber: ALICE_DID,
      toNumber: PEER,
      twilioMessageSid: w.twilio.messages[0]?.sid,
    });
  });

  it("auto-replies at most once per sender in 30 minutes", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "Away" });
    await postWebhook(w.t, "/sms", inboundParams({ Body: "one" }));
    w.clock.advance(29 * 60_000);
    await postWebhook(w.t, "/sms", inboundParams({ Body: "two" }));
    // Another sender is answered meanwhile.
    await postWebhook(w.t, "/sms", inboundParams({ Body: "hi", From: "+15559998888" }));
    expect((await autoReplyRows()).map((r) => r.toNumber)).toEqual([PEER, "+15559998888"]);
    w.clock.advance(2 * 60_000);
    await postWebhook(w.t, "/sms", inboundParams({ Body: "three" }));
    expect((await autoReplyRows()).map((r) => r.toNumber)).toEqual([PEER, "+15559998888", PEER]);
    expect((await allMessages()).filter((m) => m.direction === "inbound")).toHaveLength(4);
  });

  it("never auto-replies to STOP/HELP keywords, short codes or alphanumeric senders", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "Away" });
    for (const Body of ["STOP", "stop.", " Unsubscribe ", "HELP", "start"])
      await postWebhook(w.t, "/sms", inboundParams({ Body, From: "+15550000001" }));
    await postWebhook(w.t, "/sms", inboundParams({ Body: "no", OptOutType: "STOP", From: "+15550000002" }));
    await postWebhook(w.t, "/sms", inboundParams({ Body: "Your code is 1234", From: "12345" }));
    await postWebhook(w.t, "/sms", inboundParams({ Body: "Your parcel", From: "DHL" }));
    expect(await allMessages()).toHaveLength(8);
    expect(await autoReplyRows()).toHaveLength(0);
    // A message that merely mentions "stop" is answered.
    await postWebhook(w.t, "/sms", inboundParams({ Body: "please stop by later", From: "+15550000003" }));
    expect(await autoReplyRows()).toHaveLength(1);
  });

  it("answers keyword rules on whole words only, the lowest priority winning", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "General", priority: 100 });
    await addAutoReply(w.t, w.aliceDid.id, {
      trigger: "keyword",
      keyword: "hours",
      text: "9 to 5",
      priority: 10,
    });
    await postWebhook(w.t, "/sms", inboundParams({ Body: "What are your HOURS?", From: "+15550000011" }));
    await postWebhook(w.t, "/sms", inboundParams({ Body: "hoursly rates", From: "+15550000012" }));
    const replies = await autoReplyRows();
    expect(replies.map((r) => [r.toNumber, r.body])).toEqual([
      ["+15550000011", "9 to 5"],
      ["+15550000012", "General"],
    ]);
  });

  it("uses a keyword rule alone only when the word is there", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "keyword", keyword: "price", text: "See our site" });
    await postWebhook(w.t, "/sms", inboundParams({ Body: "pricey", From: "+15550000021" }));
    await postWebhook(w.t, "/sms", inboundParams({ Body: "The price?", From: "+15550000022" }));
    expect((await autoReplyRows()).map((r) => r.toNumber)).toEqual(["+15550000022"]);
  });

  it("answers DND rules while the DID or the whole installation is on do-not-disturb", async () => {
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "dnd", text: "Do not disturb" });
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000031" }));
    expect(await autoReplyRows()).toHaveLength(0);
    await writeSetting(w.t.deps, "dnd", { v: 1, enabled: true });
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000032" }));
    await writeSetting(w.t.deps, "dnd", { v: 1, enabled: false });
    await request(w.t, "PATCH", `/api/dids/${w.aliceDid.id}`, { as: w.admin.session, body: { dnd: true } });
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000033" }));
    expect((await autoReplyRows()).map((r) => r.toNumber)).toEqual(["+15550000032", "+15550000033"]);
  });
});

describe("email forwarding", () => {
  it("queues an email to the DID's users, with the stored media attached", async () => {
    await writeSetting(w.t.deps, "messaging", { v: 1, forwardToEmail: true });
    await writeSetting(w.t.deps, "email", {
      v: 1,
      provider: "smtp",
      from: "pbx@example.test",
      smtp: { host: "127.0.0.1", port: 2525 },
    });
    const sid = `MM${crypto.randomUUID().replaceAll("-", "")}`;
    const png = w.twilio.addMedia("image/png", PNG, sid);
    await postWebhook(
      w.t,
      "/sms",
      inboundParams({
        MessageSid: sid,
        Body: "Look at this",
        NumMedia: "1",
        MediaUrl0: png,
        MediaContentType0: "image/png",
      }),
    );
    await postWebhook(w.t, "/sms", inboundParams({ Body: "Text only", From: "+15550000051" }));
    // Run only the jobs due now, without sending the emails (their SMTP server is another test's).
    const { runDueJobs } = await import("../jobs/runner.ts");
    const { messagesJobs } = await import("./jobs.ts");
    await runDueJobs(w.t.deps, { handlers: messagesJobs, random: () => 0 });
    await runDueJobs(w.t.deps, { handlers: messagesJobs, random: () => 0 });
    const emails = await w.t.db.select().from(jobs).where(eq(jobs.kind, "email.send"));
    expect(emails).toHaveLength(2);
    const byText = new Map(
      emails.map((e) => [String(e.payload.text).includes("Look at this") ? "mms" : "sms", e]),
    );
    const mms = byText.get("mms")?.payload;
    expect(mms).toMatchObject({ to: w.alice.user.email, subject: `SMS from ${PEER}` });
    expect(mms?.attachments).toEqual([
      {
        filename: "mms-1.png",
        contentType: "image/png",
        blobKey: expect.stringMatching(/^messages\/.+\/0$/),
      },
    ]);
    expect(byText.get("sms")?.payload).toMatchObject({ to: w.alice.user.email, attachments: [] });
  });
});
