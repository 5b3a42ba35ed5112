// The routing decision, step by step in SPEC §2 order, table-driven: what each
// step decides, that earlier steps win over later ones, time conditions across
// midnight, week ends and DST changes, holidays, caller-ID matching with negation,
// rule order, ring targets narrowed to the phones that can ring, the default
// route, and the fail-closed wrapper.
import { localTime, type RoutingRuleInput, type TimeWindow, windowContains } from "@gosip/drizzle";
import { describe, expect, it, vi } from "vitest";
import { decideInboundCall, decideSafely, isWithheldCaller } from "./evaluate.ts";
import { buildSnapshot, inboundCall, type SnapshotInput } from "./testing.ts";
import type { InboundCall, RoutingDecision } from "./types.ts";

function decide(input: SnapshotInput, call: Partial<InboundCall> = {}): RoutingDecision {
  return decideInboundCall(inboundCall(call), buildSnapshot(input));
}

/** The decision without its trace, for compact comparisons. */
function outcome(d: RoutingDecision): Record<string, unknown> {
  const { trace: _trace, ...rest } = d;
  return rest;
}

const desk = { id: "desk", name: "Desk phone", ownerName: "Alice", extension: "101" };
const soft = { id: "soft", name: "Softphone", ownerName: "Bob", extension: "102" };
const cell = { id: "cell", name: "Zoiper", ownerName: "Carol", extension: "103" };
const phones = [desk, soft, cell];

const ringDesk: RoutingRuleInput["action"] = { type: "ring", deviceIds: ["desk"] };
const voicemail: RoutingRuleInput["action"] = { type: "voicemail" };
const rule = (
  id: string,
  conditions: RoutingRuleInput["conditions"],
  action: RoutingRuleInput["action"] = ringDesk,
) => ({
  id,
  name: `rule ${id}`,
  rule: { v: 1 as const, conditions, action },
});
const always = (id: string, action: RoutingRuleInput["action"] = ringDesk) =>
  rule(id, [{ type: "default" }], action);

describe("1. blocklist", () => {
  const blocklist = [
    { id: "b-exact", pattern: "+15550001111", matchType: "exact", action: "reject" },
    { id: "b-vm", pattern: "+15550002222", matchType: "exact", action: "voicemail" },
    { id: "b-1900", pattern: "+1900", matchType: "prefix", action: "reject" },
    { id: "b-1900555", pattern: "+1900555", matchType: "prefix", action: "voicemail" },
    { id: "b-re", pattern: "^\\+1800\\d{3}0000$", matchType: "regex", action: "reject" },
  ] as const;
  const input: SnapshotInput = { blocklist, devices: phones, rules: [always("r1")] };

  it.each([
    ["exact, reject", "+15550001111", { action: "reject", reason: "blocklist", rejectAs: "busy" }],
    ["exact, voicemail", "+15550002222", { action: "voicemail", reason: "blocklist" }],
    ["prefix", "+19001234567", { action: "reject", reason: "blocklist" }],
    ["longest prefix wins", "+19005551234", { action: "voicemail", reason: "blocklist" }],
    ["regex", "+18005550000", { action: "reject", reason: "blocklist" }],
    ["formatted caller still matches", "+1 (555) 000-1111", { action: "reject", reason: "blocklist" }],
    ["regex near miss", "+18005550001", { action: "ring" }],
    ["not listed", "+15557654321", { action: "ring" }],
  ])("%s: %s", (_what, from, expected) => {
    const d = decide(input, { from });
    expect(d).toMatchObject(expected);
    expect(d.trace[0]?.step).toBe("blocklist");
  });

  it("names the entry in the trace and stops there (no rule runs)", () => {
    const d = decide(input, { from: "+19005551234" });
    expect(d.trace).toHaveLength(1);
    expect(d.trace[0]).toMatchObject({ outcome: "match" });
    expect(d.trace[0]?.detail).toContain("prefix +1900555");
    expect(d.ruleId).toBeNull();
  });

  it("rejects a caller ID longer than any phone number", () => {
    const d = decide(input, { from: `sip:${"x".repeat(40)}@example.test` });
    expect(outcome(d)).toMatchObject({ action: "reject", reason: "blocklist", rejectAs: "busy" });
  });

  it("wins over anonymous, spam and DND", () => {
    const d = decide(
      { ...input, screening: { rejectAnonymous: true }, globalDnd: true },
      { from: "+15550002222", stirVerstat: "TN-Validation-Failed-A" },
    );
    expect(d).toMatchObject({ action: "voicemail", reason: "blocklist", spamScore: 0.9 });
  });
});

