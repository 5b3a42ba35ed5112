// How a call's outcome reads in the CDR, and the ladder's bound.
import { MAX_LADDER_STEPS } from "@gosip/drizzle";
import { describe, expect, it } from "vitest";
import { dispositionOf, forkOutcome, partyOf } from "./cdr.ts";
import { Ladder } from "./ladder.ts";

describe("CDR outcome", () => {
  it("maps final statuses to dispositions", () => {
    expect(dispositionOf(200)).toBe("answered");
    expect(dispositionOf(487)).toBe("canceled");
    expect(dispositionOf(486)).toBe("busy");
    expect(dispositionOf(600)).toBe("busy");
    expect(dispositionOf(603)).toBe("rejected");
    expect(dispositionOf(403)).toBe("rejected");
    expect(dispositionOf(480)).toBe("missed");
    expect(dispositionOf(408)).toBe("missed");
    expect(dispositionOf(503)).toBe("failed");
    expect(dispositionOf(488)).toBe("failed");
  });

  it("a fork's outcome: decline wins, busy only when every phone is busy, else 480", () => {
    expect(forkOutcome([])).toBe(480);
    expect(forkOutcome([486, 486])).toBe(486);
    expect(forkOutcome([486, 480])).toBe(480);
    expect(forkOutcome([486, 603])).toBe(603);
    expect(forkOutcome([503])).toBe(480);
    expect(forkOutcome([404])).toBe(404);
  });

  it("parties: the user part, anonymous callers as anonymous", () => {
    expect(partyOf("sip:+15551234567@twilio.test")).toBe("+15551234567");
    expect(partyOf('"Bob" <sip:%2B15551234567@x>;tag=1')).toBe("+15551234567");
    expect(partyOf("<sip:101@relay>")).toBe("101");
    expect(partyOf("sip:anonymous@anonymous.invalid")).toBe("anonymous");
    expect(partyOf(undefined)).toBe("anonymous");
  });
});

describe("ladder", () => {
  it("keeps the first and the latest steps within MAX_LADDER_STEPS", () => {
    let t = 1000;
    const ladder = new Ladder(1000, () => t);
    ladder.add("a", "in", "INVITE");
    for (let i = 0; i < 1000; i++) {
      t += 1;
      ladder.add("a", "in", "INVITE");
      ladder.add("a", "out", 200, "OK");
    }
    t += 5;
    ladder.add("a", "in", "BYE");
    const steps = ladder.steps();
    expect(steps.length).toBe(MAX_LADDER_STEPS);
    expect(steps[0]).toEqual({ t: 0, leg: "a", dir: "in", label: "INVITE" });
    expect(steps[steps.length - 1]).toEqual({ t: 1005, leg: "a", dir: "in", label: "BYE" });
    expect(steps.every((s, i) => i === 0 || s.t >= (steps[i - 1]?.t ?? 0))).toBe(true);
  });
});
