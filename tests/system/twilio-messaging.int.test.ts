/**
 * Messaging and voicemail email through the Twilio simulator, every part real and on loopback: the
 * Node edge (its outbox on its own 1 s timer) pointed at the simulator's REST server, the simulator
 * posting Twilio's signed SMS webhooks and message status callbacks, and a real SMTP server as the
 * owner's mailbox.
 *
 * What a user notices: a texter gets exactly one auto-reply however often Twilio repeats itself, and
 * not a second one within half an hour; the owner's mailbox gets the text with the photo; a message
 * sent from GoSIP reaches Twilio once even when Twilio fails or never answers, and ends "delivered";
 * a voicemail arrives by email with its audio and what the caller said.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReceivedEmail } from "../../edge/src/notifications/test-smtp.ts";
import { specViolations } from "../twilio-sim/openapi/conformance.ts";
import { postSignedWebhook } from "../twilio-sim/webhooks.ts";
import { until, wait } from "./support.ts";
import {
  endedCdr,
  OWNER_EMAIL,
  SIM_AUTH_TOKEN,
  startTwilioWorld,
  storedMessageSid,
  type TwilioWorld,
} from "./twilio-support.ts";

const DID = "+15551230002";

interface MessageJson {
  id: string;
  direction: "inbound" | "outbound";
  from: string;
  to: string;
  body: string;
  status: string;
  isAutoReply: boolean;
  media: { id: string; contentType: string; sizeBytes: number }[];
}

// A tiny but well-formed JPEG (SOI, JFIF APP0, EOI): what a phone's photo looks like to the edge.
const PHOTO = new Uint8Array([
  0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
  0x00, 0x00, 0x0b, 0x0c, 0x0d, 0x0e, 0xff, 0xd9,
]);

let w: TwilioWorld;

/** The simulator's successful message creates sent to `to` (REST requests, answered 201). */
function createsTo(to: string) {
  return w.sim.rest.state.requestsTo("POST", "/Messages.json").filter((r) => r.form.To === to);
}

/** Messages the simulated account holds that GoSIP sent to `to`. */
function simMessagesTo(to: string) {
  return [...w.sim.rest.state.messages.values()].filter(
    (m) => m.to === to && m.direction.startsWith("outbound"),
  );
}

async function conversation(peer: string): Promise<MessageJson[]> {
  const path = `/api/messages/conversations/${w.did.id}/${encodeURIComponent(peer)}?limit=100`;
  return (await w.edge.ok<{ items: MessageJson[] }>("GET", path)).items;
}

function mailsMatching(pred: (m: ReceivedEmail) => boolean): ReceivedEmail[] {
  return w.smtp.received.filter(pred);
}

beforeAll(async () => {
  w = await startTwilioWorld({ did: DID });
}, 60_000);

afterAll(async () => {
  await w?.close();
});

