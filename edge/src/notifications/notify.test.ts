// notify() and the preferences API over a real database: who is notified on which
// channel, quiet hours holding the push (in the installation's time zone), channels
// that are not set up, idempotency; GET/PUT /api/notifications/preferences.
import { jobs, notificationPreferences } from "@gosip/drizzle";
import { and, eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { writeSetting } from "../settings/store.ts";
import {
  createTestEdge,
  createUser,
  type ErrorJson,
  request,
  signIn,
  TestClock,
  type TestEdge,
} from "../test-support.ts";
import { notify, quietHoursEnd } from "./notify.ts";

let t: TestEdge;
let clock: TestClock;

beforeEach(async () => {
  // 2026-01-15 23:30 UTC.
  clock = new TestClock(Date.UTC(2026, 0, 15, 23, 30));
  t = await createTestEdge({ clock });
  await writeSetting(t.deps, "email", {
    v: 1,
    provider: "postmark",
    from: "pbx@example.test",
    postmarkToken: "x",
  });
  await writeSetting(t.deps, "gotify", { v: 1, enabled: true, url: "http://127.0.0.1:9/", appToken: "tok" });
  return () => t.close();
});

async function queued(kind: string) {
  return t.db.select().from(jobs).where(eq(jobs.kind, kind));
}

describe("notify", () => {
  it("without recipients goes to every admin by email (the default channel), not to users", async () => {
    const a1 = await createUser(t, { role: "admin" });
    const a2 = await createUser(t, { role: "admin" });
    await createUser(t, { role: "user" });
    const res = await notify(t.deps, {
      type: "storage_high",
      subject: "Storage 85 % full",
      text: "The relay's disk is 85 % full.",
      idempotencyKey: "storage:2026-01-15",
    });
    expect(res).toEqual({ emails: 2, pushed: false, pushHeldUntil: null });
    const emails = await queued("email.send");
    expect(emails.map((j) => j.payload.to).sort()).toEqual([a1.email, a2.email].sort());
    expect(emails.map((j) => j.idempotencyKey).sort()).toEqual(
      [`storage:2026-01-15:${a1.id}:email`, `storage:2026-01-15:${a2.id}:email`].sort(),
    );
    expect(await queued("gotify.push")).toEqual([]);
  });

  it("follows each user's preference; the same key twice enqueues nothing more", async () => {
    const u1 = await createUser(t);
    const u2 = await createUser(t);
    await t.db.insert(notificationPreferences).values([
      { userId: u1.id, eventType: "sms", email: false, gotify: true },
      { userId: u2.id, eventType: "sms", email: false, gotify: false },
    ]);
    const n = {
      type: "sms" as const,
      userIds: [u1.id, u2.id],
      subject: "SMS from +15550100",
      text: "See you at 8",
      idempotencyKey: "sms:SM1",
    };
    expect(await notify(t.deps, n)).toEqual({ emails: 0, pushed: true, pushHeldUntil: null });
    expect(await notify(t.deps, n)).toEqual({ emails: 0, pushed: false, pushHeldUntil: null });
    const pushes = await queued("gotify.push");
    expect(pushes).toHaveLength(1);
    expect(pushes[0]?.payload).toMatchObject({
      title: "SMS from +15550100",
      message: "See you at 8",
      priority: 5,
    });
    expect(await queued("email.send")).toEqual([]);
  });

  it("quiet hours hold the push until they end in the installation's time zone; email goes now", async () => {
    // 23:30 UTC is 18:30 in New York: inside quiet hours 18:00–08:00 there, which end at 13:00 UTC.
    await writeSetting(t.deps, "installation", { v: 1, timeZone: "America/New_York" });
    const u = await createUser(t);
    await t.db.insert(notificationPreferences).values({
      userId: u.id,
      eventType: "voicemail",
      email: true,
      gotify: true,
      quietHoursStart: "18:00",
      quietHoursEnd: "08:00",
    });
    const res = await notify(t.deps, {
      type: "voicemail",
      userIds: [u.id],
      subject: "Voicemail",
      text: "…",
      idempotencyKey: "voicemail:1",
    });
    const morning = new Date(Date.UTC(2026, 0, 16, 13, 0));
    expect(res).toEqual({ emails: 1, pushed: true, pushHeldUntil: morning });
    expect((await queued("gotify.push"))[0]?.nextAttemptAt).toEqual(morning);
    expect((await queued("email.send"))[0]?.nextAttemptAt.getTime()).toBe(clock.now());
  });

  it("outside quiet hours the push goes now", async () => {
    const u = await createUser(t);
    await t.db.insert(notificationPreferences).values({
      userId: u.id,
      eventType: "missed_call",
      email: false,
      gotify: true,
      quietHoursStart: "01:00",
      quietHoursEnd: "06:00",
    });
    const res = await notify(t.deps, {
      type: "missed_call",
      userIds: [u.id],
      subject: "Missed call",
      text: "…",
      idempotencyKey: "missed:1",
    });
    expect(res.pushHeldUntil).toBeNull();
    expect((await queued("gotify.push"))[0]?.nextAttemptAt.getTime()).toBe(clock.now());
  });

  it("channels that are not configured are skipped", async () => {
    await writeSetting(t.deps, "email", { v: 1, provider: "none" });
    await writeSetting(t.deps, "gotify", { v: 1, enabled: false });
    const u = await createUser(t);
    await t.db
      .insert(notificationPreferences)
      .values({ userId: u.id, eventType: "sms", email: true, gotify: true });
    expect(
      await notify(t.deps, {
        type: "sms",
        userIds: [u.id],
        subject: "s",
        text: "t",
        idempotencyKey: "sms:x",
      }),
    ).toEqual({ emails: 0, pushed: false, pushHeldUntil: null });
    expect(await t.db.select().from(jobs)).toEqual([]);
  });
});

describe("quietHoursEnd", () => {
  const at = (h: number, m = 0) => new Date(Date.UTC(2026, 0, 15, h, m));
  it("answers the end of an overnight range, today or tomorrow", () => {
    expect(quietHoursEnd("22:00", "07:00", at(23, 15), "UTC")).toEqual(new Date(Date.UTC(2026, 0, 16, 7, 0)));
    expect(quietHoursEnd("22:00", "07:00", at(3, 59), "UTC")).toEqual(at(7, 0));
    expect(quietHoursEnd("12:00", "13:30", at(12, 10), "UTC")).toEqual(at(13, 30));
  });
  it("answers now outside the range", () => {
    expect(quietHoursEnd("22:00", "07:00", at(7, 0), "UTC")).toEqual(at(7, 0));
    expect(quietHoursEnd("22:00", "07:00", at(15, 0), "UTC")).toEqual(at(15, 0));
  });
  it("lands on the local end across a DST change inside the range", () => {
    // Night of 2026-03-08 in New York: clocks jump 02:00 → 03:00 (EST → EDT); 07:00 EDT is 11:00 UTC.
    const night = new Date(Date.UTC(2026, 2, 8, 5, 0)); // 00:00 EST
    expect(quietHoursEnd("22:00", "07:00", night, "America/New_York")).toEqual(
      new Date(Date.UTC(2026, 2, 8, 11, 0)),
    );
  });
});

describe("/api/notifications/preferences", () => {
  it("GET lists every event type with defaults for a new user", async () => {
    const u = await createUser(t);
    const res = await request(t, "GET", "/api/notifications/preferences", { as: await signIn(t, u) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      preferences: { eventType: string; email: boolean; gotify: boolean; isDefault: boolean }[];
      timeZone: string;
      channels: { email: boolean; gotify: boolean };
    };
    expect(body.preferences.map((p) => p.eventType)).toEqual([
      "voicemail",
      "missed_call",
      "sms",
      "device_offline",
      "service_degraded",
      "storage_high",
    ]);
    expect(body.preferences.every((p) => p.email && !p.gotify && p.isDefault)).toBe(true);
    expect(body.timeZone).toBe("UTC");
    expect(body.channels).toEqual({ email: true, gotify: true });
  });

  it("PUT changes the listed types for the signed-in user only, and notify follows", async () => {
    const u = await createUser(t);
    const other = await createUser(t);
    const session = await signIn(t, u);
    const res = await request(t, "PUT", "/api/notifications/preferences", {
      as: session,
      body: {
        preferences: [
          {
            eventType: "voicemail",
            email: false,
            gotify: true,
            quietHoursStart: "22:00",
            quietHoursEnd: "07:00",
          },
          { eventType: "sms", email: true, gotify: true },
        ],
      },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      preferences: {
        eventType: string;
        email: boolean;
        gotify: boolean;
        quietHoursStart: string | null;
        quietHoursEnd: string | null;
        isDefault: boolean;
      }[];
    };
    expect(body.preferences.find((p) => p.eventType === "voicemail")).toEqual({
      eventType: "voicemail",
      email: false,
      gotify: true,
      quietHoursStart: "22:00",
      quietHoursEnd: "07:00",
      isDefault: false,
    });
    expect(body.preferences.find((p) => p.eventType === "sms")).toMatchObject({
      quietHoursStart: null,
      isDefault: false,
    });
    expect(body.preferences.find((p) => p.eventType === "missed_call")?.isDefault).toBe(true);
    // A second PUT overwrites (clears the quiet hours).
    await request(t, "PUT", "/api/notifications/preferences", {
      as: session,
      body: { preferences: [{ eventType: "voicemail", email: false, gotify: true }] },
    });
    const [row] = await t.db
      .select()
      .from(notificationPreferences)
      .where(
        and(eq(notificationPreferences.userId, u.id), eq(notificationPreferences.eventType, "voicemail")),
      );
    expect(row).toMatchObject({ quietHoursStart: null, quietHoursEnd: null, email: false, gotify: true });
    expect(
      await t.db.select().from(notificationPreferences).where(eq(notificationPreferences.userId, other.id)),
    ).toEqual([]);
    // 23:30 UTC is inside 22:00–07:00… but the quiet hours were cleared: the push goes now, no email.
    const n = await notify(t.deps, {
      type: "voicemail",
      userIds: [u.id],
      subject: "v",
      text: "t",
      idempotencyKey: "vm:9",
    });
    expect(n).toEqual({ emails: 0, pushed: true, pushHeldUntil: null });
  });

  it("refuses bad input with a clear error and changes nothing", async () => {
    const u = await createUser(t);
    const session = await signIn(t, u);
    const bad = [
      { preferences: [{ eventType: "voicemail", email: true, gotify: false, quietHoursStart: "22:00" }] },
      {
        preferences: [
          {
            eventType: "voicemail",
            email: true,
            gotify: false,
            quietHoursStart: "25:00",
            quietHoursEnd: "07:00",
          },
        ],
      },
      {
        preferences: [
          {
            eventType: "voicemail",
            email: true,
            gotify: false,
            quietHoursStart: "07:00",
            quietHoursEnd: "07:00",
          },
        ],
      },
      { preferences: [{ eventType: "fax", email: true, gotify: false }] },
      {
        preferences: [
          { eventType: "sms", email: true, gotify: false },
          { eventType: "sms", email: false, gotify: false },
        ],
      },
      { preferences: [{ eventType: "sms", email: "yes", gotify: false }] },
      { preferences: [] },
      // A valid entry beside an invalid one: all or nothing.
      {
        preferences: [
          { eventType: "sms", email: false, gotify: true },
          { eventType: "voicemail", email: true },
        ],
      },
    ];
    for (const body of bad) {
      const res = await request(t, "PUT", "/api/notifications/preferences", { as: session, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await res.json()) as ErrorJson;
      expect(err.error.code).toBe("validation_failed");
      expect(err.error.details?.length).toBeGreaterThan(0);
    }
    const first = (await (
      await request(t, "PUT", "/api/notifications/preferences", { as: session, body: bad[0] })
    ).json()) as ErrorJson;
    expect(first.error.details?.[0]?.message).toContain("both quiet-hours start and end");
    expect(await t.db.select().from(notificationPreferences)).toEqual([]);
  });

  it("needs a session, and the CSRF header to change anything", async () => {
    expect((await request(t, "GET", "/api/notifications/preferences")).status).toBe(401);
    const u = await createUser(t);
    const res = await request(t, "PUT", "/api/notifications/preferences", {
      as: await signIn(t, u),
      csrf: false,
      body: { preferences: [{ eventType: "sms", email: false, gotify: false }] },
    });
    expect(res.status).toBe(403);
    expect(await t.db.select().from(notificationPreferences)).toEqual([]);
  });

  it("is described in the OpenAPI document", async () => {
    const res = await request(t, "GET", "/api/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/api/notifications/preferences"] ?? {}).sort()).toEqual(["get", "put"]);
  });
});
