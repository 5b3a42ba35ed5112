/**
 * The inbound routing decision (SPEC §2), pure: a call and a snapshot in, a
 * decision with its trace out. No I/O, no clock (the call carries its time), so
 * the voice webhook, the dry run, the tests and the benchmark all run exactly
 * this. The steps, in SPEC order, each append to the trace:
 *   1. blocklist  2. anonymous  3. spam  4. DND (global, DID)
 *   5. rules by priority, first match  6. nothing matched: the DID's default devices.
 * Ringing is narrowed to devices that can ring now (enabled, owner not on DND,
 * registered, relay online); when none can, the call goes to voicemail, never to
 * silence. Anything that throws is turned into a reject by `decideSafely`.
 */
import {
  type AudioSource,
  type LocalTime,
  localTime,
  RING_TIMEOUT_DEFAULT_SECONDS,
  type RoutingRule,
  type RuleAction,
  type RuleCondition,
  type TimeWindow,
  weekdays,
  windowContains,
} from "@gosip/drizzle";
import { MAX_REGEX_INPUT_LENGTH, normalizePhoneNumber } from "../blocklist/pattern.ts";
import { callerRegex } from "./blocklist.ts";
import { assessSpam, type SpamAssessment } from "./spam.ts";
import type { InboundCall, RingTarget, RoutingDecision, RoutingSnapshot, RoutingStep } from "./types.ts";

/**
 * What Twilio and carriers put in `From` when the caller withheld their number.
 * The numeric ones are the words spelled on a phone keypad (Twilio's convention:
 * +266696687 is "ANONYMOUS").
 */
const WITHHELD_MARKERS: ReadonlySet<string> = new Set([
  "",
  "anonymous",
  "restricted",
  "unavailable",
  "unknown",
  "private",
  "withheld",
  "+266696687", // ANONYMOUS
  "266696687",
  "+7378742833", // RESTRICTED
  "+86282452253", // UNAVAILABLE
  "+8656696", // UNKNOWN
  "+7748283", // PRIVATE
]);

/** True when `from` is a withheld caller ID rather than a number. */
export function isWithheldCaller(from: string): boolean {
  const value = from.trim().toLowerCase();
  if (WITHHELD_MARKERS.has(value)) return true;
  // SIP callers that hide their identity use an anonymous URI (RFC 3323).
  return value.startsWith("sip:anonymous@") || value.startsWith("anonymous@");
}

type Decision = RoutingDecision;

interface ZonedTime {
  at: LocalTime;
  /** The weekday before `at`'s: an overnight window that started then can still be running. */
  previousDay: LocalTime["weekday"];
  /** "thu 2026-01-15 10:00 (America/New_York)" */
  text: string;
}
type Base = Pick<Decision, "spamScore" | "ruleId" | "trace">;

interface Evaluation {
  call: InboundCall;
  s: RoutingSnapshot;
  caller: string;
  /** E.164 form of the caller for number comparisons. */
  number: string;
  trace: RoutingStep[];
  spam: SpamAssessment;
  /** Local times by zone (with their wording): several rules share one or two zones. */
  localTimes: Map<string, ZonedTime>;
}

/** The routing decision for `call`; may throw (use `decideSafely` where a call is waiting). */
export function decideInboundCall(call: InboundCall, s: RoutingSnapshot): RoutingDecision {
  return evaluate(call, s, []);
}

/**
 * `decideInboundCall`, failing closed: anything that throws (a broken stored
 * regex, an unknown time zone, a bug) rejects the call with a busy signal,
 * reports the error to `onError` (log and alert) and says so in the trace.
 */
export function decideSafely(
  call: InboundCall,
  snapshot: RoutingSnapshot,
  onError: (error: unknown) => void,
): RoutingDecision {
  const trace: RoutingStep[] = [];
  try {
    return evaluate(call, snapshot, trace);
  } catch (error) {
    try {
      onError(error);
    } catch {
      // The caller's reporting failing must not turn the reject into a crash.
    }
    let score: number | null = null;
    try {
      score = assessSpam(call.stirVerstat, call.addOns).score;
    } catch {
      // Keep the reject even if the score cannot be computed.
    }
    const message = error instanceof Error ? error.message : String(error);
    trace.push({
      step: "error",
      outcome: "match",
      detail: `Routing failed, so the call is rejected (fail closed): ${message.slice(0, 300)}`,
    });
    return { action: "reject", reason: "error", rejectAs: "busy", spamScore: score, ruleId: null, trace };
  }
}

