/**
 * Routing decision benchmark (`npm run bench:routing -w @gosip/tests`, or
 * `npx tsx tests/bench/routing.ts`): prints figures, asserts nothing. In-process,
 * no network; bounded by iteration counts.
 *
 * 1. compileBlocklist for 10,000 entries (70 % exact, 25 % prefix, 5 % regex, of
 *    which a fifth unanchored so they are tried for every caller): cold (every
 *    regex validated and compiled, as the first call after a start does) and warm
 *    (regexes already compiled in this process, as every later call).
 * 2. decideInboundCall over BENCH_ITERATIONS calls (default 20,000) against that
 *    blocklist and 200 rules (time windows, holidays, caller prefix/exact/regex/
 *    contact conditions; a catch-all last, so a clean caller walks every rule),
 *    callers 10 % blocklisted exact, 5 % prefix, 2 % regex, the rest clean, at
 *    times spread over a week. Baseline in the same run: an empty blocklist and
 *    one default rule, same calls. Rounds alternate baseline and full so load
 *    from elsewhere on the machine hits both alike. p50/p95/p99 in µs and the
 *    ratios; target p99 < 1 ms. Clean callers (the worst case) are also shown alone.
 * 3. loadRoutingSnapshot + decide from a real libSQL file database holding that
 *    data (what the voice webhook does per call): BENCH_LOADS loads (default 40),
 *    reading the caller's candidate entries (as the webhook does) and, for
 *    comparison, the whole blocklist.
 *
 * Wall times include whatever else the machine runs (on a shared 2-core box,
 * preemption dominates the tail); the CPU time per call is printed beside them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  blocklist,
  contactNumbers,
  contacts,
  createDb,
  devices,
  dids,
  holidays,
  migrate,
  type RoutingRuleInput,
  registrations,
  routingRules,
  users,
} from "@gosip/drizzle";
import { loadConfig } from "../../edge/src/config.ts";
import { openNodeClient } from "../../edge/src/platform/node/database.ts";
import type { Logger } from "../../edge/src/platform/types.ts";
import { NodeRelayLink } from "../../edge/src/relay/node-link.ts";
import { compileBlocklist } from "../../edge/src/routing/blocklist.ts";
import { decideInboundCall } from "../../edge/src/routing/evaluate.ts";
import { loadRoutingSnapshot } from "../../edge/src/routing/snapshot.ts";
import { buildSnapshot, inboundCall } from "../../edge/src/routing/testing.ts";
import type { BlocklistEntry, InboundCall, RoutingSnapshot } from "../../edge/src/routing/types.ts";

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const LOADS = Number(process.env.BENCH_LOADS ?? 40);
const BLOCKLIST_SIZE = 10_000;
const RULES = 200;
const P99_TARGET_US = 1000;

// Deterministic pseudo-random numbers (xorshift32), so every run measures the same data.
let seed = 0x9e3779b9;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const digits = (n: number) => Array.from({ length: n }, () => String(rand(10))).join("");

// --- data --------------------------------------------------------------------------

function blocklistEntry(i: number): BlocklistEntry {
  const id = `b${i}`;
  const r = i % 20;
  if (r < 14) return { id, matchType: "exact", pattern: `+1${digits(10)}`, action: "reject" };
  if (r < 19) return { id, matchType: "prefix", pattern: `+1${digits(4 + rand(5))}`, action: "reject" };
  if (i % 100 < 80) {
    // Anchored with a literal prefix (indexed), like "^\+1900\d{7}$".
    return {
      id,
      matchType: "regex",
      pattern: `^\\+1${digits(3)}\\d{3}${digits(2)}\\d{2}$`,
      action: "reject",
    };
  }
  // Unanchored: tried for every caller that reaches the regex stage.
  return { id, matchType: "regex", pattern: `${digits(4)}\\d{2}$`, action: "voicemail" };
}

/** Distinct (pattern, match type) pairs, as the table's unique index requires. */
function blocklistEntries(): BlocklistEntry[] {
  const out: BlocklistEntry[] = [];
  const seen = new Set<string>();
  while (out.length < BLOCKLIST_SIZE) {
    const e = blocklistEntry(out.length);
    const key = `${e.matchType} ${e.pattern}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

const DEVICE_IDS = ["d1", "d2", "d3", "d4", "d5"];
const days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

function ruleDocuments(): { id: string; name: string; rule: RoutingRuleInput }[] {
  const out: { id: string; name: string; rule: RoutingRuleInput }[] = [];
  for (let i = 0; i < RULES - 1; i++) {
    const kind = i % 5;
    let conditions: RoutingRuleInput["conditions"];
    if (kind === 0) {
      // Time window that matches some calls only together with a caller condition below.
      conditions = [
        {
          type: "time",
          timeZone: i % 2 ? "America/New_York" : "Europe/Berlin",
          windows: [
            { days: [days[i % 7] ?? "mon", days[(i + 3) % 7] ?? "thu"], start: "22:00", end: "06:00" },
          ],
          holidays: "exclude",
        },
        { type: "callerId", match: { by: "prefix", prefixes: [`+44${digits(3)}`] } },
      ];
    } else if (kind === 1) {
      conditions = [
        {
          type: "callerId",
          match: { by: "exact", numbers: Array.from({ length: 20 }, () => `+1${digits(10)}`) },
        },
      ];
    } else if (kind === 2) {
      conditions = [{ type: "callerId", match: { by: "regex", pattern: `^\\+49${digits(3)}\\d{6}$` } }];
    } else if (kind === 3) {
      conditions = [
        { type: "callerId", match: { by: "contacts", contactIds: [`c${i % 50}`] } },
        { type: "time", windows: [{ days: ["sat"], start: "09:00", end: "12:00" }], holidays: "only" },
      ];
    } else {
      conditions = [
        { type: "callerId", negate: true, match: { by: "prefix", prefixes: ["+1", "+44", "+49", "+33"] } },
      ];
    }
    const action: RoutingRuleInput["action"] =
      i % 3 === 0
        ? {
            type: "ring",
            deviceIds: [DEVICE_IDS[i % 5] ?? "d1", DEVICE_IDS[(i + 1) % 5] ?? "d2"],
            strategy: "sequential",
          }
        : i % 3 === 1
          ? { type: "voicemail" }
          : { type: "forward", to: `+1${digits(10)}` };
    out.push({ id: `r${i}`, name: `Rule ${i}`, rule: { v: 1, conditions, action } });
  }
  out.push({
    id: "catch-all",
    name: "Catch-all",
    rule: { v: 1, conditions: [{ type: "default" }], action: { type: "ring", deviceIds: DEVICE_IDS } },
  });
  return out;
}

const contactsById: Record<string, string[]> = Object.fromEntries(
  Array.from({ length: 50 }, (_, i) => [`c${i}`, [`+1${digits(10)}`, `+1${digits(10)}`]]),
);
const holidayList = Array.from({ length: 20 }, (_, i) => ({
  date: `2026-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + i).padStart(2, "0")}`,
  recurring: i % 2 === 0,
}));

function calls(entries: readonly BlocklistEntry[], count: number): InboundCall[] {
  const exact = entries.filter((e) => e.matchType === "exact");
  const prefix = entries.filter((e) => e.matchType === "prefix");
  const weekStart = Date.UTC(2026, 0, 12);
  return Array.from({ length: count }, (_, i) => {
    const r = i % 100;
    let from: string;
    if (r < 10) from = exact[rand(exact.length)]?.pattern ?? "+15550000000";
    else if (r < 15) {
      const p = prefix[rand(prefix.length)]?.pattern ?? "+1555";
      from = p + digits(12 - p.length);
    } else if (r < 17)
      from = `+1${digits(6)}0000`; // may hit an unanchored regex
    else from = `+1${digits(10)}`;
    return inboundCall({
      callSid: `CA${i}`,
      from,
      at: new Date(weekStart + rand(7 * 24 * 60) * 60_000),
      stirVerstat: i % 4 === 0 ? "TN-Validation-Passed-A" : "No-TN-Validation",
    });
  });
}

// --- measuring -------------------------------------------------------------------------

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

interface Stats {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}

function stats(samplesUs: number[]): Stats {
  const s = [...samplesUs].sort((a, b) => a - b);
  return {
    p50: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: s.at(-1) ?? 0,
    n: s.length,
  };
}

const fmt = (us: number) => (us >= 100 ? us.toFixed(0) : us.toFixed(1)).padStart(7);
const line = (name: string, s: Stats) =>
  `${name.padEnd(34)} p50 ${fmt(s.p50)} µs   p95 ${fmt(s.p95)} µs   p99 ${fmt(s.p99)} µs   max ${fmt(s.max)} µs   (${s.n} calls)`;

interface Samples {
  /** Wall time per call, µs. */
  wall: number[];
  /** CPU time of this process per call, µs (getrusage): the decision's cost without the machine's other load. */
  cpu: number[];
}
const samples = (): Samples => ({ wall: [], cpu: [] });

/** Times each decision; a checksum of the actions keeps the work from being optimised away. */
function timeDecisions(
  snapshot: RoutingSnapshot,
  list: readonly InboundCall[],
  out: Samples,
  clean?: Samples,
): number {
  let checksum = 0;
  for (const call of list) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const d = decideInboundCall(call, snapshot);
    const wall = Number(process.hrtime.bigint() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const cpu = c.user + c.system;
    out.wall.push(wall);
    out.cpu.push(cpu);
    if (clean && d.action !== "reject" && d.trace.length > 4) {
      clean.wall.push(wall);
      clean.cpu.push(cpu);
    }
    checksum += d.action.length + d.trace.length;
  }
  return checksum;
}

const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

async function databasePart(
  entries: readonly BlocklistEntry[],
  rules: ReturnType<typeof ruleDocuments>,
  list: readonly InboundCall[],
) {
  const dataDir = await mkdtemp(join(tmpdir(), "gosip-bench-routing-"));
  const config = loadConfig({ GOSIP_DATA_DIR: dataDir, PUBLIC_URL: "http://localhost:8080" });
  const client = await openNodeClient(config);
  try {
    await migrate(client);
    const db = createDb(client);
    const [user] = await db
      .insert(users)
      .values({ email: "bench@example.test", name: "Bench", passwordHash: "$scrypt$bench" })
      .returning({ id: users.id });
    if (!user) throw new Error("no user");
    await db.insert(devices).values(
      DEVICE_IDS.map((id, i) => ({
        id,
        userId: user.id,
        name: `Phone ${i + 1}`,
        extension: String(101 + i),
        sipUsername: `bench-${id}`,
        ha1Md5: "0".repeat(32),
        ha1Sha256: "0".repeat(64),
      })),
    );
    const now = Date.now();
    await db.insert(registrations).values(
      DEVICE_IDS.map((deviceId) => ({
        deviceId,
        contactUri: `sip:${deviceId}@127.0.0.1:5070`,
        sourceAddress: "127.0.0.1",
        sourcePort: 5070,
        transport: "udp" as const,
        expiresAt: new Date(now + 3_600_000),
      })),
    );
    const [did] = await db
      .insert(dids)
      .values({ e164: "+15551230001", defaultTargets: { v: 1, deviceIds: DEVICE_IDS } })
      .returning({ id: dids.id });
    if (!did) throw new Error("no DID");
    for (let i = 0; i < entries.length; i += 500) {
      await db
        .insert(blocklist)
        .values(
          entries
            .slice(i, i + 500)
            .map((e) => ({ id: e.id, pattern: e.pattern, matchType: e.matchType, action: e.action })),
        );
    }
    const { parseRoutingRule } = await import("@gosip/drizzle");
    await db.insert(routingRules).values(
      rules.map((r, i) => ({
        id: r.id,
        didId: i % 2 ? did.id : null,
        name: r.name,
        priority: (i + 1) * 10,
        rule: parseRoutingRule(r.rule),
      })),
    );
    await db.insert(contacts).values(Object.keys(contactsById).map((id) => ({ id, name: `Contact ${id}` })));
    await db
      .insert(contactNumbers)
      .values(
        Object.entries(contactsById).flatMap(([contactId, numbers]) =>
          numbers.map((e164) => ({ contactId, e164 })),
        ),
      );
    await db
      .insert(holidays)
      .values(holidayList.map((h, i) => ({ date: h.date, name: `Holiday ${i}`, recurring: h.recurring })));

    const deps = { db, relayChannel: new NodeRelayLink(), logger: quietLogger };
    const ms = (s: Stats) =>
      `p50 ${(s.p50 / 1000).toFixed(1)} ms   p95 ${(s.p95 / 1000).toFixed(1)} ms   max ${(s.max / 1000).toFixed(1)} ms`;
    console.log(
      `\n3. From the database (libSQL file, ${entries.length} blocklist rows, ${rules.length} rules), ${LOADS} calls each`,
    );
    for (const scoped of [true, false]) {
      const load: number[] = [];
      const total: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < LOADS; i++) {
        const call = list[i % list.length];
        if (!call) break;
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const snapshot = await loadRoutingSnapshot(
          deps,
          "+15551230001",
          new Date(),
          scoped ? { caller: call.from } : {},
        );
        const t1 = process.hrtime.bigint();
        if (!snapshot) throw new Error("DID not found");
        decideInboundCall(call, snapshot);
        const t2 = process.hrtime.bigint();
        const c = process.cpuUsage(c0);
        load.push(Number(t1 - t0) / 1000);
        total.push(Number(t2 - t0) / 1000);
        cpu.push(c.user + c.system);
      }
      const what = scoped ? "caller's candidate entries (webhook)" : "whole blocklist (no caller given)";
      console.log(`   load, ${what.padEnd(38)} ${ms(stats(load))}`);
      console.log(`   load + decide, ${what.padEnd(30)} ${ms(stats(total))}`);
      console.log(`   CPU time of load + decide         ${ms(stats(cpu))}`);
    }
  } finally {
    client.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `routing benchmark: load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const entries = blocklistEntries();
  const rules = ruleDocuments();

  // 1. compile
  const c0 = process.hrtime.bigint();
  compileBlocklist(entries);
  const coldMs = Number(process.hrtime.bigint() - c0) / 1e6;
  const warm: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = process.hrtime.bigint();
    compileBlocklist(entries);
    warm.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const warmStats = stats(warm);
  const regexCount = entries.filter((e) => e.matchType === "regex").length;
  console.log(`\n1. compileBlocklist, ${entries.length} entries (${regexCount} regexes)`);
  console.log(`   cold (first in the process, every regex validated): ${coldMs.toFixed(1)} ms`);
  console.log(
    `   warm (regexes compiled before), 20 runs: p50 ${warmStats.p50.toFixed(2)} ms, max ${warmStats.max.toFixed(2)} ms`,
  );

  // 2. decide
  const input = {
    devices: DEVICE_IDS.map((id) => ({ id })),
    contacts: contactsById,
    holidays: holidayList,
    timeZone: "America/New_York",
  };
  const full = buildSnapshot({ ...input, blocklist: entries, rules, did: { defaultDeviceIds: DEVICE_IDS } });
  const baseline = buildSnapshot({
    ...input,
    rules: [
      {
        id: "only",
        rule: { v: 1, conditions: [{ type: "default" }], action: { type: "ring", deviceIds: DEVICE_IDS } },
      },
    ],
  });
  const list = calls(entries, ITERATIONS);
  // Warm-up: JIT both paths before anything is recorded.
  timeDecisions(full, list.slice(0, 2000), samples());
  timeDecisions(baseline, list.slice(0, 2000), samples());
  const fullUs = samples();
  const cleanUs = samples();
  const baseUs = samples();
  let checksum = 0;
  const per = Math.ceil(list.length / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const part = list.slice(r * per, (r + 1) * per);
    checksum += timeDecisions(baseline, part, baseUs);
    checksum += timeDecisions(full, part, fullUs, cleanUs);
  }
  console.log(
    `\n2. decideInboundCall, ${list.length} calls in ${ROUNDS} alternating rounds (checksum ${checksum})`,
  );
  for (const kind of ["wall", "cpu"] as const) {
    const b = stats(baseUs[kind]);
    const f = stats(fullUs[kind]);
    const c = stats(cleanUs[kind]);
    console.log(kind === "wall" ? "   wall time per call:" : "   CPU time per call (this process only):");
    console.log(`   ${line("baseline (no blocklist, 1 rule)", b)}`);
    console.log(`   ${line(`full (${entries.length} entries, ${rules.length} rules)`, f)}`);
    console.log(`   ${line("full, clean callers only", c)}`);
    console.log(
      `   ratio full/baseline: p50 ${(f.p50 / b.p50).toFixed(1)}×, p95 ${(f.p95 / b.p95).toFixed(1)}×, p99 ${(f.p99 / b.p99).toFixed(1)}×`,
    );
    console.log(
      `   target p99 < ${P99_TARGET_US} µs: ${f.p99 < P99_TARGET_US ? "met" : "NOT met"} (${f.p99.toFixed(0)} µs)`,
    );
  }

  await databasePart(entries, rules, list);
  console.log(
    `\nload average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}

await main();
