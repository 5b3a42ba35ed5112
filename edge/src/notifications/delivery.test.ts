// Email and push delivery through the outbox, end to end with real servers on
// loopback: a real SMTP server (smtp-server) receives the voicemail email with its
// audio attached byte for byte; a local HTTP server stands in for Postmark and for
// Gotify. Retries, giving up, and what gets recorded are asserted as a user (or an
// admin looking at the event log) would see them.
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { jobs, notificationPreferences, systemEvents } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { runDueJobs } from "../jobs/runner.ts";
import { writeSetting } from "../settings/store.ts";
import {
  createTestEdge,
  createUser,
  type ErrorJson,
  loginAs,
  request,
  TestClock,
  type TestEdge,
} from "../test-support.ts";
import { notify } from "./notify.ts";
import { startTestSmtpServer, type TestSmtpServer, useTestSmtp } from "./test-smtp.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function edge(env: Record<string, string> = {}): Promise<{ t: TestEdge; clock: TestClock }> {
  const clock = new TestClock();
  const t = await createTestEdge({ clock, env, publicUrl: "https://pbx.example.test" });
  cleanups.push(() => t.close());
  return { t, clock };
}

async function smtpServer(opts: Parameters<typeof startTestSmtpServer>[0] = {}): Promise<TestSmtpServer> {
  const s = await startTestSmtpServer(opts);
  cleanups.push(() => s.close());
  return s;
}

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: unknown;
}

/** A local HTTP server answering from a script of statuses (then 200), recording every request. */
async function httpServer(statuses: number[] = [], answer: unknown = { ErrorCode: 0, Message: "OK" }) {
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: text ? JSON.parse(text) : null,
      });
      const status = statuses.shift() ?? 200;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          status === 200 ? answer : { ErrorCode: status === 422 ? 300 : 0, Message: `status ${status}` },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** Bytes that stand in for a voicemail recording (not all ASCII, so encoding mistakes show). */
function audioBytes(n = 48_000): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) b[i] = (i * 31 + 7) % 256;
  return b;
}

async function voicemailNotification(t: TestEdge, userId: string, key = "voicemail:vm-1") {
  const audio = audioBytes();
  await t.deps.blobs.put("voicemails/vm-1.wav", audio, { contentType: "audio/wav" });
  await notify(t.deps, {
    type: "voicemail",
    userIds: [userId],
    subject: "New voicemail from +1 555-0100",
    text: "A 12 second voicemail from +15550100.\n\nTranscript: Hi, call me back.",
    attachments: [{ filename: "voicemail.wav", contentType: "audio/wav", blobKey: "voicemails/vm-1.wav" }],
    link: "/voicemails/vm-1",
    idempotencyKey: key,
  });
  return audio;
}

async function jobOf(t: TestEdge, kind: string) {
  const rows = await t.db.select().from(jobs).where(eq(jobs.kind, kind));
  expect(rows).toHaveLength(1);
  const [row] = rows;
  if (!row) throw new Error("no job");
  return row;
}