function evaluate(call: InboundCall, s: RoutingSnapshot, trace: RoutingStep[]): RoutingDecision {
  const caller = call.from.trim();
  const spam = assessSpam(call.stirVerstat, call.addOns);
  const e: Evaluation = {
    call,
    s,
    caller,
    number: normalizePhoneNumber(caller),
    trace,
    spam,
    localTimes: new Map(),
  };
  const base: Base = { spamScore: spam.score, ruleId: null, trace };
  return (
    blocklistStep(e, base) ??
    anonymousStep(e, base) ??
    spamStep(e, base) ??
    dndStep(e, base) ??
    rulesStep(e, base) ??
    defaultStep(e, base)
  );
}

// --- 1. blocklist ---------------------------------------------------------------

function blocklistStep(e: Evaluation, base: Base): Decision | undefined {
  if (e.caller.length > MAX_REGEX_INPUT_LENGTH) {
    // Longer than any phone number: not matched (regexes are not run on it), so rejected as unscreenable.
    e.trace.push({
      step: "blocklist",
      outcome: "match",
      detail: `Caller ID is ${e.caller.length} characters, longer than any phone number: rejected with busy`,
    });
    return { ...base, action: "reject", reason: "blocklist", rejectAs: "busy" };
  }
  const entry = e.s.blocklist.match(e.caller);
  if (!entry) {
    e.trace.push({
      step: "blocklist",
      outcome: "pass",
      detail: `${display(e.caller)} is not on the blocklist (${e.s.blocklist.size} entries)`,
    });
    return undefined;
  }
  const how = entry.matchType === "regex" ? "regex" : entry.matchType;
  const what = `${display(e.caller)} matches blocklist ${how} ${entry.pattern}`;
  if (entry.action === "voicemail") {
    e.trace.push({ step: "blocklist", outcome: "match", detail: `${what}: sent silently to voicemail` });
    return { ...base, action: "voicemail", reason: "blocklist" };
  }
  e.trace.push({ step: "blocklist", outcome: "match", detail: `${what}: rejected with busy` });
  return { ...base, action: "reject", reason: "blocklist", rejectAs: "busy" };
}

// --- 2. anonymous ----------------------------------------------------------------

function anonymousStep(e: Evaluation, base: Base): Decision | undefined {
  if (!isWithheldCaller(e.caller)) {
    e.trace.push({ step: "anonymous", outcome: "pass", detail: `Caller ID ${e.caller} is shown` });
    return undefined;
  }
  if (!e.s.screening.rejectAnonymous) {
    e.trace.push({
      step: "anonymous",
      outcome: "skip",
      detail: `Caller ID withheld (${display(e.caller)}), but anonymous calls are allowed`,
    });
    return undefined;
  }
  e.trace.push({
    step: "anonymous",
    outcome: "match",
    detail: `Caller ID withheld (${display(e.caller)}) and anonymous calls are rejected: busy`,
  });
  return { ...base, action: "reject", reason: "anonymous", rejectAs: "busy" };
}

// --- 3. spam ----------------------------------------------------------------------

function spamStep(e: Evaluation, base: Base): Decision | undefined {
  const { score, signals, notes } = e.spam;
  const threshold = e.s.screening.spamThreshold;
  const why = [...signals.map((s) => `${s.detail} → ${s.score.toFixed(2)}`), ...notes].join("; ");
  const suffix = why ? ` (${why})` : "";
  if (score === null) {
    e.trace.push({ step: "spam", outcome: "skip", detail: `No spam data on the call${suffix}` });
    return undefined;
  }
  if (!e.s.screening.spamFilter) {
    e.trace.push({
      step: "spam",
      outcome: "skip",
      detail: `Spam score ${score.toFixed(2)}, but the spam filter is off${suffix}`,
    });
    return undefined;
  }
  if (score > threshold) {
    e.trace.push({
      step: "spam",
      outcome: "match",
      detail: `Spam score ${score.toFixed(2)} is above the threshold ${threshold.toFixed(2)}: rejected with busy${suffix}`,
    });
    return { ...base, action: "reject", reason: "spam", rejectAs: "busy" };
  }
  e.trace.push({
    step: "spam",
    outcome: "pass",
    detail: `Spam score ${score.toFixed(2)} is not above the threshold ${threshold.toFixed(2)}${suffix}`,
  });
  return undefined;
}