describe("2. anonymous callers", () => {
  const markers = [
    "anonymous",
    "Anonymous",
    "restricted",
    "RESTRICTED",
    "unavailable",
    "unknown",
    "private",
    "",
    "  ",
    "+266696687",
    "266696687",
    "+7378742833",
    "+86282452253",
    "+8656696",
    "sip:anonymous@anonymous.invalid",
  ];

  it.each(markers)("%j is withheld, rejected when enabled", (from) => {
    expect(isWithheldCaller(from)).toBe(true);
    const on = decide(
      { screening: { rejectAnonymous: true }, rules: [always("r1")], devices: phones },
      { from },
    );
    expect(outcome(on)).toMatchObject({ action: "reject", reason: "anonymous", rejectAs: "busy" });
    const off = decide(
      { screening: { rejectAnonymous: false }, rules: [always("r1")], devices: phones },
      { from },
    );
    expect(off.action).toBe("ring");
    expect(off.trace.find((s) => s.step === "anonymous")?.outcome).toBe("skip");
  });

  it.each(["+15557654321", "+442079460958", "+2666966870", "anonymouse"])("%s is not withheld", (from) => {
    expect(isWithheldCaller(from)).toBe(false);
    const d = decide(
      { screening: { rejectAnonymous: true }, rules: [always("r1")], devices: phones },
      { from },
    );
    expect(d.action).toBe("ring");
  });
});

describe("3. spam filter", () => {
  const generic = (score: number) =>
    JSON.stringify({
      status: "successful",
      results: { acme_spam: { status: "successful", result: { score } } },
    });
  const base: SnapshotInput = { rules: [always("r1")], devices: phones };

  it.each([
    ["exactly the threshold is not blocked", 0.7, 0.7, "ring"],
    ["just above is blocked", 0.71, 0.7, "reject"],
    ["below", 0.5, 0.7, "ring"],
    ["custom threshold 0.3", 0.4, 0.3, "reject"],
    ["threshold 1 never blocks", 1, 1, "ring"],
    ["threshold 0 blocks anything above 0", 0.01, 0, "reject"],
  ])("%s (score %d, threshold %d)", (_what, score, spamThreshold, action) => {
    const d = decide({ ...base, screening: { spamThreshold } }, { addOns: generic(score) });
    expect(d.action).toBe(action);
    expect(d.spamScore).toBeCloseTo(score, 6);
    if (action === "reject") expect(d).toMatchObject({ reason: "spam", rejectAs: "busy" });
  });

  it("StirVerstat failed is blocked by the default threshold; passed A is not", () => {
    expect(decide(base, { stirVerstat: "TN-Validation-Failed-B" })).toMatchObject({
      action: "reject",
      reason: "spam",
      spamScore: 0.9,
    });
    expect(decide(base, { stirVerstat: "TN-Validation-Passed-A" })).toMatchObject({
      action: "ring",
      spamScore: 0,
    });
  });

  it("with the filter off, a spammy call goes through and still carries its score", () => {
    const d = decide({ ...base, screening: { spamFilter: false } }, { stirVerstat: "TN-Validation-Failed" });
    expect(d).toMatchObject({ action: "ring", spamScore: 0.9 });
    expect(d.trace.find((s) => s.step === "spam")).toMatchObject({ outcome: "skip" });
  });

  it("malformed AddOns are ignored and the trace says so; StirVerstat still counts", () => {
    const d = decide(base, { stirVerstat: "TN-Validation-Failed-A", addOns: "{not json" });
    expect(d).toMatchObject({ action: "reject", reason: "spam", spamScore: 0.9 });
    expect(d.trace.find((s) => s.step === "spam")?.detail).toContain("AddOns ignored: not valid JSON");
    const alone = decide(base, { addOns: "{not json" });
    expect(alone).toMatchObject({ action: "ring", spamScore: null });
    expect(alone.trace.find((s) => s.step === "spam")?.detail).toContain("not valid JSON");
  });

  it("no data: no score, nothing blocked", () => {
    const d = decide(base);
    expect(d).toMatchObject({ action: "ring", spamScore: null });
  });
});

