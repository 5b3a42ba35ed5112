// Auto-reply decisions: the pure chooser (triggers, priorities, whole-word
// keywords, carrier keywords, senders) and the after-hours rule end to end
// through the webhook in the installation's time zone, with holidays.
import { holidays, messages } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { writeSetting } from "../settings/store.ts";
import {
  type AutoReplyContext,
  type AutoReplyRule,
  canAutoReplyTo,
  chooseAutoReply,
  containsKeyword,
  isAfterHours,
  isCarrierKeyword,
} from "./auto-reply.ts";
import { addAutoReply, inboundParams, postWebhook, type SmsWorld, useSmsWorld } from "./sms-test-support.ts";

const rule = (r: Partial<AutoReplyRule> & Pick<AutoReplyRule, "trigger">): AutoReplyRule => ({
  id: r.id ?? `r-${r.trigger}`,
  keyword: null,
  text: "reply",
  enabled: true,
  priority: 100,
  ...r,
});

const weekdays = [{ days: ["mon", "tue", "wed", "thu", "fri"] as const, start: "09:00", end: "17:00" }].map(
  (w) => ({
    ...w,
    days: [...w.days],
  }),
);

const ctx = (over: Partial<AutoReplyContext> = {}): AutoReplyContext => ({
  body: "hello",
  // Wednesday 2026-01-14 10:00 in New York.
  at: new Date(Date.UTC(2026, 0, 14, 15, 0)),
  timeZone: "America/New_York",
  businessHours: weekdays,
  holidays: [],
  dnd: false,
  ...over,
});

describe("chooseAutoReply", () => {
  it("picks the matching enabled rule of lowest priority", () => {
    const rules = [
      rule({ id: "a", trigger: "always", priority: 50 }),
      rule({ id: "k", trigger: "keyword", keyword: "hello", priority: 10 }),
      rule({ id: "d", trigger: "always", priority: 1, enabled: false }),
    ];
    expect(chooseAutoReply(rules, ctx())?.id).toBe("k");
    expect(chooseAutoReply(rules, ctx({ body: "bye" }))?.id).toBe("a");
  });

  it("matches nothing when no rule applies", () => {
    const rules = [rule({ trigger: "dnd" }), rule({ trigger: "after_hours" })];
    expect(chooseAutoReply(rules, ctx())).toBeNull();
    expect(chooseAutoReply(rules, ctx({ dnd: true }))?.trigger).toBe("dnd");
  });

  it("treats after hours as outside the windows or on a holiday, never without any business hours", () => {
    expect(isAfterHours(ctx())).toBe(false);
    expect(isAfterHours(ctx({ at: new Date(Date.UTC(2026, 0, 14, 23, 0)) }))).toBe(true);
    expect(isAfterHours(ctx({ holidays: [{ date: "2025-01-14", recurring: true }] }))).toBe(true);
    expect(isAfterHours(ctx({ holidays: [{ date: "2025-01-14", recurring: false }] }))).toBe(false);
    expect(isAfterHours(ctx({ businessHours: [] }))).toBe(false);
  });

  it("finds keywords as whole words in any case, punctuation and non-ASCII around them", () => {
    expect(containsKeyword("What are your HOURS?", "hours")).toBe(true);
    expect(containsKeyword("hours", "Hours")).toBe(true);
    expect(containsKeyword("(hours)", "hours")).toBe(true);
    expect(containsKeyword("office-hours", "hours")).toBe(true);
    expect(containsKeyword("hoursly", "hours")).toBe(false);
    expect(containsKeyword("workhours", "hours")).toBe(false);
    expect(containsKeyword("Öffnungszeiten bitte", "öffnungszeiten")).toBe(true);
    expect(containsKeyword("a.b", "a.b")).toBe(true);
    expect(containsKeyword("axb", "a.b")).toBe(false);
  });

  it("recognises carrier keywords and senders that cannot get a reply", () => {
    for (const body of ["STOP", "stop", " Stop! ", "STOP ALL", "unsubscribe", "HELP", "info", "START"])
      expect(isCarrierKeyword(body), body).toBe(true);
    for (const body of ["stop by later", "help me move", "startup"])
      expect(isCarrierKeyword(body), body).toBe(false);
    expect(isCarrierKeyword("anything", "STOP")).toBe(true);
    expect(canAutoReplyTo("+15557654321")).toBe(true);
    expect(canAutoReplyTo("12345")).toBe(false);
    expect(canAutoReplyTo("+12345")).toBe(false);
    expect(canAutoReplyTo("ACME")).toBe(false);
  });
});

describe("after-hours auto-replies through the webhook", () => {
  // Wednesday 2026-01-14 15:00 UTC = 10:00 in New York.
  let w: SmsWorld;
  useSmsWorld(
    (world) => {
      w = world;
    },
    Date.UTC(2026, 0, 14, 15, 0),
  );

  const replies = () =>
    w.t.db.select({ to: messages.toNumber }).from(messages).where(eq(messages.isAutoReply, true));

  it("stays silent in business hours and answers outside them and on holidays", async () => {
    await writeSetting(w.t.deps, "installation", { v: 1, timeZone: "America/New_York" });
    await writeSetting(w.t.deps, "businessHours", { v: 1, windows: weekdays });
    await addAutoReply(w.t, w.aliceDid.id, { trigger: "after_hours", text: "We are closed" });

    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000041" }));
    expect(await replies()).toHaveLength(0);
    // 18:30 in New York: closed.
    w.clock.set(Date.UTC(2026, 0, 14, 23, 30));
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000042" }));
    // Saturday noon.
    w.clock.set(Date.UTC(2026, 0, 17, 17, 0));
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000043" }));
    // A holiday on a Thursday at 10:00.
    await w.t.db.insert(holidays).values({ date: "2026-01-15", name: "Office party", recurring: false });
    w.clock.set(Date.UTC(2026, 0, 15, 15, 0));
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000044" }));
    // Friday 10:00 again: open.
    w.clock.set(Date.UTC(2026, 0, 16, 15, 0));
    await postWebhook(w.t, "/sms", inboundParams({ From: "+15550000045" }));
    expect((await replies()).map((r) => r.to)).toEqual(["+15550000042", "+15550000043", "+15550000044"]);
  });
});
