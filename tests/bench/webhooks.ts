/**
 * Voice webhook latency benchmark (`npm run bench:webhooks -w @gosip/tests`, or
 * `npx tsx tests/bench/webhooks.ts`): the real Node edge (startNodeEdge, libSQL file
 * database with migrations, the Twilio signature check) holding a DID, 2 registered
 * devices, 10,000 blocklist entries and 200 routing rules, with a relay connected over
 * the real WebSocket link, so every inbound call walks the whole routing path and is
 * answered with `<Dial><Sip>` to both phones. Baseline in the same run: a bare hono
 * POST handler on @hono/node-server answering a fixed TwiML document.
 *
 * Targets, driven by autocannon at 50 concurrent keep-alive connections in interleaved
 * rounds (medians over the rounds, so a burst of load from elsewhere skews one round,
 * not the comparison):
 * - POST /api/webhooks/twilio/voice: each request a distinct CallSid with its own
 *   X-Twilio-Signature (HMAC-SHA1 computed per request in setupRequest); callers are
 *   90 % clean (walk every rule), 10 % blocklisted;
 * - POST /api/webhooks/twilio/dial-result: DialCallStatus=completed for calls whose CDR
 *   exists (pre-created), distinct CallSids, each signed.
 * Targets: voice p95 < 20 ms and within 3× the baseline's p95. Figures are printed;
 * the script fails only when requests fail (non-2xx, errors).
 *
 * Options (env): BENCH_SECONDS (default 3) per target per round, BENCH_ROUNDS (default 3),
 * BENCH_CONNECTIONS (default 50). Load generator and servers share this process and the
 * machine's cores: compare ratios, not absolute numbers, across machines.
 */
import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  blocklist,
  cdrs,
  computeHa1,
  devices,
  dids,
  parseRoutingRule,
  type RoutingRuleInput,
  registrations,
  routingRules,
  settings,
  users,
} from "@gosip/drizzle";
import { createAdaptorServer } from "@hono/node-server";
import autocannon from "autocannon";
import { Hono } from "hono";
import WebSocket from "ws";
import { startNodeEdge } from "../../edge/src/platform/node/server.ts";
import type { Logger } from "../../edge/src/platform/types.ts";
import { twilioSignature } from "../../edge/src/twilio/signature.ts";
import { dialResultUrl } from "../../edge/src/voice/urls.ts";
import { loadAverage, runBench } from "./edge-fixture.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const WARMUP_SECONDS = 1;
const SETTLE_MS = 1500;
const BLOCKLIST_SIZE = 10_000;
const RULES = 200;
/** CDRs ready for dial-result requests (more than a round can use). */
const DIAL_POOL = Number(process.env.BENCH_DIAL_POOL ?? 60_000);
const P95_TARGET_MS = 20;
const RATIO_TARGET = 3;

// Obviously fake test credentials; the edge verifies signatures made with them.
const ACCOUNT_SID = `AC${"b".repeat(32)}`;
const AUTH_TOKEN = "bench0123456789abcdef0123456789ab";
const PUBLIC_URL = "http://pbx.example.test";
const DID = "+15550001000";

const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** X-Twilio-Signature, synchronously (node:crypto), the way Twilio computes it. */
function sign(url: string, params: Record<string, string>): string {
  let data = url;
  for (const name of Object.keys(params).sort()) data += name + params[name];
  return createHmac("sha1", AUTH_TOKEN).update(data).digest("base64");
}

let sidCounter = 0;
const nextSid = (): string => {
  sidCounter += 1;
  return `CA${sidCounter.toString(16).padStart(32, "0")}`;
};

interface Target {
  name: string;
  url: string;
  /** Path and query as signed (after PUBLIC_URL). */
  nextRequest: () => { path: string; body: string; signature: string };
}

