// The routing rule schema against the good/bad fixture folders: every good rule is
// accepted (with defaults filled in), every bad one is refused at the field a user
// would have to fix.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseRoutingRule, routingRuleJson } from "./routing-rule.ts";
import { JsonSchemaError } from "./versioned.ts";

interface GoodFixture {
  description: string;
  document: unknown;
  expect?: Record<string, unknown>;
}
interface BadFixture {
  description: string;
  errorPath: string;
  document: unknown;
}

function load<T>(kind: "good" | "bad"): [string, T][] {
  const dir = new URL(`./fixtures/routing-rule/${kind}/`, import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(new URL(f, dir), "utf8")) as T]);
}

const good = load<GoodFixture>("good");
const bad = load<BadFixture>("bad");

describe("routing rule fixtures", () => {
  it("has fixtures to check", () => {
    expect(good.length).toBeGreaterThanOrEqual(5);
    expect(bad.length).toBeGreaterThanOrEqual(20);
  });

  it.each(good)("accepts good/%s", (_file, fixture) => {
    const rule = parseRoutingRule(fixture.document);
    expect(rule.v).toBe(1);
    expect(rule).toMatchObject(fixture.document as object);
    if (fixture.expect) expect(rule).toMatchObject(fixture.expect);
  });

  it.each(bad)("refuses bad/%s", (_file, fixture) => {
    const result = routingRuleJson.safeParse(fixture.document);
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error).toBeInstanceOf(JsonSchemaError);
    const paths = result.error.issues.map((i) => i.path.join("."));
    expect(paths).toContain(fixture.errorPath);
  });
});

describe("parseRoutingRule", () => {
  it("fills the defaults a client may leave out", () => {
    const rule = parseRoutingRule({
      v: 1,
      conditions: [{ type: "callerId", match: { by: "exact", numbers: ["+15550001111"] } }],
      action: { type: "ring", deviceIds: ["d1"] },
    });
    expect(rule).toEqual({
      v: 1,
      conditions: [{ type: "callerId", negate: false, match: { by: "exact", numbers: ["+15550001111"] } }],
      action: {
        type: "ring",
        deviceIds: ["d1"],
        strategy: "simultaneous",
        timeoutSeconds: 30,
        onNoAnswer: "voicemail",
      },
      record: false,
    });
  });

  it("throws a JsonSchemaError naming the document and the field", () => {
    expect(() =>
      parseRoutingRule({ v: 1, conditions: [{ type: "default" }], action: { type: "forward", to: "12" } }),
    ).toThrow(/routingRule: action\.to: must be an E\.164 number/);
  });

  it("accepts the timeout bounds 5 and 300 exactly", () => {
    for (const timeoutSeconds of [5, 300]) {
      const rule = parseRoutingRule({
        v: 1,
        conditions: [{ type: "default" }],
        action: { type: "ring", deviceIds: ["d1"], timeoutSeconds },
      });
      expect(rule.action).toMatchObject({ timeoutSeconds });
    }
  });
});