describe("email over SMTP", () => {
  it("delivers the voicemail email with the audio attached, logging in to the server", async () => {
    const { t } = await edge();
    const auth = { username: "pbx", password: "smtp-secret-1" };
    const smtp = await smtpServer({ auth });
    await useTestSmtp(t, smtp, auth);
    await writeSetting(t.deps, "installation", { v: 1, name: "Home PBX" });
    const user = await createUser(t, { name: "Ada Lovelace" });
    const audio = await voicemailNotification(t, user.id);

    expect(await runDueJobs(t.deps)).toMatchObject({ ran: 1, succeeded: 1 });
    expect(smtp.logins).toEqual([auth]);
    expect(smtp.received).toHaveLength(1);
    const { mail, to, from } = smtp.received[0] ?? { mail: undefined, to: [], from: "" };
    expect(to).toEqual([user.email]);
    expect(from).toBe("pbx@example.test");
    expect(mail?.subject).toBe("New voicemail from +1 555-0100");
    expect(mail?.from?.text).toBe('"Home PBX" <pbx@example.test>');
    expect(mail?.text).toContain("Transcript: Hi, call me back.");
    expect(mail?.text).toContain("https://pbx.example.test/voicemails/vm-1");
    expect(mail?.messageId).toMatch(/^<[0-9a-f]{32}@gosip>$/);
    expect(mail?.attachments).toHaveLength(1);
    const attachment = mail?.attachments[0];
    expect(attachment?.filename).toBe("voicemail.wav");
    expect(attachment?.contentType).toBe("audio/wav");
    expect(new Uint8Array(attachment?.content ?? [])).toEqual(audio);
    // Notifying again for the same voicemail sends nothing new.
    await voicemailNotification(t, user.id);
    expect((await runDueJobs(t.deps)).ran).toBe(0);
    expect(smtp.received).toHaveLength(1);
    // The SMTP password never reaches the logs.
    expect(JSON.stringify(t.logs)).not.toContain(auth.password);
  });

  it("retries a temporary SMTP failure 20 minutes later and delivers once", async () => {
    const { t, clock } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    smtp.failNext(1, 451, "Greylisted, try again");

    expect(await runDueJobs(t.deps)).toMatchObject({ retried: 1 });
    expect(smtp.received).toHaveLength(0);
    const waiting = await jobOf(t, "email.send");
    expect(waiting.lastError).toContain("Greylisted");
    expect(waiting.nextAttemptAt.getTime() - clock.now()).toBeGreaterThanOrEqual(20 * 60_000);
    clock.advance(10 * 60_000);
    expect((await runDueJobs(t.deps)).ran).toBe(0);
    clock.set(waiting.nextAttemptAt.getTime());
    expect(await runDueJobs(t.deps)).toMatchObject({ succeeded: 1 });
    expect(smtp.received).toHaveLength(1);
  });

  it("gives up after 3 tries within the hour and records one email.failed event", async () => {
    const { t, clock } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    smtp.failNext(10, 421, "Service not available");
    const start = clock.now();
    for (let i = 0; i < 3; i += 1) {
      await runDueJobs(t.deps);
      const row = await jobOf(t, "email.send");
      if (row.status === "pending") clock.set(row.nextAttemptAt.getTime());
    }
    const row = await jobOf(t, "email.send");
    expect(row).toMatchObject({ status: "dead", attempts: 3 });
    expect(clock.now() - start).toBeLessThanOrEqual(60 * 60_000);
    expect(clock.now() - start).toBeGreaterThanOrEqual(40 * 60_000);
    const failed = await t.db.select().from(systemEvents).where(eq(systemEvents.type, "email.failed"));
    expect(failed).toHaveLength(1);
    expect(failed[0]?.data).toMatchObject({ notification: "voicemail", userId: user.id });
    expect(await t.db.select().from(systemEvents).where(eq(systemEvents.type, "job.dead"))).toEqual([]);
    clock.advance(24 * 3_600_000);
    expect((await runDueJobs(t.deps)).ran).toBe(0);
    expect(smtp.received).toHaveLength(0);
  });

  it("a mailbox that does not exist (550) is given up at once", async () => {
    const { t } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    smtp.failNext(1, 550, "No such user here");
    expect(await runDueJobs(t.deps)).toMatchObject({ dead: 1 });
    expect((await jobOf(t, "email.send")).lastError).toContain("No such user here");
  });

  it("a wrong SMTP password is given up at once, not retried all hour", async () => {
    const { t } = await edge();
    const smtp = await smtpServer({ auth: { username: "pbx", password: "right-password" } });
    await useTestSmtp(t, smtp, { username: "pbx", password: "wrong-password" });
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    expect(await runDueJobs(t.deps)).toMatchObject({ dead: 1 });
    expect((await jobOf(t, "email.send")).lastError).toMatch(/SMTP: .*(535|Invalid)/);
  });

  it("an SMTP server that is down is retried", async () => {
    const { t } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    await smtp.close();
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    expect(await runDueJobs(t.deps)).toMatchObject({ retried: 1 });
    expect((await jobOf(t, "email.send")).lastError).toContain("SMTP");
  });

  it("on a runtime without SMTP (Workers) an SMTP setting fails with a clear error", async () => {
    const { t } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    delete t.deps.mail;
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    expect(await runDueJobs(t.deps)).toMatchObject({ dead: 1 });
    expect((await jobOf(t, "email.send")).lastError).toContain("SMTP is not available on this runtime");
    expect(smtp.received).toHaveLength(0);
  });

  it("a missing attachment still sends the email and says what is missing", async () => {
    const { t } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    await t.deps.blobs.delete("voicemails/vm-1.wav");
    await runDueJobs(t.deps);
    expect(smtp.received[0]?.mail.attachments).toEqual([]);
    expect(smtp.received[0]?.mail.text).toContain("No longer available: voicemail.wav");
  });
});