describe("SMS in through the simulator", () => {
  it("one auto-reply per sender per half hour, none for a repeated webhook, and the MMS forwarded by email with its photo", async () => {
    const sender = "+15557650001";
    await w.edge.ok("PUT", "/api/settings/messaging", { v: 1, forwardToEmail: true });
    await w.edge.ok("POST", "/api/messages/auto-replies", {
      didId: w.did.id,
      trigger: "always",
      text: "Thanks, we will call you back.",
    });

    const first = await w.sim.rest.deliverInboundMessage({
      from: sender,
      to: DID,
      body: "Photo of the leak",
      media: [{ contentType: "image/jpeg", content: PHOTO }],
    });
    expect(first.webhook?.status).toBe(200);
    const mediaSid = w.sim.rest.state.mediaOf(first.message.sid)[0]?.sid ?? "";
    const served = w.sim.rest.state.mediaContent.get(mediaSid);
    expect(served).toBeDefined();

    // Exactly one auto-reply reaches Twilio, within 5 s, through the edge's own outbox timer.
    await until("the auto-reply at the simulator", 5_000, async () =>
      createsTo(sender).some((r) => r.status === 201) ? true : undefined,
    );
    expect(createsTo(sender).map((r) => [r.form.From, r.form.Body, r.status])).toEqual([
      [DID, "Thanks, we will call you back.", 201],
    ]);

    // The owner's mailbox gets the text with the photo, byte for byte what the simulator served.
    const forward = await until("the SMS forward email", 20_000, async () => {
      const [m] = mailsMatching((m) => (m.mail.text ?? "").includes("Photo of the leak"));
      return m;
    });
    expect(forward.to).toEqual([OWNER_EMAIL]);
    expect(forward.mail.subject).toContain(sender);
    const images = forward.mail.attachments.filter((a) => a.contentType === "image/jpeg");
    expect(images).toHaveLength(1);
    expect(Buffer.from(images[0]?.content ?? []).equals(Buffer.from(served ?? []))).toBe(true);

    // Twilio repeats the same webhook (same MessageSid): no second row, no second reply, no second email.
    const [hook] = w.sim.rest.state.webhooks.filter((h) => h.params.MessageSid === first.message.sid);
    expect(hook).toBeDefined();
    const again = await postSignedWebhook(hook?.url ?? "", hook?.params ?? {}, SIM_AUTH_TOKEN);
    expect(again.status).toBe(200);

    // A second text from the same sender a minute later: stored, but no auto-reply within 30 min.
    const second = await w.sim.rest.deliverInboundMessage({ from: sender, to: DID, body: "Still leaking" });
    expect(second.webhook?.status).toBe(200);
    await until("the second text and its forward", 20_000, async () =>
      mailsMatching((m) => (m.mail.text ?? "").includes("Still leaking")).length === 1 ? true : undefined,
    );
    // Give the outbox (1 s timer) a few rounds to do anything it wrongly had queued.
    await wait(3000);
    await w.sim.rest.idle();
    expect(createsTo(sender)).toHaveLength(1);
    const rows = await conversation(sender);
    expect(rows.filter((m) => m.direction === "inbound").map((m) => m.body)).toEqual([
      "Still leaking",
      "Photo of the leak",
    ]);
    expect(rows.filter((m) => m.isAutoReply)).toHaveLength(1);
    expect(mailsMatching((m) => (m.mail.text ?? "").includes("Photo of the leak"))).toHaveLength(1);
    const [withPhoto] = rows.filter((m) => m.body === "Photo of the leak");
    expect(withPhoto?.media.map((m) => [m.contentType, m.sizeBytes])).toEqual([["image/jpeg", PHOTO.length]]);
  });
});

describe("SMS out through POST /api/messages", () => {
  it("Twilio answers 500 once: the retry creates exactly one message, which ends delivered from the signed status callbacks", async () => {
    const to = "+15557650002";
    w.sim.rest.faults.add({ method: "POST", path: "/Messages.json", times: 1, kind: "500" });
    const sent = await w.edge.api("POST", "/api/messages", { from: DID, to, body: "Your part arrived" });
    expect(sent.status).toBe(202);
    const id = (sent.json as MessageJson).id;

    const row = await until("the message delivered", 30_000, async () => {
      const m = (await conversation(to)).find((x) => x.id === id);
      return m?.status === "delivered" ? m : undefined;
    });
    expect(row.body).toBe("Your part arrived");
    const attempts = createsTo(to);
    expect(attempts.map((r) => r.status)).toEqual([500, 201]);
    const inSim = simMessagesTo(to);
    expect(inSim).toHaveLength(1);
    expect(inSim[0]?.body).toBe("Your part arrived");
    expect(inSim[0]?.status).toBe("delivered");
    expect(await storedMessageSid(w.edge, id)).toBe(inSim[0]?.sid);
    // The status callbacks were Twilio's, signed, and the edge took them.
    const callbacks = w.sim.rest.state.webhooks.filter((h) => h.params.MessageSid === inSim[0]?.sid);
    expect(callbacks.map((h) => h.params.MessageStatus)).toContain("delivered");
    expect(callbacks.every((h) => h.status === 200 || h.status === 204)).toBe(true);
  });

  it("Twilio applies the POST and never answers (ambiguous): the retry adopts it, still one message", async () => {
    const to = "+15557650003";
    w.sim.rest.faults.add({ method: "POST", path: "/Messages.json", times: 1, kind: "timeout-after-apply" });
    const sent = await w.edge.api("POST", "/api/messages", { from: DID, to, body: "See you at 3" });
    expect(sent.status).toBe(202);
    const id = (sent.json as MessageJson).id;

    // The edge gives up on the silent POST after its 10 s timeout, then checks before sending again.
    const row = await until("the message delivered", 45_000, async () => {
      const m = (await conversation(to)).find((x) => x.id === id);
      return m?.status === "delivered" ? m : undefined;
    });
    expect(row.body).toBe("See you at 3");
    await wait(1500);
    const inSim = simMessagesTo(to);
    expect(inSim).toHaveLength(1);
    expect(inSim[0]?.status).toBe("delivered");
    expect(await storedMessageSid(w.edge, id)).toBe(inSim[0]?.sid);
    // The only create was the silent one; the retry looked the message up instead of posting again.
    expect(createsTo(to).map((r) => r.fault ?? r.status)).toEqual(["timeout-after-apply"]);
    expect((await conversation(to)).filter((m) => m.direction === "outbound")).toHaveLength(1);
  }, 60_000);
});

