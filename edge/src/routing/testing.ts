/**
 * Builders of routing snapshots and calls for the evaluator's tests and the
 * routing benchmark (tests/bench/routing.ts): rules go through the real rule
 * schema (defaults filled as the database would hold them), the blocklist
 * through the real compiler. Never imported by the app.
 */
import { parseRoutingRule, type RoutingRuleInput } from "@gosip/drizzle";
import { compileBlocklist } from "./blocklist.ts";
import type { BlocklistEntry, InboundCall, RoutingDevice, RoutingSnapshot } from "./types.ts";

export interface SnapshotInput {
  did?: Partial<RoutingSnapshot["did"]>;
  blocklist?: readonly BlocklistEntry[];
  screening?: Partial<RoutingSnapshot["screening"]>;
  globalDnd?: boolean;
  /** In evaluation order (the loader sorts by priority; here the list order is the order). */
  rules?: readonly { id: string; name?: string; rule: RoutingRuleInput }[];
  /** Defaults: enabled, not DND, registered, extension 100 + position. */
  devices?: readonly (Partial<RoutingDevice> & { id: string })[];
  timeZone?: string;
  holidays?: readonly { date: string; recurring?: boolean }[];
  contacts?: Readonly<Record<string, readonly string[]>>;
  relayOnline?: boolean;
}

export function buildSnapshot(input: SnapshotInput = {}): RoutingSnapshot {
  const devices = new Map<string, RoutingDevice>();
  (input.devices ?? []).forEach((d, i) => {
    devices.set(d.id, {
      userId: `user-${d.id}`,
      extension: String(101 + i),
      enabled: true,
      dnd: false,
      registered: true,
      ...d,
    });
  });
  const dates = new Set<string>();
  const recurring = new Set<string>();
  for (const h of input.holidays ?? []) {
    if (h.recurring) recurring.add(h.date.slice(5));
    else dates.add(h.date);
  }
  return {
    did: { id: "did-1", e164: "+15551230001", dnd: false, defaultDeviceIds: [], ...input.did },
    blocklist: compileBlocklist(input.blocklist ?? []),
    screening: { rejectAnonymous: false, spamFilter: true, spamThreshold: 0.7, ...input.screening },
    globalDnd: input.globalDnd ?? false,
    rules: (input.rules ?? []).map((r) => ({
      id: r.id,
      name: r.name ?? r.id,
      rule: parseRoutingRule(r.rule),
    })),
    devices,
    timeZone: input.timeZone ?? "UTC",
    holidays: { dates, recurring },
    contacts: new Map(Object.entries(input.contacts ?? {}).map(([id, numbers]) => [id, new Set(numbers)])),
    relayOnline: input.relayOnline ?? true,
  };
}

/** A call from `from` to the test DID; `at` defaults to a Thursday noon UTC. */
export function inboundCall(overrides: Partial<InboundCall> = {}): InboundCall {
  return {
    callSid: "CA00000000000000000000000000000001",
    from: "+15557654321",
    to: "+15551230001",
    at: new Date("2026-01-15T12:00:00Z"),
    ...overrides,
  };
}
