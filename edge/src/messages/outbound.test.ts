// Outbound SMS/MMS: the send API, the sms.send job against the Twilio fixture
// (500 then 201 sends once; an attempt whose answer was lost is found by the
// list check instead of being sent again; 4xx fails the message), status
// callbacks in any order, resend, and images sent through signed public links.
import { jobs, messages } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { jobHandlers } from "../jobs/registry.ts";
import { runDueJobs } from "../jobs/runner.ts";
import { writeSetting } from "../settings/store.ts";
import { type ErrorJson, request, signIn } from "../test-support.ts";
import type { MessageDto } from "./routes.ts";
import { createSmsSendHandler } from "./send.ts";
import {
  ALICE_DID,
  BOB_DID,
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

const PNG = new Uint8Array([
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
]);

async function send(body: Record<string, unknown>, as = w.alice.session): Promise<Response> {
  return request(w.t, "POST", "/api/messages", { as, body });
}

async function sent(body: Record<string, unknown>, as = w.alice.session): Promise<MessageDto> {
  const res = await send(body, as);
  expect(res.status, await res.clone().text()).toBe(202);
  return (await res.json()) as MessageDto;
}

async function row(id: string) {
  const [r] = await w.t.db.select().from(messages).where(eq(messages.id, id));
  if (!r) throw new Error("no such message");
  return r;
}

/** Moves the clock past any backoff and runs the due jobs. */
async function later() {
  w.clock.advance(60_000);
  return runJobs(w.t);
}

describe("POST /api/messages", () => {
  it("queues the message (202) from the user's DID and the outbox sends it to Twilio", async () => {
    const dto = await sent({ to: PEER, body: "On my way" });
    expect(dto).toMatchObject({
      direction: "outbound",
      status: "queued",
      from: ALICE_DID,
      to: PEER,
      peer: PEER,
      didId: w.aliceDid.id,
      body: "On my way",
      sentByUserId: w.alice.user.id,
      media: [],
    });
    expect(w.twilio.sendAttempts).toHaveLength(0);
    expect(await runJobs(w.t)).toMatchObject({ succeeded: 1 });
    expect(w.twilio.sendAttempts).toHaveLength(1);
    const form = w.twilio.sendAttempts[0]?.form;
    expect(Object.fromEntries(form ?? [])).toEqual({
      To: PEER,
      From: ALICE_DID,
      Body: "On my way",
      StatusCallback: "http://localhost:8080/api/webhooks/twilio/sms-status",
    });
    expect((await row(dto.id)).twilioMessageSid).toBe(w.twilio.messages[0]?.sid);
  });

  it("refuses bad input with a clear error and stores nothing", async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ to: "5551234", body: "x" }, 400, "validation_failed"],
      [{ to: PEER }, 400, "validation_failed"],
      [{ to: PEER, body: "   " }, 400, "validation_failed"],
      [{ to: PEER, body: "x".repeat(1601) }, 400, "validation_failed"],
      [{ to: PEER, body: "x", from: BOB_DID }, 400, "validation_failed"],
      [{ to: PEER, body: "x", mediaIds: [crypto.randomUUID()] }, 400, "validation_failed"],
      [{ to: PEER, body: "x", extra: true }, 400, "validation_failed"],
    ];
    for (const [body, status, code] of cases) {
      const res = await send(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(((await res.json()) as ErrorJson).error.code).toBe(code);
    }
    expect(await w.t.db.select().from(messages)).toHaveLength(0);
    expect(await w.t.db.select().from(jobs)).toHaveLength(0);
    // Without the CSRF header (a cross-site form), nothing is sent either.
    const csrf = await request(w.t, "POST", "/api/messages", {
      as: w.alice.session,
      body: { to: PEER, body: "x" },
      csrf: false,
    });
    expect(csrf.status).toBe(403);
    const anonymous = await request(w.t, "POST", "/api/messages", { body: { to: PEER, body: "x" } });
    expect(anonymous.status).toBe(401);
  });

  it("sends from the default sender when an admin picks none, and from the chosen DID otherwise", async () => {
    await writeSetting(w.t.deps, "messaging", { v: 1, defaultSenderE164: BOB_DID });
    expect((await sent({ to: PEER, body: "a" }, w.admin.session)).from).toBe(BOB_DID);
    expect((await sent({ to: PEER, body: "b", from: ALICE_DID }, w.admin.session)).from).toBe(ALICE_DID);
    // Alice's only DID wins over a default she may not use.
    expect((await sent({ to: PEER, body: "c" })).from).toBe(ALICE_DID);
  });

  it("sends exactly one message when Twilio answers 500, then 201", async () => {
    w.twilio.nextSends.push({ kind: "error", status: 500, code: 20500, message: "Internal Server Error" });
    const dto = await sent({ to: PEER, body: "Retry me" });
    expect(await runJobs(w.t)).toMatchObject({ retried: 1 });
    expect((await row(dto.id)).status).toBe("queued");
    expect(await later()).toMatchObject({ succeeded: 1 });
    expect(await later()).toMatchObject({ ran: 0 });
    expect(w.twilio.sendAttempts.map((a) => a.outcome)).toEqual(["error", "accept"]);
    expect(w.twilio.messages).toHaveLength(1);
    const stored = await row(dto.id);
    expect(stored.twilioMessageSid).toBe(w.twilio.messages[0]?.sid);
    expect(stored.status).toBe("queued");
  });

  it("does not send twice when Twilio got the message but the answer was lost (connection reset)", async () => {
    w.twilio.nextSends.push({ kind: "reset" });
    const dto = await sent({ to: PEER, body: "Only once" });
    expect(await runJobs(w.t)).toMatchObject({ retried: 1 });
    expect(w.twilio.messages).toHaveLength(1);
    expect(await later()).toMatchObject({ succeeded: 1 });
    // The retry listed Twilio's messages and adopted the one the lost attempt created.
    expect(w.twilio.sendAttempts).toHaveLength(1);
    expect(w.twilio.messages).toHaveLength(1);
    const list = w.twilio.requests.filter((r) => r.method === "GET" && r.path.endsWith("/Messages.json"));
    expect(list).toHaveLength(1);
    expect(list[0]?.query.get("To")).toBe(PEER);
    expect(list[0]?.query.get("From")).toBe(ALICE_DID);
    expect(list[0]?.query.get("DateSent>")).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect((await row(dto.id)).twilioMessageSid).toBe(w.twilio.messages[0]?.sid);
  });

  it("does not send twice after a timeout, and tells two identical messages apart", async () => {
    const handlers = { ...jobHandlers, "sms.send": createSmsSendHandler({ timeoutMs: 300 }) };
    const run = () => runDueJobs(w.t.deps, { handlers, random: () => 0 });
    w.twilio.nextSends.push({ kind: "stall" });
    const first = await sent({ to: PEER, body: "Timed out" });
    expect(await run()).toMatchObject({ retried: 1 });
    w.clock.advance(60_000);
    expect(await run()).toMatchObject({ succeeded: 1 });
    expect(w.twilio.sendAttempts).toHaveLength(1);
    expect((await row(first.id)).twilioMessageSid).toBe(w.twilio.messages[0]?.sid);

    // Same text again: the list shows the first message, already linked to the first row, so this one is sent.
    w.twilio.nextSends.push({ kind: "error", status: 503, code: 20503, message: "Service Unavailable" });
    w.twilio.nextSends.push({ kind: "stall" });
    const second = await sent({ to: PEER, body: "Timed out" });
    // A 503 (Twilio refused it: nothing to check), then a stall (ambiguous), then the check adopts the stalled one.
    expect(await run()).toMatchObject({ retried: 1 });
    w.clock.advance(60_000);
    expect(await run()).toMatchObject({ retried: 1 });
    w.clock.advance(60_000);
    expect(await run()).toMatchObject({ succeeded: 1 });
    expect(w.twilio.sendAttempts.map((a) => a.outcome)).toEqual(["stall", "error", "stall"]);
    expect(w.twilio.messages).toHaveLength(2);
    expect((await row(second.id)).twilioMessageSid).toBe(w.twilio.messages[1]?.sid);
  });

  it("sends after a broken connection when the check shows Twilio never got the message", async () => {
    w.twilio.nextSends.push({ kind: "drop" });
    const dto = await sent({ to: PEER, body: "Not lost" });
    expect(await runJobs(w.t)).toMatchObject({ retried: 1 });
    expect(w.twilio.messages).toHaveLength(0);
    expect(await later()).toMatchObject({ succeeded: 1 });
    expect(w.twilio.sendAttempts.map((a) => a.outcome)).toEqual(["drop", "accept"]);
    expect(w.twilio.requests.filter((r) => r.method === "GET")).toHaveLength(1);
    expect(w.twilio.messages).toHaveLength(1);
    expect((await row(dto.id)).twilioMessageSid).toBe(w.twilio.messages[0]?.sid);
  });

  it("marks the message failed with Twilio's error on a 4xx and gives up", async () => {
    w.twilio.nextSends.push({
      kind: "error",
      status: 400,
      code: 21610,
      message: "Attempt to send to unsubscribed recipient",
    });
    const dto = await sent({ to: PEER, body: "You there?" });
    expect(await runJobs(w.t)).toMatchObject({ dead: 1 });
    const stored = await row(dto.id);
    expect(stored.status).toBe("failed");
    expect(stored.errorCode).toBe(21610);
    expect(stored.errorMessage).toMatch(/unsubscribed/);
    expect(await later()).toMatchObject({ ran: 0 });
    expect(w.twilio.sendAttempts).toHaveLength(1);
  });
});

