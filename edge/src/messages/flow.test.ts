// The whole inbound path as a user notices it: an MMS arrives (signed webhook),
// the sender gets exactly one auto-reply through the Twilio fixture, and Alice's
// mailbox (a real SMTP server on loopback) receives the message with the photo
// attached byte for byte. A duplicate webhook afterwards changes nothing.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startTestSmtpServer, type TestSmtpServer, useTestSmtp } from "../notifications/test-smtp.ts";
import { writeSetting } from "../settings/store.ts";
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
import { FIXTURE_AUTH_TOKEN } from "./twilio-fixture.ts";

let w: SmsWorld;
useSmsWorld((world) => {
  w = world;
});
let smtp: TestSmtpServer;
beforeEach(async () => {
  smtp = await startTestSmtpServer();
});
afterEach(() => smtp.close());

const PHOTO = new Uint8Array([
  0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 2, 3, 4, 5, 0xff, 0xd9,
]);

/** Runs the outbox until nothing is due (bounded: a loop here would be a bug). */
async function drain(): Promise<void> {
  for (let i = 0; i < 5; i++) if ((await runJobs(w.t)).ran === 0) return;
  throw new Error("the outbox kept finding work");
}

describe("SMS in → one auto-reply → email forward", () => {
  it("answers once, forwards the photo by email, and ignores the duplicate", async () => {
    await useTestSmtp(w.t, smtp);
    await writeSetting(w.t.deps, "messaging", { v: 1, forwardToEmail: true });
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "always", text: "Got it, talk soon!" });

    const sid = `MM${crypto.randomUUID().replaceAll("-", "")}`;
    const params = inboundParams({
      MessageSid: sid,
      Body: "Photo of the boiler",
      NumMedia: "1",
      MediaUrl0: w.twilio.addMedia("image/jpeg", PHOTO, sid),
      MediaContentType0: "image/jpeg",
    });
    expect((await postWebhook(w.t, "/sms", params)).status).toBe(200);
    await drain();

    expect(
      w.twilio.sendAttempts.map((a) => [a.form.get("To"), a.form.get("From"), a.form.get("Body")]),
    ).toEqual([[PEER, ALICE_DID, "Got it, talk soon!"]]);
    expect(smtp.received).toHaveLength(1);
    const email = smtp.received[0];
    expect(email?.to).toEqual([w.alice.user.email]);
    expect(email?.mail.subject).toBe(`SMS from ${PEER}`);
    expect(email?.mail.text).toContain("Photo of the boiler");
    expect(email?.mail.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ["mms-1.jpg", "image/jpeg"],
    ]);
    expect(new Uint8Array(email?.mail.attachments[0]?.content ?? [])).toEqual(PHOTO);

    // Twilio delivers the same webhook again (a retry after a slow answer): nothing new happens.
    expect((await postWebhook(w.t, "/sms", params)).status).toBe(200);
    await drain();
    expect(w.twilio.sendAttempts).toHaveLength(1);
    expect(smtp.received).toHaveLength(1);

    // Nothing logged along the way names the caller, the line or the Twilio secret.
    const logged = JSON.stringify(w.t.logs);
    expect(w.t.logs.length).toBeGreaterThan(0);
    for (const secret of [PEER, ALICE_DID, FIXTURE_AUTH_TOKEN]) expect(logged).not.toContain(secret);
  });
});
