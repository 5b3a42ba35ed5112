/**
 * The routing decision's contract (SPEC §2): what the evaluator (evaluate.ts,
 * pure, no I/O) takes and answers. The voice webhook loads a `RoutingSnapshot`
 * (snapshot.ts), asks `decideInboundCall`, and turns the decision into TwiML;
 * the dry-run endpoint shows the same decision with its trace. Anything that
 * throws while deciding is turned into a fail-closed reject by the caller.
 */
import type { AudioSource, RoutingRule } from "@gosip/drizzle";

/** One inbound call as the voice webhook received it. */
export interface InboundCall {
  callSid: string;
  /** Caller as Twilio gave it: E.164, or a withheld marker ("anonymous", "restricted", "", …). */
  from: string;
  /** The DID called (E.164). */
  to: string;
  callerName?: string;
  /** STIR/SHAKEN verification result (e.g. "TN-Validation-Passed-A"). */
  stirVerstat?: string;
  /** The AddOns parameter as received (JSON text), when Marketplace add-ons are installed. */
  addOns?: string;
  /** When the call arrived. */
  at: Date;
}

export interface RoutingDevice {
  id: string;
  userId: string;
  extension: string;
  enabled: boolean;
  /** Device or owner DND (either set = do not ring). */
  dnd: boolean;
  /** Registered with the relay right now (at least one live contact). */
  registered: boolean;
  /** Device name ("Desk phone") for traces and the dry-run summary. */
  name?: string;
  /** Owner's name ("Alice") for traces and the dry-run summary. */
  ownerName?: string;
}

/** Everything a decision reads, loaded once per call (or built by tests and the benchmark). */
export interface RoutingSnapshot {
  did: { id: string; e164: string; dnd: boolean; defaultDeviceIds: readonly string[] };
  /**
   * Compiled blocklist (routing/blocklist.ts): the entry that decides for a number.
   * When the loader was given the caller, it holds only that caller's candidate
   * entries and throws if asked about another number (fail closed).
   */
  blocklist: BlocklistMatcher;
  screening: { rejectAnonymous: boolean; spamFilter: boolean; spamThreshold: number };
  globalDnd: boolean;
  /** Enabled rules of this DID and global ones, merged in evaluation order (priority, then creation, then id). */
  rules: readonly { id: string; name: string; rule: RoutingRule }[];
  devices: ReadonlyMap<string, RoutingDevice>;
  /** Installation time zone (rules without their own zone use it). */
  timeZone: string;
  /** Holidays as `YYYY-MM-DD` (one-off) and `MM-DD` (recurring). */
  holidays: { dates: ReadonlySet<string>; recurring: ReadonlySet<string> };
  /** E.164 numbers of saved contacts, by contact id (caller-ID "contacts" conditions). */
  contacts: ReadonlyMap<string, ReadonlySet<string>>;
  /** The relay link is up (no relay: ringing is impossible, go to voicemail). */
  relayOnline: boolean;
}

export interface BlocklistEntry {
  id: string;
  pattern: string;
  matchType: "exact" | "prefix" | "regex";
  action: "reject" | "voicemail";
}

export interface BlocklistMatcher {
  size: number;
  match(number: string): BlocklistEntry | null;
}

/** One step of the evaluation, for the dry run and the logs ("why did this happen"). */
export interface RoutingStep {
  /** `error`: the evaluation failed and the call was rejected (fail closed). */
  step: "blocklist" | "anonymous" | "spam" | "dnd" | "rule" | "default" | "targets" | "error";
  outcome: "pass" | "match" | "skip";
  detail: string;
  ruleId?: string;
}

export interface RingTarget {
  deviceId: string;
  extension: string;
}

interface DecisionBase {
  /** Spam score in [0, 1] when Twilio sent data to compute one; stored on the CDR. */
  spamScore: number | null;
  /** The rule that decided, when one did. */
  ruleId: string | null;
  trace: RoutingStep[];
}

export type RoutingDecision = DecisionBase &
  (
    | {
        action: "reject";
        reason: "blocklist" | "anonymous" | "spam" | "rule" | "error";
        /** busy: busy tone (<Reject reason="busy">); disconnected: a not-in-service message then hang up. */
        rejectAs: "busy" | "disconnected";
      }
    | {
        action: "voicemail";
        reason: "blocklist" | "dnd" | "rule" | "no_targets" | "nobody_registered" | "relay_offline";
      }
    | {
        action: "ring";
        /** Only enabled, not-DND, registered devices; never empty (else the decision is voicemail). */
        targets: RingTarget[];
        strategy: "simultaneous" | "sequential";
        timeoutSeconds: number;
        onNoAnswer: "voicemail" | "hangup";
        /** Record the call (rule `record`). */
        record: boolean;
      }
    | {
        action: "forward";
        to: string;
        callerId: "original" | "did";
        timeoutSeconds: number;
        onNoAnswer: "voicemail" | "hangup";
      }
    | { action: "playMessage"; message: AudioSource }
  );