describe("voicemail by email", () => {
  it("a call nobody can take goes to voicemail; the mailbox gets the WAV as Twilio recorded it and the transcript", async () => {
    const caller = "+15557650004";
    const said = "Hi, this is Dave about the invoice, call me back.";
    const recorded = new Map<string, Uint8Array>();
    const keep = (r: { sid: string }): void => {
      const audio = w.sim.rest.state.recordingAudio.get(r.sid);
      if (audio) recorded.set(r.sid, audio);
    };
    w.sim.rest.state.events.on("recording-created", keep);
    try {
      // No relay is configured: a call that would ring goes straight to voicemail.
      const call = await w.sim.calls.driver.placeInboundCall({
        from: caller,
        to: DID,
        speak: { seconds: 5, transcript: said },
      });
      const result = await call.settled();
      expect(result.transcript.story()).toContain("Record");
      expect(result.transcript.story()).not.toContain("Dial");
      const [record] = result.transcript.of("record");
      expect(record?.status).toBe("completed");
      const audio = recorded.get(record?.recordingSid ?? "");
      expect(audio?.byteLength ?? 0).toBeGreaterThan(5 * 8000);

      const withWav = await until("the voicemail email", 30_000, async () => {
        const [m] = mailsMatching(
          (m) =>
            (m.mail.subject ?? "").includes(caller) &&
            m.mail.attachments.some((a) => a.filename?.endsWith(".wav")),
        );
        return m;
      });
      expect(withWav.to).toEqual([OWNER_EMAIL]);
      expect(withWav.mail.subject).toContain("voicemail");
      const wavs = withWav.mail.attachments.filter((a) => a.filename?.endsWith(".wav"));
      expect(wavs).toHaveLength(1);
      expect(Buffer.from(wavs[0]?.content ?? []).equals(Buffer.from(audio ?? []))).toBe(true);
      // The transcript is in that email or in the follow-up.
      await until("the transcript by email", 30_000, async () =>
        mailsMatching((m) => (m.mail.subject ?? "").includes(caller) && (m.mail.text ?? "").includes(said))
          .length > 0
          ? true
          : undefined,
      );
      const cdr = await endedCdr(w.edge, result.callSid);
      expect(cdr.disposition).toBe("voicemail");
      expect(cdr.voicemailId).not.toBeNull();
      // One voicemail email carries the audio; no duplicate arrives later.
      await wait(2000);
      const audioMails = mailsMatching(
        (m) =>
          (m.mail.subject ?? "").includes(caller) &&
          m.mail.attachments.some((a) => a.filename?.endsWith(".wav")),
      );
      expect(audioMails).toHaveLength(1);
    } finally {
      w.sim.rest.state.events.off("recording-created", keep);
    }
  }, 60_000);
});

describe("what the edge asked of Twilio", () => {
  it("every REST request is one Twilio's API description knows, with parameters it documents", () => {
    expect(w.sim.rest.state.requests.length).toBeGreaterThan(0);
    expect(specViolations(w.sim.rest.state.requests)).toEqual([]);
  });
});