describe("email over Postmark", () => {
  it("posts the message with the server token and the audio as base64; a 500 is retried", async () => {
    const postmark = await httpServer([500]);
    const { t, clock } = await edge({ POSTMARK_API_BASE: postmark.url });
    await writeSetting(t.deps, "email", {
      v: 1,
      provider: "postmark",
      from: "pbx@example.test",
      postmarkToken: "pm-test-token",
    });
    const user = await createUser(t, { name: "Grace Hopper" });
    const audio = await voicemailNotification(t, user.id);

    expect(await runDueJobs(t.deps)).toMatchObject({ retried: 1 });
    clock.set((await jobOf(t, "email.send")).nextAttemptAt.getTime());
    expect(await runDueJobs(t.deps)).toMatchObject({ succeeded: 1 });
    expect(postmark.requests).toHaveLength(2);
    const req = postmark.requests[1];
    expect(req?.method).toBe("POST");
    expect(req?.url).toBe("/email");
    expect(req?.headers["x-postmark-server-token"]).toBe("pm-test-token");
    expect(req?.headers["content-type"]).toContain("application/json");
    const body = req?.body as {
      From: string;
      To: string;
      Subject: string;
      TextBody: string;
      Attachments: { Name: string; Content: string; ContentType: string }[];
    };
    expect(body.From).toBe('"GoSIP" <pbx@example.test>');
    expect(body.To).toBe(`"Grace Hopper" <${user.email}>`);
    expect(body.Subject).toBe("New voicemail from +1 555-0100");
    expect(body.TextBody).toContain("Transcript: Hi, call me back.");
    expect(body.Attachments).toHaveLength(1);
    expect(body.Attachments[0]?.Name).toBe("voicemail.wav");
    expect(body.Attachments[0]?.ContentType).toBe("audio/wav");
    expect(new Uint8Array(Buffer.from(body.Attachments[0]?.Content ?? "", "base64"))).toEqual(audio);
  });

  it("a 422 (invalid recipient) is given up at once and recorded", async () => {
    const postmark = await httpServer([422]);
    const { t } = await edge({ POSTMARK_API_BASE: postmark.url });
    await writeSetting(t.deps, "email", {
      v: 1,
      provider: "postmark",
      from: "pbx@example.test",
      postmarkToken: "pm",
    });
    const user = await createUser(t);
    await voicemailNotification(t, user.id);
    expect(await runDueJobs(t.deps)).toMatchObject({ dead: 1 });
    expect((await jobOf(t, "email.send")).lastError).toContain("Postmark answered 422");
    expect(await t.db.select().from(systemEvents).where(eq(systemEvents.type, "email.failed"))).toHaveLength(
      1,
    );
  });
});