// --- 4. DND -----------------------------------------------------------------------

function dndStep(e: Evaluation, base: Base): Decision | undefined {
  if (e.s.globalDnd) {
    e.trace.push({
      step: "dnd",
      outcome: "match",
      detail: "Global do-not-disturb is on: straight to voicemail",
    });
    return { ...base, action: "voicemail", reason: "dnd" };
  }
  if (e.s.did.dnd) {
    e.trace.push({
      step: "dnd",
      outcome: "match",
      detail: `${e.s.did.e164} has do-not-disturb on: straight to voicemail`,
    });
    return { ...base, action: "voicemail", reason: "dnd" };
  }
  e.trace.push({ step: "dnd", outcome: "pass", detail: `No global or ${e.s.did.e164} do-not-disturb` });
  return undefined;
}

// --- 5. rules ---------------------------------------------------------------------

function rulesStep(e: Evaluation, base: Base): Decision | undefined {
  for (const { id, name, rule } of e.s.rules) {
    const miss = firstMiss(e, rule);
    if (miss !== undefined) {
      e.trace.push({
        step: "rule",
        outcome: "skip",
        ruleId: id,
        detail: `Rule "${name}" does not match: ${miss}`,
      });
      continue;
    }
    e.trace.push({
      step: "rule",
      outcome: "match",
      ruleId: id,
      detail: `Rule "${name}" matches (${describeConditions(e, rule)}): ${describeAction(rule.action)}`,
    });
    return applyAction(e, { ...base, ruleId: id }, rule);
  }
  return undefined;
}

/** Why the rule does not match, or undefined when every condition holds. */
function firstMiss(e: Evaluation, rule: RoutingRule): string | undefined {
  for (const condition of rule.conditions) {
    const miss = conditionMiss(e, condition);
    if (miss !== undefined) return miss;
  }
  return undefined;
}

function conditionMiss(e: Evaluation, condition: RuleCondition): string | undefined {
  switch (condition.type) {
    case "default":
      return undefined;
    case "time":
      return timeMiss(e, condition);
    case "callerId": {
      const matched = callerMatches(e, condition.match);
      if (matched !== condition.negate) return undefined;
      return `caller ${display(e.caller)} ${condition.negate ? "is" : "is not"} ${describeCallerMatch(condition.match)}`;
    }
  }
}

function localTimeIn(e: Evaluation, zone: string): ZonedTime {
  let zoned = e.localTimes.get(zone);
  if (!zoned) {
    const at = localTime(e.call.at, zone);
    const previousDay = weekdays[(weekdays.indexOf(at.weekday) + 6) % 7] ?? "sun";
    zoned = { at, previousDay, text: describeLocal(at, zone) };
    e.localTimes.set(zone, zoned);
  }
  return zoned;
}

/**
 * drizzle's `windowContains`, skipped when the window cannot apply: a window
 * only covers the days it starts on and, running past midnight, the day after.
 */
function inWindow(w: TimeWindow, zoned: ZonedTime): boolean {
  if (!w.days.includes(zoned.at.weekday) && !w.days.includes(zoned.previousDay)) return false;
  return windowContains(w, zoned.at);
}

function isHoliday(e: Evaluation, at: LocalTime): boolean {
  return e.s.holidays.dates.has(at.date) || e.s.holidays.recurring.has(at.date.slice(5));
}

type TimeCondition = Extract<RuleCondition, { type: "time" }>;
type CallerMatch = Extract<RuleCondition, { type: "callerId" }>["match"];

