// Time semantics of rules, business hours and quiet hours: zones, overnight ranges,
// the 24:00 end, daylight-saving changes and holidays.
import { describe, expect, it } from "vitest";
import type { TimeWindow } from "./common.ts";
import { parseRoutingRule } from "./routing-rule.ts";
import { inDailyRange, inTimeWindows, isHoliday, localTime, timeConditionMatches } from "./time-windows.ts";

const NY = "America/New_York";
const weekdaysOffice: TimeWindow[] = [
  { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" },
];

describe("localTime", () => {
  it("reads the wall clock of the zone, not UTC", () => {
    // 2026-03-02 is a Monday. 14:30 UTC = 09:30 in New York (EST, UTC-5).
    expect(localTime(new Date("2026-03-02T14:30:00Z"), NY)).toEqual({
      date: "2026-03-02",
      weekday: "mon",
      minutes: 570,
    });
    // 03:00 UTC Monday is still Sunday evening in New York.
    expect(localTime(new Date("2026-03-02T03:00:00Z"), NY)).toMatchObject({
      date: "2026-03-01",
      weekday: "sun",
    });
    expect(localTime(new Date("2026-03-02T00:00:00Z"), "UTC").minutes).toBe(0);
  });
});

describe("weekly windows", () => {
  it("office hours in New York: open at 09:00, closed at 17:00 sharp and at weekends", () => {
    expect(inTimeWindows(weekdaysOffice, new Date("2026-03-02T14:00:00Z"), NY)).toBe(true); // Mon 09:00
    expect(inTimeWindows(weekdaysOffice, new Date("2026-03-02T13:59:00Z"), NY)).toBe(false); // Mon 08:59
    expect(inTimeWindows(weekdaysOffice, new Date("2026-03-02T22:00:00Z"), NY)).toBe(false); // Mon 17:00
    expect(inTimeWindows(weekdaysOffice, new Date("2026-03-07T15:00:00Z"), NY)).toBe(false); // Sat 10:00
    expect(inTimeWindows([], new Date("2026-03-02T15:00:00Z"), NY)).toBe(false);
  });

  it("follows daylight saving: 09:00 local is 14:00 UTC in winter and 13:00 UTC in summer", () => {
    // 2026-03-09 (Mon) is after the US switch to EDT (UTC-4) on 2026-03-08.
    expect(inTimeWindows(weekdaysOffice, new Date("2026-03-09T13:00:00Z"), NY)).toBe(true);
    expect(inTimeWindows(weekdaysOffice, new Date("2026-03-02T13:00:00Z"), NY)).toBe(false);
  });

  it("an overnight window belongs to the day it starts on", () => {
    const fridayNight = [{ days: ["fri" as const], start: "22:00", end: "06:00" }];
    const utc = "UTC";
    expect(inTimeWindows(fridayNight, new Date("2026-03-06T23:00:00Z"), utc)).toBe(true); // Fri 23:00
    expect(inTimeWindows(fridayNight, new Date("2026-03-07T05:59:00Z"), utc)).toBe(true); // Sat 05:59
    expect(inTimeWindows(fridayNight, new Date("2026-03-07T06:00:00Z"), utc)).toBe(false); // Sat 06:00
    expect(inTimeWindows(fridayNight, new Date("2026-03-06T03:00:00Z"), utc)).toBe(false); // Fri 03:00 (Thu night)
    expect(inTimeWindows(fridayNight, new Date("2026-03-07T23:00:00Z"), utc)).toBe(false); // Sat 23:00
  });

  it("00:00–24:00 covers the whole day and nothing of the next", () => {
    const sunday = [{ days: ["sun" as const], start: "00:00", end: "24:00" }];
    expect(inTimeWindows(sunday, new Date("2026-03-08T00:00:00Z"), "UTC")).toBe(true);
    expect(inTimeWindows(sunday, new Date("2026-03-08T23:59:00Z"), "UTC")).toBe(true);
    expect(inTimeWindows(sunday, new Date("2026-03-09T00:00:00Z"), "UTC")).toBe(false);
  });
});

describe("holidays and time conditions", () => {
  const holidays = [
    { date: "2026-07-03", recurring: false },
    { date: "2000-12-25", recurring: true },
  ];

  it("matches fixed and recurring holidays on the local date", () => {
    expect(isHoliday(holidays, "2026-07-03")).toBe(true);
    expect(isHoliday(holidays, "2027-07-03")).toBe(false);
    expect(isHoliday(holidays, "2031-12-25")).toBe(true);
  });

  it("a business-hours rule that excludes holidays does not match on Christmas", () => {
    const rule = parseRoutingRule({
      v: 1,
      conditions: [{ type: "time", windows: weekdaysOffice, holidays: "exclude" }],
      action: { type: "voicemail" },
    });
    const condition = rule.conditions[0];
    if (condition?.type !== "time") throw new Error("expected a time condition");
    const context = { defaultTimeZone: NY, holidays };
    expect(timeConditionMatches(condition, new Date("2026-12-24T15:00:00Z"), context)).toBe(true); // Thu 10:00
    expect(timeConditionMatches(condition, new Date("2026-12-25T15:00:00Z"), context)).toBe(false); // Fri, holiday
  });

  it("a holidays-only condition without windows matches the whole holiday in the rule's zone", () => {
    const condition = { timeZone: "Europe/Berlin", windows: [], holidays: "only" as const };
    const context = { defaultTimeZone: NY, holidays };
    // 23:30 UTC on Dec 24 is already 00:30 on Dec 25 in Berlin.
    expect(timeConditionMatches(condition, new Date("2026-12-24T23:30:00Z"), context)).toBe(true);
    expect(timeConditionMatches(condition, new Date("2026-12-24T22:30:00Z"), context)).toBe(false);
  });
});

describe("daily ranges (quiet hours)", () => {
  it("22:00–07:00 is quiet at night and not during the day", () => {
    expect(inDailyRange("22:00", "07:00", new Date("2026-03-02T23:00:00Z"), "UTC")).toBe(true);
    expect(inDailyRange("22:00", "07:00", new Date("2026-03-02T06:59:00Z"), "UTC")).toBe(true);
    expect(inDailyRange("22:00", "07:00", new Date("2026-03-02T07:00:00Z"), "UTC")).toBe(false);
    expect(inDailyRange("12:00", "13:00", new Date("2026-03-02T12:30:00Z"), "UTC")).toBe(true);
    expect(inDailyRange("12:00", "12:00", new Date("2026-03-02T12:00:00Z"), "UTC")).toBe(false);
  });
});