describe("4. do-not-disturb", () => {
  const base: SnapshotInput = { rules: [always("r1")], devices: phones };

  it.each([
    ["global", { globalDnd: true }],
    ["DID", { did: { dnd: true } }],
  ])("%s DND sends to voicemail before any rule", (_what, extra) => {
    const d = decide({ ...base, ...extra });
    expect(outcome(d)).toEqual({ action: "voicemail", reason: "dnd", spamScore: null, ruleId: null });
    expect(d.trace.map((s) => s.step)).toEqual(["blocklist", "anonymous", "spam", "dnd"]);
  });

  it("anonymous and spam rejects come before DND", () => {
    expect(
      decide({ ...base, globalDnd: true, screening: { rejectAnonymous: true } }, { from: "anonymous" })
        .action,
    ).toBe("reject");
    expect(decide({ ...base, globalDnd: true }, { stirVerstat: "TN-Validation-Failed" }).action).toBe(
      "reject",
    );
  });
});

describe("5. rules: time conditions", () => {
  const officeHours = (extra: Record<string, unknown> = {}) =>
    rule("office", [
      {
        type: "time",
        windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" }],
        ...extra,
      },
    ]);
  const overnight = (days: ("fri" | "sun")[]) =>
    rule("night", [{ type: "time", windows: [{ days, start: "22:00", end: "06:00" }] }], voicemail);

  const cases: [string, SnapshotInput, string, string | null][] = [
    ["office hours, Thursday noon UTC", { rules: [officeHours()] }, "2026-01-15T12:00:00Z", "office"],
    ["office hours start is inclusive", { rules: [officeHours()] }, "2026-01-15T09:00:00Z", "office"],
    ["office hours end is exclusive", { rules: [officeHours()] }, "2026-01-15T17:00:00Z", null],
    ["office hours, Saturday", { rules: [officeHours()] }, "2026-01-17T12:00:00Z", null],
    [
      "installation zone used when the rule has none (08:30 in New York)",
      { rules: [officeHours()], timeZone: "America/New_York" },
      "2026-01-15T13:30:00Z",
      null,
    ],
    [
      "rule zone wins over the installation's",
      { rules: [officeHours({ timeZone: "UTC" })], timeZone: "America/New_York" },
      "2026-01-15T13:30:00Z",
      "office",
    ],
    ["overnight: Friday 23:00", { rules: [overnight(["fri"])] }, "2026-01-16T23:00:00Z", "night"],
    [
      "overnight: early Saturday belongs to Friday's window",
      { rules: [overnight(["fri"])] },
      "2026-01-17T03:00:00Z",
      "night",
    ],
    ["overnight: ends at 06:00 exclusive", { rules: [overnight(["fri"])] }, "2026-01-17T06:00:00Z", null],
    [
      "overnight: Saturday night is not Friday's",
      { rules: [overnight(["fri"])] },
      "2026-01-17T23:00:00Z",
      null,
    ],
    ["overnight: before it starts", { rules: [overnight(["fri"])] }, "2026-01-16T21:59:00Z", null],
    ["week wrap: Sunday night into Monday", { rules: [overnight(["sun"])] }, "2026-01-19T02:00:00Z", "night"],
    ["week wrap: Sunday 23:00", { rules: [overnight(["sun"])] }, "2026-01-18T23:00:00Z", "night"],
    [
      "week wrap: Saturday early is not Sunday's",
      { rules: [overnight(["sun"])] },
      "2026-01-17T02:00:00Z",
      null,
    ],
    [
      "whole day 00:00–24:00, last minute",
      {
        rules: [rule("day", [{ type: "time", windows: [{ days: ["thu"], start: "00:00", end: "24:00" }] }])],
      },
      "2026-01-15T23:59:00Z",
      "day",
    ],
    ["no windows means all day", { rules: [rule("any", [{ type: "time" }])] }, "2026-01-17T03:00:00Z", "any"],
  ];

  it.each(cases)("%s", (_what, input, at, ruleId) => {
    const d = decide({ devices: phones, ...input }, { at: new Date(at) });
    expect(d.ruleId).toBe(ruleId);
  });

  it("agrees with drizzle's windowContains at every quarter hour of a week", () => {
    const windows: TimeWindow[] = [
      { days: ["mon", "wed"], start: "09:00", end: "17:30" },
      { days: ["fri"], start: "22:00", end: "06:00" },
      { days: ["sun"], start: "23:45", end: "00:15" },
      { days: ["sat", "sun"], start: "00:00", end: "24:00" },
      { days: ["tue"], start: "12:00", end: "12:15" },
    ];
    const weekStart = Date.UTC(2026, 0, 12); // a Monday
    for (const w of windows) {
      const snapshot = buildSnapshot({
        devices: phones,
        rules: [rule("w", [{ type: "time", windows: [w] }])],
      });
      for (let q = 0; q < 7 * 96; q++) {
        const at = new Date(weekStart + q * 15 * 60_000);
        const expected = windowContains(w, localTime(at, "UTC"));
        expect(
          decideInboundCall(inboundCall({ at }), snapshot).ruleId,
          `${JSON.stringify(w)} ${at.toISOString()}`,
        ).toBe(expected ? "w" : null);
      }
    }
  });

  describe("DST in America/New_York", () => {
    const zone = { timeZone: "America/New_York" };
    const sunday = (start: string, end: string) =>
      rule("sun", [{ type: "time", ...zone, windows: [{ days: ["sun"], start, end }] }]);

    it.each([
      // Spring forward, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
      ["13:30 UTC is 09:30 EDT on the DST day", sunday("09:00", "17:00"), "2026-03-08T13:30:00Z", "sun"],
      ["13:30 UTC was 08:30 EST a week before", sunday("09:00", "17:00"), "2026-03-01T13:30:00Z", null],
      ["01:59 EST, just before the jump", sunday("01:00", "02:00"), "2026-03-08T06:59:00Z", "sun"],
      [
        "the skipped hour 02:00–03:00 never matches (06:59 UTC)",
        sunday("02:00", "03:00"),
        "2026-03-08T06:59:00Z",
        null,
      ],
      [
        "the skipped hour 02:00–03:00 never matches (07:00 UTC)",
        sunday("02:00", "03:00"),
        "2026-03-08T07:00:00Z",
        null,
      ],
      ["03:00 EDT right after the jump", sunday("03:00", "04:00"), "2026-03-08T07:00:00Z", "sun"],
      // Fall back, 2026-11-01: 01:00–02:00 happens twice.
      ["01:30 EDT, first pass", sunday("01:00", "02:00"), "2026-11-01T05:30:00Z", "sun"],
      ["01:30 EST, second pass", sunday("01:00", "02:00"), "2026-11-01T06:30:00Z", "sun"],
      ["02:00 EST after the repeat", sunday("01:00", "02:00"), "2026-11-01T07:00:00Z", null],
    ])("%s", (_what, r, at, ruleId) => {
      expect(decide({ devices: phones, rules: [r] }, { at: new Date(at) }).ruleId).toBe(ruleId);
    });
  });

  describe("holidays", () => {
    const holidays = [
      { date: "2026-12-24", recurring: false },
      { date: "2020-12-25", recurring: true },
      { date: "2019-07-04", recurring: true },
    ];
    const h = (mode: "ignore" | "exclude" | "only", timeZone?: string) =>
      rule(mode, [{ type: "time", holidays: mode, ...(timeZone ? { timeZone } : {}) }]);

    it.each([
      ["exclude: one-off holiday", h("exclude"), "2026-12-24T12:00:00Z", null],
      ["exclude: the day before", h("exclude"), "2026-12-23T12:00:00Z", "exclude"],
      ["exclude: one-off is only that year", h("exclude"), "2027-12-24T12:00:00Z", "exclude"],
      ["exclude: recurring in a later year", h("exclude"), "2031-12-25T12:00:00Z", null],
      ["only: recurring", h("only"), "2027-12-25T12:00:00Z", "only"],
      ["only: ordinary day", h("only"), "2027-12-26T12:00:00Z", null],
      ["ignore: a holiday is an ordinary day", h("ignore"), "2026-12-24T12:00:00Z", "ignore"],
      [
        "only: local date decides (July 4 22:00 in New York)",
        h("only", "America/New_York"),
        "2026-07-05T02:00:00Z",
        "only",
      ],
      ["only: the same instant is July 5 in UTC", h("only", "UTC"), "2026-07-05T02:00:00Z", null],
    ])("%s", (_what, r, at, ruleId) => {
      expect(decide({ devices: phones, holidays, rules: [r] }, { at: new Date(at) }).ruleId).toBe(ruleId);
    });

    it("combines windows with the holiday constraint", () => {
      const r = rule("xmas-evening", [
        { type: "time", holidays: "only", windows: [{ days: ["thu"], start: "18:00", end: "23:00" }] },
      ]);
      expect(
        decide({ devices: phones, holidays, rules: [r] }, { at: new Date("2026-12-24T19:00:00Z") }).ruleId,
      ).toBe("xmas-evening");
      expect(
        decide({ devices: phones, holidays, rules: [r] }, { at: new Date("2026-12-24T12:00:00Z") }).ruleId,
      ).toBeNull();
    });
  });
});

