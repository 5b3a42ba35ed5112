// Spam score from Twilio's webhook data: every StirVerstat value, the recognised
// add-ons against good fixtures (real Twilio result shapes), and bad fixtures
// that are ignored with a note saying why while StirVerstat still counts.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { assessSpam, MAX_ADDONS_LENGTH, spamScore } from "./spam.ts";

interface AddOnsFixture {
  description: string;
  /** The AddOns parameter: a JSON document (sent as its text) or raw text. */
  addOns: unknown;
  stirVerstat?: string;
  expectScore: number | null;
  expectNote?: string;
}

function load(kind: "good" | "bad"): [string, AddOnsFixture][] {
  const dir = new URL(`./fixtures/addons/${kind}/`, import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(new URL(f, dir), "utf8")) as AddOnsFixture]);
}

const asText = (addOns: unknown) => (typeof addOns === "string" ? addOns : JSON.stringify(addOns));

describe("StirVerstat", () => {
  it.each([
    ["TN-Validation-Passed-A", 0],
    ["TN-Validation-Passed-B", 0.2],
    ["TN-Validation-Passed-C", 0.4],
    ["No-TN-Validation", 0.5],
    ["TN-Validation-Failed-A", 0.9],
    ["TN-Validation-Failed-B", 0.9],
    ["TN-Validation-Failed-C", 0.9],
    ["TN-Validation-Failed", 0.9],
    [" tn-validation-passed-a ", 0],
  ])("%s → %d", (verstat, score) => {
    expect(spamScore(verstat)).toBe(score);
  });

  it("gives no score without data, and ignores an unknown value with a note", () => {
    expect(spamScore()).toBeNull();
    expect(spamScore("", "")).toBeNull();
    const unknown = assessSpam("TN-Validation-Something-New");
    expect(unknown.score).toBeNull();
    expect(unknown.notes).toEqual(["StirVerstat TN-Validation-Something-New not recognised"]);
  });
});

describe("AddOns fixtures", () => {
  const good = load("good");
  const bad = load("bad");

  it("has fixtures of both kinds", () => {
    expect(good.length).toBeGreaterThanOrEqual(10);
    expect(bad.length).toBeGreaterThanOrEqual(8);
  });

  it.each(good)("good/%s", (_file, f) => {
    const result = assessSpam(f.stirVerstat, asText(f.addOns));
    expect(result.score).toBeCloseTo(f.expectScore ?? Number.NaN, 6);
    expect(result.signals.length).toBeGreaterThan(0);
  });

  it.each(bad)("bad/%s", (_file, f) => {
    const result = assessSpam(f.stirVerstat, asText(f.addOns));
    expect(result.score).toBe(f.expectScore);
    expect(result.notes.join(" | ")).toContain(f.expectNote ?? "");
  });
});

describe("AddOns limits", () => {
  it("does not parse AddOns longer than the cap", () => {
    const huge = JSON.stringify({
      status: "successful",
      results: { nomorobo_spamscore: { status: "successful", result: { score: 1 } } },
      padding: "x".repeat(MAX_ADDONS_LENGTH),
    });
    const result = assessSpam("TN-Validation-Passed-A", huge);
    expect(result.score).toBe(0);
    expect(result.notes[0]).toMatch(/AddOns ignored: \d+ characters/);
  });

  it("takes the highest signal across StirVerstat and add-ons", () => {
    const addOns = JSON.stringify({
      status: "successful",
      results: { nomorobo_spamscore: { status: "successful", result: { score: 0 } } },
    });
    expect(spamScore("TN-Validation-Failed-B", addOns)).toBe(0.9);
    expect(spamScore("TN-Validation-Passed-A", addOns)).toBe(0);
  });
});