describe("POST /api/webhooks/twilio/sms-status", () => {
  async function delivered(): Promise<{ id: string; sid: string }> {
    const dto = await sent({ to: PEER, body: "status test" });
    await runJobs(w.t);
    const sid = w.twilio.messages.at(-1)?.sid ?? "";
    return { id: dto.id, sid };
  }

  const status = (MessageSid: string, MessageStatus: string, extra: Record<string, string> = {}) =>
    postWebhook(w.t, "/sms-status", { MessageSid, MessageStatus, AccountSid: "AC", ...extra });

  it("moves the status forward only: a late 'sent' never undoes 'delivered'", async () => {
    const { id, sid } = await delivered();
    expect((await status(sid, "sending")).status).toBe(204);
    expect((await row(id)).status).toBe("sending");
    await status(sid, "delivered");
    await status(sid, "sent");
    await status(sid, "queued");
    await status(sid, "delivered");
    expect((await row(id)).status).toBe("delivered");
  });

  it("stores the error code and a human message for failed and undelivered messages", async () => {
    const { id, sid } = await delivered();
    await status(sid, "sent");
    await status(sid, "undelivered", { ErrorCode: "30003" });
    const stored = await row(id);
    expect(stored).toMatchObject({ status: "undelivered", errorCode: 30003 });
    expect(stored.errorMessage).toBe("The phone is switched off or out of coverage");
    // Repeating the callback changes nothing.
    await status(sid, "undelivered", { ErrorCode: "30003" });
    expect(await row(id)).toEqual(stored);
  });

  it("ignores unknown messages and statuses, and refuses a forged callback", async () => {
    const { id, sid } = await delivered();
    expect((await status(`SM${"0".repeat(32)}`, "delivered")).status).toBe(204);
    expect((await status(sid, "receiving")).status).toBe(204);
    const forged = await postWebhook(
      w.t,
      "/sms-status",
      { MessageSid: sid, MessageStatus: "failed" },
      {
        authToken: "wrong",
      },
    );
    expect(forged.status).toBe(403);
    expect((await row(id)).status).toBe("queued");
  });
});