interface Result {
  name: string;
  requests: number;
  reqPerSec: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

async function drive(target: Target, seconds: number): Promise<Result> {
  const times: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        method: "POST",
        connections: CONNECTIONS,
        duration: seconds,
        requests: [
          {
            setupRequest: (req) => {
              const r = target.nextRequest();
              return {
                ...req,
                path: r.path,
                body: r.body,
                headers: {
                  ...req.headers,
                  "content-type": "application/x-www-form-urlencoded",
                  "x-twilio-signature": r.signature,
                },
              };
            },
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      times.push(responseTime);
    });
  });
  times.sort((a, b) => a - b);
  return {
    name: target.name,
    requests: result.requests.total,
    reqPerSec: result.requests.total / seconds,
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    p99: percentile(times, 99),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const median = (values: number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

function medianResult(rounds: Result[]): Result {
  const first = rounds[0];
  if (!first) throw new Error("no rounds");
  return {
    name: first.name,
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    reqPerSec: median(rounds.map((r) => r.reqPerSec)),
    p50: median(rounds.map((r) => r.p50)),
    p95: median(rounds.map((r) => r.p95)),
    p99: median(rounds.map((r) => r.p99)),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}

function printTable(results: Result[]): void {
  const base = results[0];
  if (!base) throw new Error("no baseline result");
  const header = [
    "target",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "p50 ×base",
    "p95 ×base",
    "p99 ×base",
    "failed",
  ];
  const rows = results.map((r) => [
    r.name,
    Math.round(r.reqPerSec).toString(),
    r.p50.toFixed(2),
    r.p95.toFixed(2),
    r.p99.toFixed(2),
    `${(r.p50 / base.p50).toFixed(1)}×`,
    `${(r.p95 / base.p95).toFixed(1)}×`,
    `${(r.p99 / base.p99).toFixed(1)}×`,
    String(r.non2xx + r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

// Deterministic pseudo-random numbers (xorshift32): every run measures the same data.
let seed = 0x9e3779b9;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x1_0000_0000;
}
const digits = (n: number): string => Array.from({ length: n }, () => Math.floor(rand() * 10)).join("");

/** 10,000 entries: 70 % exact, 25 % prefix, 5 % regex (anchored); none matches +1555… callers. */
function blocklistRows(): (typeof blocklist.$inferInsert)[] {
  const rows: (typeof blocklist.$inferInsert)[] = [];
  for (let i = 0; i < BLOCKLIST_SIZE; i++) {
    const kind = i % 20;
    if (kind < 14) rows.push({ pattern: `+1${200 + (i % 300)}${digits(7)}`, matchType: "exact" });
    else if (kind < 19) rows.push({ pattern: `+1${600 + (i % 300)}${digits(3)}`, matchType: "prefix" });
    else rows.push({ pattern: `^\\+1${700 + (i % 200)}${digits(2)}\\d{5}$`, matchType: "regex" });
  }
  // The blocklisted 10 % of callers.
  rows.push({ pattern: "+1999", matchType: "prefix" });
  return rows;
}

/** 200 rules that a clean caller never matches (so it walks them all), then the DID default. */
function ruleRows(didId: string, deviceIds: string[]): (typeof routingRules.$inferInsert)[] {
  const rows: (typeof routingRules.$inferInsert)[] = [];
  for (let i = 0; i < RULES; i++) {
    let rule: RoutingRuleInput;
    if (i % 3 === 0) {
      rule = {
        v: 1,
        conditions: [
          { type: "callerId", match: { by: "prefix", prefixes: [`+44${i}`, `+33${i}`] } },
          {
            type: "time",
            windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" }],
          },
        ],
        action: { type: "voicemail" },
      };
    } else if (i % 3 === 1) {
      rule = {
        v: 1,
        conditions: [
          { type: "callerId", match: { by: "exact", numbers: [`+1888${digits(7)}`, `+1877${digits(7)}`] } },
        ],
        action: { type: "reject", reason: "busy" },
      };
    } else {
      rule = {
        v: 1,
        conditions: [{ type: "callerId", match: { by: "regex", pattern: `^\\+4420${i}\\d+$` } }],
        action: { type: "ring", deviceIds, strategy: "sequential", timeoutSeconds: 20 },
      };
    }
    rows.push({
      didId: i % 2 === 0 ? didId : null,
      name: `Rule ${i}`,
      priority: i + 1,
      rule: parseRoutingRule(rule),
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "gosip-bench-webhooks-"));
  const edge = await startNodeEdge(
    {
      GOSIP_DATA_DIR: dataDir,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "error",
      PUBLIC_URL,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    },
    { logger: quietLogger, jobTimer: false },
  );
  const bare = new Hono();
  const bareTwiml =
    '<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="30"><Sip>sip:101@relay.example.net</Sip></Dial></Response>';
  bare.post("/*", (c) => c.body(bareTwiml, 200, { "content-type": "text/xml; charset=utf-8" }));
  const bareServer = createAdaptorServer({ fetch: bare.fetch }) as Server;
  await new Promise<void>((resolve) => bareServer.listen(0, "127.0.0.1", resolve));
  let ws: WebSocket | undefined;
  try {
    // Data: admin (through the API, for the relay token), a user with 2 devices, the DID, the relay.
    const setup = await edge.app.request("/api/setup", {
      method: "POST",
      headers: { "content-type": "application/json", "x-gosip-csrf": "1" },
      body: JSON.stringify({ email: "bench@example.com", password: "bench-password" }),
    });
    if (setup.status !== 201) throw new Error(`setup failed: ${setup.status}`);
    const cookie = (setup.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
    const db = edge.deps.db;
    const [user] = await db
      .insert(users)
      .values({ email: "alice@example.com", name: "Alice", role: "user", passwordHash: "x" })
      .returning({ id: users.id });
    if (!user) throw new Error("user insert failed");
    const deviceIds: string[] = [];
    for (const ext of ["101", "102"]) {
      const [d] = await db
        .insert(devices)
        .values({
          userId: user.id,
          name: `Phone ${ext}`,
          extension: ext,
          sipUsername: `u${ext}`,
          ha1Md5: computeHa1(`u${ext}`, "gosip", "pw", "MD5"),
          ha1Sha256: computeHa1(`u${ext}`, "gosip", "pw", "SHA-256"),
        })
        .returning({ id: devices.id });
      if (!d) throw new Error("device insert failed");
      deviceIds.push(d.id);
      await db.insert(registrations).values({
        deviceId: d.id,
        contactUri: `sip:${ext}@192.168.1.${ext.slice(1)}:5062`,
        sourceAddress: "192.168.1.20",
        sourcePort: 5062,
        transport: "udp",
        expiresAt: new Date(Date.now() + 24 * 3_600_000),
      });
    }
    const [did] = await db
      .insert(dids)
      .values({ e164: DID, label: "Main", defaultTargets: { v: 1, deviceIds } })
      .returning({ id: dids.id });
    if (!did) throw new Error("DID insert failed");
    await db.insert(settings).values({
      key: "relay",
      value: {
        v: 1,
        publicSipUri: "sip:relay.example.net:5060",
        inboundUsername: "twilio-in",
        inboundPassword: "bench-inbound-password",
        trustedNetworks: [],
      },
    });
    const bl = blocklistRows();
    for (let i = 0; i < bl.length; i += 500)
      await db
        .insert(blocklist)
        .values(bl.slice(i, i + 500))
        .onConflictDoNothing();
    await db.insert(routingRules).values(ruleRows(did.id, deviceIds));

    // The relay, online over the real link.
    const tokenRes = await edge.app.request("/api/relay/tokens", {
      method: "POST",
      headers: { cookie, "x-gosip-csrf": "1", "content-type": "application/json" },
      body: JSON.stringify({ name: "bench" }),
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const socket = new WebSocket(`${edge.url.replace("http", "ws")}/api/relay/connect`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    socket.send(
      JSON.stringify({ type: "hello", v: 1, software: "gosip-relay bench", sip: ["udp/127.0.0.1:5060"] }),
    );
    for (let i = 0; i < 200 && !(await edge.deps.relayChannel.status()).connected; i++)
      await new Promise((r) => setTimeout(r, 10));
    if (!(await edge.deps.relayChannel.status()).connected) throw new Error("relay did not come online");

    // CDRs for the dial-result target (as the voice webhook would have left them).
    const dialSids: { sid: string; cdrId: string }[] = [];
    const now = new Date();
    for (let i = 0; i < DIAL_POOL; i += 1000) {
      const rows = Array.from({ length: Math.min(1000, DIAL_POOL - i) }, () => ({
        id: crypto.randomUUID(),
        direction: "inbound" as const,
        fromNumber: "+15557654321",
        toNumber: DID,
        didId: did.id,
        startedAt: now,
        twilioCallSid: nextSid(),
      }));
      await db.insert(cdrs).values(rows);
      for (const r of rows) dialSids.push({ sid: r.twilioCallSid, cdrId: r.id });
    }

    const voicePath = "/api/webhooks/twilio/voice";
    let callNo = 0;
    const voiceRequest = () => {
      callNo += 1;
      const blocked = callNo % 10 === 0;
      const params = {
        AccountSid: ACCOUNT_SID,
        CallSid: nextSid(),
        From: blocked
          ? `+1999${String(callNo % 10_000_000).padStart(7, "0")}`
          : `+1555${String(callNo % 10_000_000).padStart(7, "0")}`,
        To: DID,
        CallStatus: "ringing",
        Direction: "inbound",
        CallerName: "Bench Caller",
        StirVerstat: "TN-Validation-Passed-A",
      };
      return {
        path: voicePath,
        body: new URLSearchParams(params).toString(),
        signature: sign(`${PUBLIC_URL}${voicePath}`, params),
      };
    };
    let dialNo = 0;
    const dialRequest = () => {
      const entry = dialSids[dialNo % dialSids.length];
      dialNo += 1;
      if (!entry) throw new Error("no dial-result CDRs");
      const url = dialResultUrl(PUBLIC_URL, {
        cdrId: entry.cdrId,
        didId: did.id,
        userId: user.id,
        kind: "ring",
        step: 1,
        next: [],
        timeoutSeconds: 30,
        onNoAnswer: "voicemail",
      });
      const params = {
        CallSid: entry.sid,
        DialCallStatus: "completed",
        DialCallDuration: "42",
        DialSipResponseCode: "200",
      };
      return {
        path: url.slice(PUBLIC_URL.length),
        body: new URLSearchParams(params).toString(),
        signature: sign(url, params),
      };
    };

    // The synchronous signer must agree with the edge's own (WebCrypto) one.
    const probe = { CallSid: nextSid(), From: "+15551234567", To: DID };
    if (
      sign(`${PUBLIC_URL}${voicePath}`, probe) !==
      (await twilioSignature(AUTH_TOKEN, `${PUBLIC_URL}${voicePath}`, probe))
    )
      throw new Error("benchmark signer disagrees with the edge's twilioSignature");
    // And the edge must answer a ring with both phones.
    const check = voiceRequest();
    const checkRes = await fetch(`${edge.url}${check.path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": check.signature },
      body: check.body,
    });
    const checkXml = await checkRes.text();
    if (checkRes.status !== 200 || (checkXml.match(/<Sip /g) ?? []).length !== 2)
      throw new Error(`the voice webhook did not ring both phones: ${checkRes.status} ${checkXml}`);

    const targets: Target[] = [
      {
        name: "bare hono POST (baseline)",
        url: `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`,
        nextRequest: voiceRequest,
      },
      { name: "POST /voice (ring 2 phones)", url: edge.url, nextRequest: voiceRequest },
      { name: "POST /dial-result (completed)", url: edge.url, nextRequest: dialRequest },
    ];

    console.log(
      `Voice webhook benchmark: ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s per ` +
        `target (after ${WARMUP_SECONDS} s warm-up each), medians over rounds; Node ${process.version}, libSQL ` +
        `file database, ${BLOCKLIST_SIZE} blocklist entries, ${RULES} rules, 2 registered phones, relay online`,
    );
    // autocannon stops sending at the deadline, but the edge still works off what is in flight: let it
    // finish before the next target, so one target's backlog does not land in the next one's figures.
    const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const loadBefore = loadAverage();
    for (const target of targets) {
      await drive(target, WARMUP_SECONDS);
      await settle();
    }
    const rounds: Result[][] = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, target] of targets.entries()) {
        rounds[i]?.push(await drive(target, SECONDS));
        await settle();
      }
    }
    const results = rounds.map(medianResult);
    const loadAfter = loadAverage();
    printTable(results);
    console.log(`load average (1/5/15 min): before ${loadBefore}, after ${loadAfter}`);
    const [base, voice] = results;
    if (base && voice) {
      const ratio = voice.p95 / base.p95;
      console.log(
        `voice p95 ${voice.p95.toFixed(2)} ms (target < ${P95_TARGET_MS} ms: ${voice.p95 < P95_TARGET_MS ? "met" : "MISSED"}), ` +
          `${ratio.toFixed(1)}× the baseline p95 (target ≤ ${RATIO_TARGET}×: ${ratio <= RATIO_TARGET ? "met" : "MISSED"})`,
      );
    }
    const failed = results.filter((r) => r.non2xx > 0 || r.errors > 0);
    if (failed.length > 0) {
      console.error(`Some requests failed: ${failed.map((r) => r.name).join(", ")}`);
      process.exitCode = 1;
    }
  } finally {
    ws?.terminate();
    bareServer.closeAllConnections();
    await new Promise<void>((resolve) => bareServer.close(() => resolve()));
    await edge.close(1000);
    await rm(dataDir, { recursive: true, force: true });
  }
}

runBench(main);
