// The dry run's one-line summary for every kind of decision, as the admin reads it.
import { describe, expect, it } from "vitest";
import { summarizeDecision } from "./summary.ts";
import { buildSnapshot } from "./testing.ts";
import type { RoutingDecision } from "./types.ts";

const snapshot = buildSnapshot({
  devices: [
    { id: "desk", name: "Desk phone", ownerName: "Alice", extension: "101" },
    { id: "soft", name: "Softphone", ownerName: "Bob", extension: "102" },
    { id: "bare", extension: "103" },
  ],
});
const base = { spamScore: null, ruleId: null, trace: [] };
const ring = (
  targets: string[],
  extra: Partial<Extract<RoutingDecision, { action: "ring" }>> = {},
): RoutingDecision => ({
  ...base,
  action: "ring",
  targets: targets.map((deviceId) => ({
    deviceId,
    extension: snapshot.devices.get(deviceId)?.extension ?? "?",
  })),
  strategy: "simultaneous",
  timeoutSeconds: 30,
  onNoAnswer: "voicemail",
  record: false,
  ...extra,
});

describe("summarizeDecision", () => {
  it.each<[string, RoutingDecision, string]>([
    ["one device", ring(["desk"]), "Rings Alice's Desk phone (101) for 30 s, then voicemail"],
    [
      "three together",
      ring(["desk", "soft", "bare"]),
      "Rings Alice's Desk phone (101), Bob's Softphone (102) and extension 103 together for 30 s, then voicemail",
    ],
    [
      "sequential, hang up, recorded",
      ring(["soft", "desk"], {
        strategy: "sequential",
        timeoutSeconds: 20,
        onNoAnswer: "hangup",
        record: true,
      }),
      "Rings Bob's Softphone (102), then Alice's Desk phone (101), 20 s each, then hangs up (recorded)",
    ],
    [
      "forward",
      {
        ...base,
        action: "forward",
        to: "+15559990000",
        callerId: "original",
        timeoutSeconds: 45,
        onNoAnswer: "voicemail",
      },
      "Forwards to +15559990000 (showing the caller's number) for 45 s, then voicemail",
    ],
    [
      "forward showing the DID",
      {
        ...base,
        action: "forward",
        to: "+15559990000",
        callerId: "did",
        timeoutSeconds: 30,
        onNoAnswer: "hangup",
      },
      "Forwards to +15559990000 (showing the DID) for 30 s, then hangs up",
    ],
    [
      "voicemail for DND",
      { ...base, action: "voicemail", reason: "dnd" },
      "Straight to voicemail: do-not-disturb",
    ],
    [
      "voicemail, nobody registered",
      { ...base, action: "voicemail", reason: "nobody_registered" },
      "Straight to voicemail: no phone to ring is registered",
    ],
    [
      "reject disconnected by a rule",
      { ...base, action: "reject", reason: "rule", rejectAs: "disconnected" },
      'Rejected with a "number disconnected" message: a routing rule',
    ],
    [
      "reject on error",
      { ...base, action: "reject", reason: "error", rejectAs: "busy" },
      "Rejected with a busy signal: routing failed (fail closed)",
    ],
    [
      "text-to-speech message",
      { ...base, action: "playMessage", message: { kind: "tts", text: "We are closed today." } },
      'Says "We are closed today.", then hangs up',
    ],
    [
      "uploaded message",
      { ...base, action: "playMessage", message: { kind: "audio", blobKey: "greetings/closed.wav" } },
      "Plays an uploaded recording, then hangs up",
    ],
  ])("%s", (_what, decision, summary) => {
    expect(summarizeDecision(decision, snapshot)).toBe(summary);
  });
});