describe("5. rules: caller ID", () => {
  const contacts = { mom: ["+15550100001", "+15550100002"], plumber: ["+15550200001"] };
  const by = (match: Record<string, unknown>, negate = false) =>
    rule("caller", [{ type: "callerId", match, negate } as RoutingRuleInput["conditions"][number]]);

  it.each([
    ["exact", by({ by: "exact", numbers: ["+15557654321"] }), "+15557654321", true],
    ["exact, other number", by({ by: "exact", numbers: ["+15557654321"] }), "+15557654322", false],
    ["exact, formatted caller", by({ by: "exact", numbers: ["+15557654321"] }), "+1 555 765 4321", true],
    ["prefix", by({ by: "prefix", prefixes: ["+44", "+1555"] }), "+15557654321", true],
    ["prefix miss", by({ by: "prefix", prefixes: ["+44"] }), "+15557654321", false],
    ["regex", by({ by: "regex", pattern: "^\\+1555765\\d{4}$" }), "+15557654321", true],
    ["regex miss", by({ by: "regex", pattern: "^\\+1555765\\d{4}$" }), "+15557664321", false],
    ["any contact", by({ by: "contacts" }), "+15550200001", true],
    ["chosen contact", by({ by: "contacts", contactIds: ["mom"] }), "+15550100002", true],
    ["other contact than the chosen", by({ by: "contacts", contactIds: ["mom"] }), "+15550200001", false],
    ["not a contact", by({ by: "contacts" }), "+15557654321", false],
    ["negated exact", by({ by: "exact", numbers: ["+15557654321"] }, true), "+15557654321", false],
    [
      "negated exact, other number",
      by({ by: "exact", numbers: ["+15557654321"] }, true),
      "+15559999999",
      true,
    ],
    ["negated contacts: a stranger", by({ by: "contacts" }, true), "+15557654321", true],
    ["negated contacts: a contact", by({ by: "contacts" }, true), "+15550100001", false],
    ["negated contacts: a withheld caller is not a contact", by({ by: "contacts" }, true), "anonymous", true],
    ["prefix never matches a withheld caller", by({ by: "prefix", prefixes: ["+1"] }), "anonymous", false],
  ])("%s: %s", (_what, r, from, matches) => {
    const d = decide({ devices: phones, contacts, rules: [r] }, { from });
    expect(d.ruleId).toBe(matches ? "caller" : null);
  });

  it("all conditions of a rule must hold", () => {
    const r = rule("both", [
      { type: "callerId", match: { by: "contacts" } },
      { type: "time", windows: [{ days: ["thu"], start: "09:00", end: "17:00" }] },
    ]);
    const input = { devices: phones, contacts, rules: [r] };
    expect(decide(input, { from: "+15550100001" }).ruleId).toBe("both");
    expect(decide(input, { from: "+15550100001", at: new Date("2026-01-15T20:00:00Z") }).ruleId).toBeNull();
    const miss = decide(input, { from: "+15557654321" });
    expect(miss.trace.find((s) => s.step === "rule")?.detail).toContain("is not a saved contact");
  });
});

