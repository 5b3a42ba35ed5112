// Good/bad fixtures for every sync message shape (fixtures/{good,bad}/*.json): each
// good one parses on the side that receives it, each bad one is refused with
// CLOSE_POLICY_VIOLATION and an issue at the path the fixture names; plus the
// framing limits both ends share (text only, size, JSON).
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  CLOSE_INVALID_PAYLOAD,
  CLOSE_POLICY_VIOLATION,
  CLOSE_TOO_BIG,
  CLOSE_UNSUPPORTED_DATA,
  edgeMessageSchema,
  encodeMessage,
  MAX_SYNC_MESSAGE_BYTES,
  parseEdgeMessage,
  parseRelayMessage,
  relayMessageSchema,
} from "./protocol.ts";

interface Fixture {
  /** Who sends it: "relay" frames are parsed by the edge, "edge" frames by the relay. */
  direction: "relay" | "edge";
  message: unknown;
  errorPath?: string;
}

function fixtures(kind: "good" | "bad"): [string, Fixture][] {
  const dir = new URL(`./fixtures/${kind}/`, import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => [f, JSON.parse(readFileSync(new URL(f, dir), "utf8")) as Fixture]);
}

const parse = (f: Fixture, text: string) =>
  f.direction === "relay" ? parseRelayMessage(text) : parseEdgeMessage(text);

/** Every issue path, including those inside union alternatives, dot-joined. */
function issuePaths(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    const own = path.length ? path.join(".") : "(root)";
    const nested = issue.code === "invalid_union" ? issue.errors.flatMap((alt) => issuePaths(alt, path)) : [];
    return [own, ...nested];
  });
}

const good = fixtures("good");
const bad = fixtures("bad");

describe("sync message fixtures", () => {
  it("cover both directions with good and bad shapes", () => {
    expect(good.filter(([, f]) => f.direction === "relay").length).toBeGreaterThanOrEqual(15);
    expect(good.filter(([, f]) => f.direction === "edge").length).toBeGreaterThanOrEqual(10);
    expect(bad.length).toBeGreaterThanOrEqual(25);
    // Every event kind and every command kind has a good example.
    const kinds = new Set(
      good.flatMap(([, f]) => {
        const m = f.message as { event?: { kind: string }; command?: { kind: string } };
        return [m.event?.kind, m.command?.kind].filter((k): k is string => k !== undefined);
      }),
    );
    for (const k of [
      "registration.up",
      "registration.down",
      "call.started",
      "call.answered",
      "call.ended",
      "recording.ready",
      "recording.skipped",
      "ban.added",
      "ban.lifted",
      "security.alert",
      "device.dnd",
      "storage.status",
      "mwi",
      "recording.start",
      "recording.stop",
      "call.hangup",
      "ban.lift",
    ]) {
      expect(kinds, k).toContain(k);
    }
  });

  it.each(good)("accepts %s", (_name, f) => {
    const result = parse(f, JSON.stringify(f.message));
    if (!result.ok) throw new Error(result.reason);
    // What is accepted survives a round trip through the encoder unchanged.
    expect(parse(f, encodeMessage(result.message))).toEqual(result);
  });

  it.each(bad)("refuses %s", (_name, f) => {
    const result = parse(f, JSON.stringify(f.message));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe(CLOSE_POLICY_VIOLATION);
    expect(result.reason.length).toBeLessThanOrEqual(123);
    const schema = f.direction === "relay" ? relayMessageSchema : edgeMessageSchema;
    const checked = schema.safeParse(f.message);
    expect(checked.success).toBe(false);
    if (!checked.success) expect(issuePaths(checked.error.issues)).toContain(f.errorPath);
  });
});

describe("framing", () => {
  it("closes on binary, oversized and non-JSON frames with their own codes", () => {
    expect(parseRelayMessage(new Uint8Array([1, 2]))).toMatchObject({
      ok: false,
      code: CLOSE_UNSUPPORTED_DATA,
    });
    expect(parseEdgeMessage(" ".repeat(MAX_SYNC_MESSAGE_BYTES + 1))).toMatchObject({
      ok: false,
      code: CLOSE_TOO_BIG,
    });
    expect(parseRelayMessage("{")).toEqual({
      ok: false,
      code: CLOSE_INVALID_PAYLOAD,
      reason: "invalid JSON",
    });
  });

  it("fills a delta's omitted lists", () => {
    const r = parseEdgeMessage(JSON.stringify({ type: "config", full: false, version: 3 }));
    expect(r).toEqual({
      ok: true,
      message: { type: "config", full: false, version: 3, upsertDevices: [], removeDevices: [] },
    });
  });
});