function timeMiss(e: Evaluation, condition: TimeCondition): string | undefined {
  const zoned = localTimeIn(e, condition.timeZone ?? e.s.timeZone);
  if (condition.holidays !== "ignore") {
    const holiday = isHoliday(e, zoned.at);
    if (condition.holidays === "exclude" && holiday) return `${zoned.text} is a holiday`;
    if (condition.holidays === "only" && !holiday) return `${zoned.text} is not a holiday`;
  }
  if (condition.windows.length === 0 || condition.windows.some((w) => inWindow(w, zoned))) return undefined;
  return `${zoned.text} is outside ${condition.windows.map(describeWindow).join(", ")}`;
}

function callerMatches(e: Evaluation, match: CallerMatch): boolean {
  switch (match.by) {
    case "exact":
      return match.numbers.includes(e.number);
    case "prefix":
      return match.prefixes.some((p) => e.number.startsWith(p));
    case "regex":
      return callerRegex(match.pattern)(e.caller);
    case "contacts": {
      const ids = match.contactIds ?? [...e.s.contacts.keys()];
      return ids.some((id) => e.s.contacts.get(id)?.has(e.number) ?? false);
    }
  }
}

// --- actions and targets ----------------------------------------------------------

function applyAction(e: Evaluation, base: Base, rule: RoutingRule): Decision {
  const action = rule.action;
  switch (action.type) {
    case "ring":
      return ring(e, base, action.deviceIds, {
        strategy: action.strategy,
        timeoutSeconds: action.timeoutSeconds,
        onNoAnswer: action.onNoAnswer,
        record: rule.record,
      });
    case "forward":
      return {
        ...base,
        action: "forward",
        to: action.to,
        callerId: action.callerId,
        timeoutSeconds: action.timeoutSeconds,
        onNoAnswer: action.onNoAnswer,
      };
    case "voicemail":
      return { ...base, action: "voicemail", reason: "rule" };
    case "playMessage":
      return { ...base, action: "playMessage", message: action.message };
    case "reject":
      return { ...base, action: "reject", reason: "rule", rejectAs: action.reason };
  }
}

interface RingOptions {
  strategy: "simultaneous" | "sequential";
  timeoutSeconds: number;
  onNoAnswer: "voicemail" | "hangup";
  record: boolean;
}

/** Rings the devices that can ring now; voicemail (with the reason) when none can. */
function ring(e: Evaluation, base: Base, deviceIds: readonly string[], opts: RingOptions): Decision {
  const targets: RingTarget[] = [];
  const excluded: string[] = [];
  let usable = 0;
  let onDnd = 0;
  for (const id of deviceIds) {
    const device = e.s.devices.get(id);
    if (!device) {
      excluded.push(`device ${id} no longer exists`);
      continue;
    }
    const label = deviceLabel(device);
    if (!device.enabled) {
      excluded.push(`${label} is disabled`);
      continue;
    }
    usable += 1;
    if (device.dnd) {
      onDnd += 1;
      excluded.push(`${label} is on do-not-disturb`);
    } else if (!device.registered) {
      excluded.push(`${label} is not registered`);
    } else {
      targets.push({ deviceId: device.id, extension: device.extension });
    }
  }
  const notes = excluded.length ? ` (${excluded.join("; ")})` : "";
  const toVoicemail = (reason: "no_targets" | "dnd" | "nobody_registered" | "relay_offline", why: string) => {
    e.trace.push({ step: "targets", outcome: "match", detail: `${why}: straight to voicemail${notes}` });
    return { ...base, action: "voicemail" as const, reason };
  };
  if (usable === 0) return toVoicemail("no_targets", "No enabled device to ring");
  if (!e.s.relayOnline) return toVoicemail("relay_offline", "The relay is offline, so no phone can ring");
  if (targets.length === 0) {
    return onDnd === usable
      ? toVoicemail("dnd", "Every device to ring is on do-not-disturb")
      : toVoicemail("nobody_registered", "No device to ring is registered");
  }
  const names = targets.map((t) => {
    const device = e.s.devices.get(t.deviceId);
    return device ? deviceLabel(device) : t.extension;
  });
  e.trace.push({
    step: "targets",
    outcome: "match",
    detail: `Ringing ${names.join(", ")} (${opts.strategy}, ${opts.timeoutSeconds} s${
      opts.strategy === "sequential" ? " each" : ""
    }), then ${opts.onNoAnswer}${notes}`,
  });
  return { ...base, action: "ring", targets, ...opts };
}