describe("5. rules: order and actions", () => {
  it("first matching rule in order wins; the ones before it are skipped in the trace", () => {
    const d = decide({
      devices: phones,
      rules: [
        rule(
          "weekend",
          [{ type: "time", windows: [{ days: ["sat", "sun"], start: "00:00", end: "24:00" }] }],
          voicemail,
        ),
        always("did-rule", { type: "ring", deviceIds: ["soft"] }),
        always("global-catch-all", voicemail),
      ],
    });
    expect(d.ruleId).toBe("did-rule");
    expect(d.trace.filter((s) => s.step === "rule").map((s) => [s.ruleId, s.outcome])).toEqual([
      ["weekend", "skip"],
      ["did-rule", "match"],
    ]);
  });

  it.each([
    [
      "sequential ring passes through in list order",
      always("seq", {
        type: "ring",
        deviceIds: ["cell", "desk", "soft"],
        strategy: "sequential",
        timeoutSeconds: 20,
      }),
      {
        action: "ring",
        strategy: "sequential",
        timeoutSeconds: 20,
        onNoAnswer: "voicemail",
        record: false,
        targets: [
          { deviceId: "cell", extension: "103" },
          { deviceId: "desk", extension: "101" },
          { deviceId: "soft", extension: "102" },
        ],
      },
    ],
    [
      "simultaneous ring, hang up on no answer, recorded",
      {
        ...always("sim", { type: "ring", deviceIds: ["desk", "soft"], onNoAnswer: "hangup" }),
        rule: {
          v: 1 as const,
          conditions: [{ type: "default" as const }],
          action: { type: "ring" as const, deviceIds: ["desk", "soft"], onNoAnswer: "hangup" as const },
          record: true,
        },
      },
      { action: "ring", strategy: "simultaneous", timeoutSeconds: 30, onNoAnswer: "hangup", record: true },
    ],
    [
      "forward keeps the caller's number by default",
      always("fwd", { type: "forward", to: "+15559990000" }),
      {
        action: "forward",
        to: "+15559990000",
        callerId: "original",
        timeoutSeconds: 30,
        onNoAnswer: "voicemail",
      },
    ],
    [
      "forward showing the DID",
      always("fwd", {
        type: "forward",
        to: "+15559990000",
        callerId: "did",
        timeoutSeconds: 45,
        onNoAnswer: "hangup",
      }),
      { action: "forward", callerId: "did", timeoutSeconds: 45, onNoAnswer: "hangup" },
    ],
    ["voicemail", always("vm", voicemail), { action: "voicemail", reason: "rule" }],
    [
      "play a message then hang up",
      always("msg", {
        type: "playMessage",
        message: { kind: "tts", text: "We are closed <today> & tomorrow" },
      }),
      { action: "playMessage", message: { kind: "tts", text: "We are closed <today> & tomorrow" } },
    ],
    ["reject busy", always("rj", { type: "reject" }), { action: "reject", reason: "rule", rejectAs: "busy" }],
    [
      "reject as disconnected",
      always("rj", { type: "reject", reason: "disconnected" }),
      { action: "reject", reason: "rule", rejectAs: "disconnected" },
    ],
  ])("%s", (_what, r, expected) => {
    const d = decide({ devices: phones, rules: [r] });
    expect(d).toMatchObject({ ...expected, ruleId: r.id });
  });
});

