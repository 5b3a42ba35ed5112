/**
 * Which auto-reply (if any) an inbound SMS gets. Pure: the caller loads the DID's
 * rules, the settings and the holidays, and claims the per-sender ledger
 * (inbound.ts) only when this says a rule applies.
 *
 * Triggers: always; after_hours (outside the `businessHours` windows or on a
 * holiday, in the installation's time zone); dnd (global or the DID's); keyword
 * (a whole word of the body, case-insensitive). Among the enabled rules that
 * match, the lowest priority wins. Never for senders that cannot receive a reply
 * from a long code (short codes, alphanumeric ids) or for the carrier keywords
 * (STOP, HELP, START…): carriers and Twilio answer those themselves, and an
 * extra reply to STOP would text someone who just opted out.
 */
import {
  type autoReplyTriggers,
  type HolidayDate,
  inTimeWindows,
  isHoliday,
  localTime,
  type TimeWindow,
} from "@gosip/drizzle";

/** At most one auto-reply per (DID, sender) in this window (SPEC §5). */
export const AUTO_REPLY_WINDOW_MS = 30 * 60_000;

export interface AutoReplyRule {
  id: string;
  trigger: (typeof autoReplyTriggers)[number];
  keyword: string | null;
  text: string;
  enabled: boolean;
  priority: number;
}

export interface AutoReplyContext {
  body: string;
  at: Date;
  timeZone: string;
  businessHours: readonly TimeWindow[];
  holidays: readonly HolidayDate[];
  /** Global DND or the DID's. */
  dnd: boolean;
}

/** Twilio's default opt-out, opt-in and help keywords (matched on the whole trimmed body). */
const CARRIER_KEYWORDS = new Set([
  "STOP",
  "STOPALL",
  "STOP ALL",
  "UNSUBSCRIBE",
  "CANCEL",
  "END",
  "QUIT",
  "OPTOUT",
  "OPT OUT",
  "REVOKE",
  "START",
  "YES",
  "UNSTOP",
  "HELP",
  "INFO",
]);

/** True when the body is an opt-out/opt-in/help keyword, or Twilio flagged it as one (OptOutType). */
export function isCarrierKeyword(body: string, optOutType?: string): boolean {
  if (optOutType) return true;
  const word = body
    .trim()
    .replace(/[\s.!?]+$/u, "")
    .replace(/\s+/gu, " ")
    .toUpperCase();
  return CARRIER_KEYWORDS.has(word);
}

/** True for an E.164 long code (a phone number that can get a reply), false for short codes and names. */
export function canAutoReplyTo(sender: string): boolean {
  return /^\+[1-9]\d{7,14}$/.test(sender);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Whether `keyword` occurs in `body` as a whole word (letters/digits around it do not count), any case. */
export function containsKeyword(body: string, keyword: string): boolean {
  const k = keyword.trim();
  if (k === "") return false;
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(k)}(?![\\p{L}\\p{N}_])`, "iu");
  return pattern.test(body);
}

/**
 * After hours: on a holiday, or outside the business-hours windows. With no windows
 * configured there are no business hours to be outside of, so only holidays count
 * (an after-hours rule must not turn into an "always" rule by omission).
 */
export function isAfterHours(ctx: Pick<AutoReplyContext, "at" | "timeZone" | "businessHours" | "holidays">) {
  if (isHoliday(ctx.holidays, localTime(ctx.at, ctx.timeZone).date)) return true;
  if (ctx.businessHours.length === 0) return false;
  return !inTimeWindows(ctx.businessHours, ctx.at, ctx.timeZone);
}

function matches(rule: AutoReplyRule, ctx: AutoReplyContext): boolean {
  switch (rule.trigger) {
    case "always":
      return true;
    case "after_hours":
      return isAfterHours(ctx);
    case "dnd":
      return ctx.dnd;
    case "keyword":
      return rule.keyword !== null && containsKeyword(ctx.body, rule.keyword);
  }
}

/** The rule that answers this message: the matching enabled rule of lowest priority (then id), or null. */
export function chooseAutoReply(
  rules: readonly AutoReplyRule[],
  ctx: AutoReplyContext,
): AutoReplyRule | null {
  const candidates = rules
    .filter((r) => r.enabled && matches(r, ctx))
    .sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return candidates[0] ?? null;
}
