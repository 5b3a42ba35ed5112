/**
 * One sentence for the admin saying what a routing decision does to the call
 * ("Rings Alice's Desk phone (101) for 30 s, then voicemail"), for the dry run.
 * The trace says why; this says what.
 */
import { deviceLabel } from "./evaluate.ts";
import type { RoutingDecision, RoutingSnapshot } from "./types.ts";

type Voicemail = Extract<RoutingDecision, { action: "voicemail" }>;
type Reject = Extract<RoutingDecision, { action: "reject" }>;

const voicemailWhy: Record<Voicemail["reason"], string> = {
  blocklist: "the caller is on the blocklist (silent voicemail)",
  dnd: "do-not-disturb",
  rule: "a routing rule",
  no_targets: "there is no device to ring",
  nobody_registered: "no phone to ring is registered",
  relay_offline: "the relay is offline",
};

const rejectWhy: Record<Reject["reason"], string> = {
  blocklist: "the caller is on the blocklist",
  anonymous: "the caller ID is withheld",
  spam: "the call scored as spam",
  rule: "a routing rule",
  error: "routing failed (fail closed)",
};

/** "A", "A and B", "A, B and C". */
function listing(names: readonly string[]): string {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** What happens to the call, in one sentence. */
export function summarizeDecision(decision: RoutingDecision, snapshot: RoutingSnapshot): string {
  switch (decision.action) {
    case "reject": {
      const how =
        decision.rejectAs === "busy" ? "with a busy signal" : 'with a "number disconnected" message';
      return `Rejected ${how}: ${rejectWhy[decision.reason]}`;
    }
    case "voicemail":
      return `Straight to voicemail: ${voicemailWhy[decision.reason]}`;
    case "ring": {
      const names = decision.targets.map((t) => {
        const device = snapshot.devices.get(t.deviceId);
        return device ? deviceLabel(device) : `extension ${t.extension}`;
      });
      const then = decision.onNoAnswer === "voicemail" ? "then voicemail" : "then hangs up";
      const recorded = decision.record ? " (recorded)" : "";
      if (decision.strategy === "sequential" && names.length > 1) {
        return `Rings ${names.join(", then ")}, ${decision.timeoutSeconds} s each, ${then}${recorded}`;
      }
      const together = names.length > 1 ? " together" : "";
      return `Rings ${listing(names)}${together} for ${decision.timeoutSeconds} s, ${then}${recorded}`;
    }
    case "forward": {
      const shown = decision.callerId === "original" ? "showing the caller's number" : "showing the DID";
      const then = decision.onNoAnswer === "voicemail" ? "then voicemail" : "then hangs up";
      return `Forwards to ${decision.to} (${shown}) for ${decision.timeoutSeconds} s, ${then}`;
    }
    case "playMessage":
      return decision.message.kind === "tts"
        ? `Says "${decision.message.text.slice(0, 80)}", then hangs up`
        : "Plays an uploaded recording, then hangs up";
  }
}