describe("ring targets", () => {
  const ringAll = always("all", { type: "ring", deviceIds: ["desk", "soft", "cell"] });

  it.each([
    [
      "only registered devices ring",
      [desk, { ...soft, registered: false }, cell],
      true,
      ["desk", "cell"],
      null,
    ],
    ["a DND owner's device is left out", [{ ...desk, dnd: true }, soft, cell], true, ["soft", "cell"], null],
    [
      "a disabled device is left out",
      [desk, { ...soft, enabled: false }, cell],
      true,
      ["desk", "cell"],
      null,
    ],
    ["a deleted device is left out", [desk, soft], true, ["desk", "soft"], null],
    [
      "nobody registered → voicemail",
      phones.map((p) => ({ ...p, registered: false })),
      true,
      [],
      "nobody_registered",
    ],
    ["everyone on DND → voicemail dnd", phones.map((p) => ({ ...p, dnd: true })), true, [], "dnd"],
    [
      "DND and unregistered mixed → nobody registered",
      [
        { ...desk, dnd: true },
        { ...soft, registered: false },
        { ...cell, registered: false },
      ],
      true,
      [],
      "nobody_registered",
    ],
    [
      "every device disabled → no targets",
      phones.map((p) => ({ ...p, enabled: false })),
      true,
      [],
      "no_targets",
    ],
    ["relay offline → voicemail", phones, false, [], "relay_offline"],
  ])("%s", (_what, devices, relayOnline, ringing, voicemailReason) => {
    const d = decide({ devices, relayOnline, rules: [ringAll] });
    if (voicemailReason) {
      expect(outcome(d)).toEqual({
        action: "voicemail",
        reason: voicemailReason,
        spamScore: null,
        ruleId: "all",
      });
    } else {
      expect(d.action).toBe("ring");
      if (d.action === "ring") expect(d.targets.map((t) => t.deviceId)).toEqual(ringing);
    }
    expect(d.trace.at(-1)?.step).toBe("targets");
  });

  it("explains who was left out and why", () => {
    const d = decide({
      devices: [{ ...desk, dnd: true }, { ...soft, registered: false }, cell],
      rules: [ringAll],
    });
    const detail = d.trace.at(-1)?.detail ?? "";
    expect(detail).toContain("Ringing Carol's Zoiper (103)");
    expect(detail).toContain("Alice's Desk phone (101) is on do-not-disturb");
    expect(detail).toContain("Bob's Softphone (102) is not registered");
  });

  it("forward needs no relay and no registered phone", () => {
    const d = decide({ relayOnline: false, rules: [always("fwd", { type: "forward", to: "+15559990000" })] });
    expect(d.action).toBe("forward");
  });
});