// --- 6. default ---------------------------------------------------------------------

function defaultStep(e: Evaluation, base: Base): Decision {
  const ids = e.s.did.defaultDeviceIds;
  if (ids.length === 0) {
    e.trace.push({
      step: "default",
      outcome: "match",
      detail: `No rule matched and ${e.s.did.e164} has no default devices: straight to voicemail`,
    });
    return { ...base, action: "voicemail", reason: "no_targets" };
  }
  e.trace.push({
    step: "default",
    outcome: "match",
    detail: `No rule matched: ring the default devices of ${e.s.did.e164} for ${RING_TIMEOUT_DEFAULT_SECONDS} s, then voicemail`,
  });
  return ring(e, base, ids, {
    strategy: "simultaneous",
    timeoutSeconds: RING_TIMEOUT_DEFAULT_SECONDS,
    onNoAnswer: "voicemail",
    record: false,
  });
}

// --- wording for the trace -----------------------------------------------------------

/** The caller as the trace shows it (withheld markers quoted, empty made visible). */
function display(caller: string): string {
  return caller === "" ? '"" (empty)' : caller;
}

export function deviceLabel(device: { name?: string; ownerName?: string; extension: string }): string {
  const name = device.name ? `${device.name} (${device.extension})` : `extension ${device.extension}`;
  return device.ownerName ? `${device.ownerName}'s ${name}` : name;
}

function describeLocal(at: LocalTime, zone: string): string {
  const hh = String(Math.floor(at.minutes / 60)).padStart(2, "0");
  const mm = String(at.minutes % 60).padStart(2, "0");
  return `${at.weekday} ${at.date} ${hh}:${mm} (${zone})`;
}

function describeWindow(w: TimeWindow): string {
  return `${w.days.join("/")} ${w.start}–${w.end}`;
}

function describeCallerMatch(match: CallerMatch): string {
  switch (match.by) {
    case "exact":
      return match.numbers.length === 1 ? `${match.numbers[0]}` : `one of ${match.numbers.length} numbers`;
    case "prefix":
      return `starting with ${match.prefixes.slice(0, 5).join(" or ")}${match.prefixes.length > 5 ? " or …" : ""}`;
    case "regex":
      return `matching /${match.pattern}/`;
    case "contacts":
      return match.contactIds ? `one of ${match.contactIds.length} chosen contacts` : "a saved contact";
  }
}

function describeConditions(e: Evaluation, rule: RoutingRule): string {
  return rule.conditions
    .map((c) => {
      if (c.type === "default") return "catch-all";
      if (c.type === "callerId") return `caller ${c.negate ? "not " : ""}${describeCallerMatch(c.match)}`;
      const when = localTimeIn(e, c.timeZone ?? e.s.timeZone).text;
      const windows = c.windows.length ? c.windows.map(describeWindow).join(", ") : "any time";
      const holidays =
        c.holidays === "ignore" ? "" : c.holidays === "only" ? ", holidays only" : ", not on holidays";
      return `${when} in ${windows}${holidays}`;
    })
    .join(" and ");
}

function describeAudio(message: AudioSource): string {
  return message.kind === "tts" ? `say "${message.text.slice(0, 60)}"` : "play an uploaded recording";
}

function describeAction(action: RuleAction): string {
  switch (action.type) {
    case "ring":
      return `ring ${action.deviceIds.length} device(s) ${action.strategy}, ${action.timeoutSeconds} s, then ${action.onNoAnswer}`;
    case "forward":
      return `forward to ${action.to} (caller ID: ${action.callerId === "original" ? "the caller's" : "the DID's"})`;
    case "voicemail":
      return "voicemail";
    case "playMessage":
      return `${describeAudio(action.message)}, then hang up`;
    case "reject":
      return action.reason === "busy" ? "reject with busy" : 'reject with "number disconnected"';
  }
}