describe("Gotify push", () => {
  it("pushes title, message and priority with the app token; a link becomes the click URL", async () => {
    const gotify = await httpServer([], { id: 1 });
    const { t } = await edge();
    await writeSetting(t.deps, "gotify", {
      v: 1,
      enabled: true,
      url: `${gotify.url}/gotify/`,
      appToken: "gotify-app-token",
    });
    const user = await createUser(t);
    await t.db.insert(notificationPreferences).values({
      userId: user.id,
      eventType: "voicemail",
      email: false,
      gotify: true,
    });
    await voicemailNotification(t, user.id);
    expect(await runDueJobs(t.deps)).toMatchObject({ ran: 1, succeeded: 1 });
    expect(gotify.requests).toHaveLength(1);
    const req = gotify.requests[0];
    expect(req?.url).toBe("/gotify/message");
    expect(req?.headers["x-gotify-key"]).toBe("gotify-app-token");
    expect(req?.body).toMatchObject({
      title: "New voicemail from +1 555-0100",
      message: expect.stringContaining("Transcript: Hi, call me back."),
      priority: 5,
      extras: { "client::notification": { click: { url: "https://pbx.example.test/voicemails/vm-1" } } },
    });
  });

  it("fails silently after 3 attempts: no event, no alert", async () => {
    const gotify = await httpServer([502, 502, 502, 502]);
    const { t, clock } = await edge();
    await writeSetting(t.deps, "gotify", { v: 1, enabled: true, url: gotify.url, appToken: "tok" });
    await createUser(t, { role: "admin" });
    const user = await createUser(t);
    await t.db
      .insert(notificationPreferences)
      .values({ userId: user.id, eventType: "sms", email: false, gotify: true });
    await notify(t.deps, {
      type: "sms",
      userIds: [user.id],
      subject: "SMS",
      text: "hello",
      idempotencyKey: "sms:1",
    });
    for (let i = 0; i < 5; i += 1) {
      await runDueJobs(t.deps);
      clock.advance(60_000);
    }
    expect(gotify.requests).toHaveLength(3);
    expect(await jobOf(t, "gotify.push")).toMatchObject({ status: "dead", attempts: 3 });
    expect(await t.db.select().from(systemEvents)).toEqual([]);
    expect(await t.db.select().from(jobs).where(eq(jobs.kind, "email.send"))).toEqual([]);
  });
});

describe("POST /api/notifications/test", () => {
  it("sends a test email to the signed-in admin at once and says so", async () => {
    const { t } = await edge();
    const smtp = await smtpServer();
    await useTestSmtp(t, smtp);
    const { user, session } = await loginAs(t, "admin");
    const res = await request(t, "POST", "/api/notifications/test", {
      as: session,
      body: { channel: "email" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ channel: "email", delivered: true });
    expect(smtp.received.map((r) => r.to)).toEqual([[user.email]]);
    expect(smtp.received[0]?.mail.subject).toBe("GoSIP test notification");
    // Not through the outbox: nothing queued.
    expect(await t.db.select().from(jobs)).toEqual([]);
  });

  it("sends a test push; a wrong token is a 400 naming Gotify's answer, a down server a 502", async () => {
    const gotify = await httpServer([401, 503]);
    const { t } = await edge();
    await writeSetting(t.deps, "gotify", { v: 1, enabled: true, url: gotify.url, appToken: "tok" });
    const { session } = await loginAs(t, "admin");
    const send = () =>
      request(t, "POST", "/api/notifications/test", { as: session, body: { channel: "gotify" } });
    const wrong = await send();
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as ErrorJson).error.message).toContain("Gotify answered 401");
    const down = await send();
    expect(down.status).toBe(502);
    expect(((await down.json()) as ErrorJson).error.code).toBe("unavailable");
    expect(await send()).toHaveProperty("status", 200);
    expect(gotify.requests).toHaveLength(3);
    expect(gotify.requests[2]?.body).toMatchObject({ title: "GoSIP test notification" });
  });

  it("says when the channel is not set up, and is for admins only", async () => {
    const { t } = await edge();
    const { session } = await loginAs(t, "admin");
    const res = await request(t, "POST", "/api/notifications/test", {
      as: session,
      body: { channel: "email" },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorJson).error.message).toContain("email is not configured");
    const user = await loginAs(t, "user");
    const denied = await request(t, "POST", "/api/notifications/test", {
      as: user.session,
      body: { channel: "email" },
    });
    expect(denied.status).toBe(403);
    const bad = await request(t, "POST", "/api/notifications/test", {
      as: session,
      body: { channel: "sms" },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorJson).error.code).toBe("validation_failed");
  });
});
