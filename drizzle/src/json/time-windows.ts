// What the time fields of the JSON documents mean, in one place: weekly windows
// (routing-rule time conditions, business hours) and daily ranges (quiet hours),
// evaluated in an IANA time zone, with overnight ranges and holidays. Pure and
// runtime-neutral (Intl only), so the edge evaluator, the UI and tests agree.
import { clockTimeToMinutes, type TimeWindow, type Weekday, weekdays } from "./common.ts";

/** The wall-clock view of an instant in a time zone. */
export interface LocalTime {
  /** `YYYY-MM-DD` */
  date: string;
  weekday: Weekday;
  /** Minutes since local midnight, 0–1439. */
  minutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Creating a formatter is costly (tens of µs); a PBX has one or two zones.
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local date, weekday and minute of `instant` in `timeZone` (throws RangeError on an unknown zone). */
export function localTime(instant: Date, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(instant)) parts[p.type] = p.value;
  const weekday = (parts.weekday ?? "").toLowerCase() as Weekday;
  if (!weekdays.includes(weekday)) throw new RangeError(`unexpected weekday ${parts.weekday}`);
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    weekday,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

function previousWeekday(day: Weekday): Weekday {
  const i = weekdays.indexOf(day);
  return weekdays[(i + 6) % 7] ?? "sun";
}

/**
 * Whether a local time falls in a weekly window. `days` are the days the window
 * starts on; a window whose end is not after its start runs past midnight into the
 * next day (fri 22:00–06:00 covers Friday night and early Saturday). `end` is exclusive.
 */
export function windowContains(window: TimeWindow, at: LocalTime): boolean {
  const start = clockTimeToMinutes(window.start);
  const end = clockTimeToMinutes(window.end);
  if (start < end) return window.days.includes(at.weekday) && at.minutes >= start && at.minutes < end;
  if (window.days.includes(at.weekday) && at.minutes >= start) return true;
  return window.days.includes(previousWeekday(at.weekday)) && at.minutes < end;
}

/** True when `instant` falls in any of `windows` in `timeZone` (false for no windows). */
export function inTimeWindows(windows: readonly TimeWindow[], instant: Date, timeZone: string): boolean {
  if (windows.length === 0) return false;
  const at = localTime(instant, timeZone);
  return windows.some((w) => windowContains(w, at));
}

/** A row of the holidays table, as far as matching needs it. */
export interface HolidayDate {
  date: string;
  recurring: boolean;
}

/** Whether the local date `YYYY-MM-DD` is a holiday (recurring ones match month and day of any year). */
export function isHoliday(holidays: readonly HolidayDate[], localDate: string): boolean {
  const monthDay = localDate.slice(5);
  return holidays.some((h) => (h.recurring ? h.date.slice(5) === monthDay : h.date === localDate));
}

/**
 * A daily range `HH:MM`–`HH:MM` (quiet hours): an end before the start runs past
 * midnight (22:00–07:00). Start inclusive, end exclusive; equal means never.
 */
export function inDailyRange(start: string, end: string, instant: Date, timeZone: string): boolean {
  const s = clockTimeToMinutes(start);
  const e = clockTimeToMinutes(end);
  const m = localTime(instant, timeZone).minutes;
  if (s === e) return false;
  return s < e ? m >= s && m < e : m >= s || m < e;
}

/**
 * Evaluates a routing-rule time condition: the call is in one of its windows (all
 * day when there are none) and the holiday constraint holds.
 */
export function timeConditionMatches(
  condition: {
    timeZone?: string | undefined;
    windows: readonly TimeWindow[];
    holidays: "ignore" | "exclude" | "only";
  },
  instant: Date,
  context: { defaultTimeZone: string; holidays: readonly HolidayDate[] },
): boolean {
  const at = localTime(instant, condition.timeZone ?? context.defaultTimeZone);
  if (condition.holidays !== "ignore") {
    const holiday = isHoliday(context.holidays, at.date);
    if (condition.holidays === "exclude" && holiday) return false;
    if (condition.holidays === "only" && !holiday) return false;
  }
  return condition.windows.length === 0 || condition.windows.some((w) => windowContains(w, at));
}