describe("6. no rule matched", () => {
  it("rings the DID's default devices together for 30 s, then voicemail", () => {
    const d = decide({ devices: phones, did: { defaultDeviceIds: ["soft", "desk"] } });
    expect(outcome(d)).toEqual({
      action: "ring",
      targets: [
        { deviceId: "soft", extension: "102" },
        { deviceId: "desk", extension: "101" },
      ],
      strategy: "simultaneous",
      timeoutSeconds: 30,
      onNoAnswer: "voicemail",
      record: false,
      spamScore: null,
      ruleId: null,
    });
    expect(d.trace.map((s) => [s.step, s.outcome])).toEqual([
      ["blocklist", "pass"],
      ["anonymous", "pass"],
      ["spam", "skip"],
      ["dnd", "pass"],
      ["default", "match"],
      ["targets", "match"],
    ]);
  });

  it("no default devices → voicemail no_targets", () => {
    const d = decide({ devices: phones });
    expect(outcome(d)).toEqual({ action: "voicemail", reason: "no_targets", spamScore: null, ruleId: null });
  });

  it("default devices follow the same narrowing (relay offline → voicemail)", () => {
    const d = decide({ devices: phones, did: { defaultDeviceIds: ["desk"] }, relayOnline: false });
    expect(d).toMatchObject({ action: "voicemail", reason: "relay_offline" });
  });
});