describe("POST /api/messages/{id}/resend", () => {
  it("queues a failed message again and sends it once", async () => {
    w.twilio.nextSends.push({ kind: "error", status: 400, code: 30006, message: "Landline" });
    const dto = await sent({ to: PEER, body: "again" });
    await runJobs(w.t);
    expect((await row(dto.id)).status).toBe("failed");
    const [a, b] = await Promise.all([
      request(w.t, "POST", `/api/messages/${dto.id}/resend`, { as: w.alice.session }),
      request(w.t, "POST", `/api/messages/${dto.id}/resend`, { as: w.alice.session }),
    ]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    expect((await row(dto.id)).status).toBe("queued");
    expect((await row(dto.id)).errorCode).toBeNull();
    expect(await runJobs(w.t)).toMatchObject({ succeeded: 1 });
    expect(w.twilio.sendAttempts.map((x) => x.outcome)).toEqual(["error", "accept"]);
    expect((await row(dto.id)).twilioMessageSid).toBe(w.twilio.messages[0]?.sid);
    // Not failed any more: no resend.
    const again = await request(w.t, "POST", `/api/messages/${dto.id}/resend`, { as: w.alice.session });
    expect(again.status).toBe(409);
    // Someone else's message does not exist for Bob.
    const bob = await request(w.t, "POST", `/api/messages/${dto.id}/resend`, { as: w.bob.session });
    expect(bob.status).toBe(404);
  });
});

describe("resend after an ambiguous attempt", () => {
  it("adopts the resent message, not the failed original", async () => {
    const dto = await sent({ to: PEER, body: "Call me" });
    await runJobs(w.t);
    const original = w.twilio.messages[0]?.sid ?? "";
    await postWebhook(w.t, "/sms-status", {
      MessageSid: original,
      MessageStatus: "undelivered",
      ErrorCode: "30003",
    });
    w.clock.advance(20_000);
    w.twilio.nextSends.push({ kind: "reset" });
    expect(
      (await request(w.t, "POST", `/api/messages/${dto.id}/resend`, { as: w.alice.session })).status,
    ).toBe(202);
    expect(await runJobs(w.t)).toMatchObject({ retried: 1 });
    expect(await later()).toMatchObject({ succeeded: 1 });
    expect(w.twilio.sendAttempts.map((a) => a.outcome)).toEqual(["accept", "reset"]);
    const resent = w.twilio.messages[1]?.sid;
    expect(resent).toBeDefined();
    expect((await row(dto.id)).twilioMessageSid).toBe(resent);
    expect((await row(dto.id)).status).toBe("queued");
  });
});

describe("MMS images", () => {
  async function upload(body: Uint8Array, type: string, as = w.alice.session): Promise<Response> {
    return w.t.app.request("http://localhost:8080/api/messages/media", {
      method: "POST",
      headers: { ...as.headers, "content-type": type },
      body,
    });
  }

  it("uploads an image, sends it with a signed public link that Twilio can fetch", async () => {
    const up = await upload(PNG, "image/png");
    expect(up.status).toBe(201);
    const { id: uploadId } = (await up.json()) as { id: string };
    const dto = await sent({ to: PEER, body: "Photo", mediaIds: [uploadId] });
    expect(dto.media).toHaveLength(1);
    expect(dto.media[0]).toMatchObject({ contentType: "image/png", sizeBytes: PNG.byteLength });
    // The upload now belongs to the message: it cannot be attached again.
    expect((await send({ to: PEER, body: "again", mediaIds: [uploadId] })).status).toBe(400);

    await runJobs(w.t);
    const urls = w.twilio.sendAttempts[0]?.form.getAll("MediaUrl") ?? [];
    expect(urls).toHaveLength(1);
    const link = new URL(urls[0] ?? "");
    expect(link.origin).toBe("http://localhost:8080");
    expect(link.pathname).toBe(`/api/messages/media/${dto.media[0]?.id}/public`);
    // Twilio fetches it without any session.
    const fetched = await w.t.app.request(`http://localhost:8080${link.pathname}${link.search}`);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(PNG);
    // A changed signature, a changed id or an expired link finds nothing.
    const badSig = `${link.pathname}?exp=${link.searchParams.get("exp")}&sig=${"0".repeat(64)}`;
    expect((await w.t.app.request(`http://localhost:8080${badSig}`)).status).toBe(404);
    w.clock.advance(3 * 60 * 60_000);
    expect((await w.t.app.request(`http://localhost:8080${link.pathname}${link.search}`)).status).toBe(404);
  });

  it("accepts multipart uploads and refuses what is not a sendable image", async () => {
    const form = new FormData();
    form.append("file", new Blob([PNG], { type: "image/png" }), "photo.png");
    const multipart = await w.t.app.request("http://localhost:8080/api/messages/media", {
      method: "POST",
      headers: w.alice.session.headers,
      body: form,
    });
    expect(multipart.status).toBe(201);
    // HTML claiming to be a PNG, an SVG, a PDF: refused.
    expect((await upload(new TextEncoder().encode("<html>"), "image/png")).status).toBe(415);
    expect((await upload(new TextEncoder().encode("<svg/>"), "image/svg+xml")).status).toBe(415);
    expect((await upload(new TextEncoder().encode("%PDF-1.4"), "application/pdf")).status).toBe(415);
    expect((await upload(new Uint8Array(), "image/png")).status).toBe(400);
    // Larger than 5 MB: 413 before it is stored.
    const big = new Uint8Array(5 * 1024 * 1024 + 100 * 1024);
    big.set(PNG);
    const tooBig = await upload(big, "image/png");
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as ErrorJson).error.code).toBe("payload_too_large");
    // Bob cannot attach Alice's upload.
    const { id } = (await multipart.json()) as { id: string };
    expect((await send({ to: PEER, body: "x", mediaIds: [id] }, w.bob.session)).status).toBe(400);
    // An upload nobody sends is removed a day later.
    w.clock.advance(24 * 60 * 60_000 + 1);
    expect(await runJobs(w.t)).toMatchObject({ succeeded: 1 });
    // (A day later the old session has expired too: sign in again.)
    const fresh = await signIn(w.t, w.alice.user);
    expect((await send({ to: PEER, body: "x", mediaIds: [id] }, fresh)).status).toBe(400);
    // Without a session nothing is stored.
    const anonymous = await w.t.app.request("http://localhost:8080/api/messages/media", {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: PNG,
    });
    expect(anonymous.status).toBe(401);
  });
});