describe("failing closed", () => {
  it("a caller-ID regex that no longer validates rejects the call", () => {
    const snapshot = buildSnapshot({
      devices: phones,
      rules: [rule("bad", [{ type: "callerId", match: { by: "regex", pattern: "^\\+1" } }])],
    });
    // A stored pattern the write-time checks refuse today (nested quantifier), as an old row could hold.
    const stored = { by: "regex" as const, pattern: "(\\d+)+$" };
    const broken = {
      ...snapshot,
      rules: snapshot.rules.map((r) => ({
        ...r,
        rule: { ...r.rule, conditions: [{ type: "callerId" as const, negate: false, match: stored }] },
      })),
    };
    expect(() => decideInboundCall(inboundCall(), broken)).toThrow(/catastrophically/);
    const onError = vi.fn();
    const d = decideSafely(inboundCall({ stirVerstat: "TN-Validation-Passed-B" }), broken, onError);
    expect(outcome(d)).toEqual({
      action: "reject",
      reason: "error",
      rejectAs: "busy",
      spamScore: 0.2,
      ruleId: null,
    });
    expect(onError).toHaveBeenCalledOnce();
    expect(d.trace.map((s) => s.step)).toEqual(["blocklist", "anonymous", "spam", "dnd", "error"]);
    expect(d.trace.at(-1)?.detail).toContain("fail closed");
  });

  it("an unknown time zone rejects the call", () => {
    const snapshot = buildSnapshot({
      devices: phones,
      timeZone: "Mars/Olympus_Mons",
      rules: [rule("t", [{ type: "time" }])],
    });
    const d = decideSafely(inboundCall(), snapshot, () => undefined);
    expect(d).toMatchObject({ action: "reject", reason: "error", rejectAs: "busy" });
  });

  it("a blocklist regex that throws rejects the call, and onError throwing changes nothing", () => {
    const snapshot = buildSnapshot({
      blocklist: [{ id: "b1", pattern: "(a|a)*$", matchType: "regex", action: "reject" }],
    });
    const d = decideSafely(inboundCall(), snapshot, () => {
      throw new Error("logger down");
    });
    expect(d).toMatchObject({ action: "reject", reason: "error" });
  });

  it("a snapshot whose parts throw rejects the call", () => {
    const snapshot = buildSnapshot();
    const exploding = {
      ...snapshot,
      blocklist: {
        size: 1,
        match: () => {
          throw new RangeError("boom");
        },
      },
    };
    expect(decideSafely(inboundCall(), exploding, () => undefined)).toMatchObject({
      action: "reject",
      reason: "error",
    });
  });
});
