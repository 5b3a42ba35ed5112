// Network robustness of the engine: the engine runs as its own process (relay/test/engine-child.ts: startEngine
// with short SIP timers, T1 = 50 ms, so transactions expire within the run and memory can be compared) with a drachtio-srf app routing
// OPTIONS/REGISTER/INVITE; the RFC 4475 torture messages and 12,000 seeded mutations of valid messages are
// sent over UDP and TCP (new connections, several messages per connection, split writes). Afterwards the
// process must be alive, still answer a valid OPTIONS with 200 within 3 s on both transports, and its RSS
// must not have grown by more than 20 MB between the first and the second half of the run.
import { createSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import type Srf from "drachtio-srf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, type EngineProcess, startEngineProcess } from "../../test/harness.ts";
import { mutations as freshMutations, validMessage } from "../../test/mutations.ts";
import { TORTURE_EXPECTED, tortureMessage, tortureNames } from "./sip/fixtures/torture.ts";
import { mutations as corpusMutations } from "./sip/fuzz.ts";
import { prng } from "./sip/random.ts";

const PER_TRANSPORT_PER_HALF = 3000; // x 2 transports x 2 halves = 12,000 mutations

/**
 * Half from the parser's shared corpus (sip/fuzz.ts: fixed identifiers, so many look like retransmissions), half
 * from relay/test/mutations.ts (fresh Call-ID/branch each, so each one is a new transaction in the engine).
 */
function* mixed(seed: number, count: number, target: string): Generator<Buffer> {
  const fresh = freshMutations(seed, Math.ceil(count / 2), target);
  const corpus = corpusMutations(seed, Math.floor(count / 2));
  for (;;) {
    const a = fresh.next();
    const b = corpus.next();
    if (a.done && b.done) return;
    if (!a.done) yield a.value;
    if (!b.done) yield b.value.data;
  }
}
const MESSAGES_PER_CONNECTION = 20;
const RSS_GROWTH_LIMIT_MB = 20;
const T1 = 50;
/** Timer H/J = 64*T1: after this every transaction from a phase has ended, so memory is comparable. */
const SETTLE_MS = 64 * T1 + 1000;

let engine: EngineProcess;
let appSeen = { options: 0, register: 0, invite: 0 };

beforeAll(async () => {
  engine = await startEngineProcess({ entry: "test", timers: { T1, T2: 8 * T1, T4: 10 * T1 } });
  await engine.connectApp((srf: Srf) => {
    srf.use("options", (_req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      appSeen.options++;
      res.send(200);
    });
    srf.use("register", (_req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      appSeen.register++;
      res.send(401, { headers: { "WWW-Authenticate": 'Digest realm="gosip.test", nonce="n", qop="auth"' } });
    });
    srf.invite((_req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      appSeen.invite++;
      res.send(486);
    });
  });
});

afterAll(async () => {
  try {
    await engine?.close();
  } finally {
    cleanup();
  }
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends datagrams from one socket at a bounded pace; returns how many datagrams came back. */
async function sendUdp(
  messages: Iterable<Buffer>,
  port = engine.sipPort,
): Promise<{ sent: number; received: number }> {
  const sock = createSocket("udp4");
  let received = 0;
  sock.on("message", () => received++);
  await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", () => resolve()));
  let sent = 0;
  for (const msg of messages) {
    // UDP datagrams are limited to 65,507 bytes; bigger mutations go over TCP only.
    const datagram = msg.length > 65_000 ? msg.subarray(0, 65_000) : msg;
    sock.send(datagram, port, "127.0.0.1");
    sent++;
    if (sent % 100 === 0) await sleep(5); // ~20,000/s at most: stress, not a socket-buffer flood test
  }
  await sleep(200);
  sock.close();
  return { sent, received };
}

/** Sends messages over TCP, MESSAGES_PER_CONNECTION per new connection, sometimes split at random points. */
async function sendTcp(
  messages: Iterable<Buffer>,
  seed: number,
  port = engine.sipPort,
): Promise<{ sent: number; connections: number }> {
  const r = prng(seed);
  let batch: Buffer[] = [];
  let sent = 0;
  let connections = 0;
  const inFlight = new Set<Promise<void>>();
  const flush = (chunk: Buffer[]): Promise<void> =>
    new Promise<void>((resolve) => {
      const sock: Socket = connect({ host: "127.0.0.1", port });
      connections++;
      const done = (): void => {
        sock.destroy();
        resolve();
      };
      sock.setTimeout(2000, done);
      sock.on("error", done);
      sock.on("data", () => undefined);
      sock.on("close", done);
      sock.on("connect", () => {
        const all = Buffer.concat(chunk);
        if (r() < 0.5) {
          sock.write(all);
        } else {
          // split writes at random byte positions to exercise the stream framer
          let at = 0;
          while (at < all.length) {
            const n = 1 + Math.floor(r() * 1500);
            sock.write(all.subarray(at, at + n));
            at += n;
          }
        }
        // Half-close, then give the engine a moment to read and answer before the connection is dropped.
        sock.end();
        setTimeout(done, 150);
      });
    });
  for (const msg of messages) {
    batch.push(msg);
    sent++;
    if (batch.length === MESSAGES_PER_CONNECTION) {
      const p = flush(batch);
      inFlight.add(p);
      void p.then(() => inFlight.delete(p));
      batch = [];
      if (inFlight.size >= 20) await Promise.race(inFlight);
    }
  }
  if (batch.length > 0) inFlight.add(flush(batch));
  await Promise.all(inFlight);
  return { sent, connections };
}

/**
 * Over TCP a message without Content-Length cannot be framed (RFC 3261 §18.3), so the RFC 2543 request is the one
 * "accept" case the engine may close the connection on instead of answering.
 */
const UNFRAMEABLE_ON_TCP = new Set(["inv2543"]);

/**
 * How long a message that must be answered may take (an answer normally comes within milliseconds; a starved
 * machine must not turn a late answer into a failure).
 */
const ANSWER_MS = 5000;
/**
 * A message that may legitimately go unanswered waits this long before the next one is sent; its connection stays
 * open, so an answer that comes later still counts (parked until LATE_ANSWER_MS after it was sent).
 */
const SHORT_WAIT_MS = 300;
/** Time every parked connection gets (since its message was sent) before "no response" is final. */
const LATE_ANSWER_MS = 3000;
/** The engine must still answer this fast after the mutation storm. */
const POST_STORM_ANSWER_MS = 3000;

/** One message on its own TCP connection, listening until close(). */
interface TcpExchange {
  /** When the message was written, Date.now(). */
  readonly sentAt: number;
  /** The first final status line, "closed", or "no response" (so far). */
  outcome(): string;
  /** Resolves when an outcome other than "no response" is known, or after waitMs. */
  settled(waitMs: number): Promise<void>;
  close(): void;
}

/** Sends one message on a new TCP connection and keeps listening for its outcome. */
function exchangeTcp(msg: Buffer): TcpExchange {
  let got = "";
  let result = "no response";
  let onSettled = (): void => undefined;
  let sentAt = Date.now();
  const sock = connect({ host: "127.0.0.1", port: engine.sipPort }, () => {
    sentAt = Date.now();
    sock.write(msg);
  });
  const settle = (outcome: string): void => {
    if (result !== "no response") return;
    result = outcome;
    onSettled();
  };
  sock.on("data", (d: Buffer) => {
    got += d.toString("latin1");
    const final = /(?:^|\r\n)(SIP\/2\.0 [2-6]\d\d[^\r\n]*)/.exec(got);
    if (final?.[1]) settle(final[1]);
  });
  sock.on("error", () => settle("closed"));
  sock.on("close", () => settle("closed"));
  return {
    get sentAt() {
      return sentAt;
    },
    outcome: () => result,
    settled: (waitMs) =>
      new Promise<void>((resolve) => {
        if (result !== "no response") return resolve();
        const timer = setTimeout(resolve, waitMs);
        onSettled = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    close: () => sock.destroy(),
  };
}

/** A valid OPTIONS over UDP or TCP; resolves with the status line of the first final response. */
async function probeOptions(
  transport: "udp" | "tcp",
  timeoutMs = ANSWER_MS,
  prefix = "",
  port = engine.sipPort,
): Promise<string> {
  const text = validMessage(prng(Date.now()), `127.0.0.1:${port}`, 0).replace(
    "SIP/2.0/UDP",
    `SIP/2.0/${transport.toUpperCase()}`,
  );
  const msg = Buffer.from(prefix + text);
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      close();
      reject(new Error(`no final response to OPTIONS over ${transport} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      // Over TCP a "\r\n" keepalive pong may precede the response in the same chunk.
      const status =
        d
          .toString("latin1")
          .replace(/^[\r\n]+/, "")
          .split("\r\n")[0] ?? "";
      if (/^SIP\/2\.0 [2-6]\d\d/.test(status)) {
        clearTimeout(timer);
        close();
        resolve(status);
      }
    };
    let close = (): void => undefined;
    if (transport === "udp") {
      const sock = createSocket("udp4");
      close = () => sock.close();
      sock.on("message", onData);
      sock.bind(0, "127.0.0.1", () => sock.send(msg, port, "127.0.0.1"));
    } else {
      const sock = connect({ host: "127.0.0.1", port }, () => sock.write(msg));
      close = () => sock.destroy();
      sock.on("data", onData);
      sock.on("error", () => undefined);
    }
  });
}

/** RSS and GC'd heap of the engine (MB) once the phase's transactions have timed out. */
async function settledMemory(): Promise<{ rss: number; heap: number }> {
  await sleep(SETTLE_MS);
  // Timers fire late on a loaded machine: wait (bounded) until the engine has really ended them.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const stats = await engine.engineStats();
    const busy = (stats?.stack.serverTransactions ?? 0) + (stats?.stack.clientTransactions ?? 0);
    if (busy + (stats?.dialogs ?? 0) + (stats?.netTransactions ?? 0) === 0 || Date.now() > deadline) break;
    await sleep(100);
  }
  const mem = await engine.memory();
  return { rss: (await engine.rssKb()) / 1024, heap: (mem?.heapUsed ?? Number.NaN) / 1024 / 1024 };
}

describe("engine robustness against malformed and mutated SIP over the network", () => {
  it("answers or drops every RFC 4475 torture message and stays up", async () => {
    const names = tortureNames();
    expect(names.length).toBeGreaterThanOrEqual(40);
    const raw = names.map((n) => tortureMessage(n));
    await sendUdp(raw);
    await sendTcp(raw, 4475);
    // One connection per message as well: a torture message must not poison the next one on its own connection.
    for (const m of raw) await sendTcp([m], 1);
    expect(engine.alive(), engine.output()).toBe(true);
    expect(await probeOptions("udp")).toBe("SIP/2.0 200 OK");
    expect(await probeOptions("tcp")).toBe("SIP/2.0 200 OK");
  });

  it("gives each RFC 4475 message over TCP its expected outcome: answered, 400/505, or dropped", async () => {
    // The torture messages carry fixed Call-IDs and branches: let the transactions of the previous test expire,
    // or these copies are (rightly) absorbed as retransmissions.
    await sleep(SETTLE_MS);
    // One at a time: several torture messages share a branch and sent-by, so sent together they are one
    // transaction (RFC 3261 §17.2.3) and the later copies are, correctly, absorbed as retransmissions.
    // A message that must be answered is waited for (up to ANSWER_MS); one that may go unanswered gets
    // SHORT_WAIT_MS before the next is sent, but its connection stays open: an answer to it that arrives up to
    // LATE_ANSWER_MS after it was sent still counts, so a late answer to a message that must be dropped fails
    // (and a late 400 is checked against the expected status).
    const exchanges = new Map<string, TcpExchange>();
    for (const name of tortureNames()) {
      const msg = tortureMessage(name);
      const expected = TORTURE_EXPECTED[name];
      const mustAnswer =
        expected?.outcome === "accept" &&
        !msg.toString("latin1").startsWith("SIP/2.0 ") &&
        !UNFRAMEABLE_ON_TCP.has(name);
      const exchange = exchangeTcp(msg);
      exchanges.set(name, exchange);
      await exchange.settled(mustAnswer ? ANSWER_MS : SHORT_WAIT_MS);
    }
    const parked = [...exchanges.values()].filter((e) => e.outcome() === "no response");
    const lastParked = Math.max(0, ...parked.map((e) => e.sentAt));
    await sleep(Math.max(0, lastParked + LATE_ANSWER_MS - Date.now()));
    const outcomes = new Map<string, string>();
    for (const [name, exchange] of exchanges) {
      outcomes.set(name, exchange.outcome());
      exchange.close();
    }
    const report = [...outcomes].map(([n, o]) => `${n}: ${o}`).join("\n");
    // Expected outcome per message from the parser's fixtures (RFC 4475 §3.1.1 valid, §3.1.2 invalid, §3.3 semantics).
    for (const [name, expected] of Object.entries(TORTURE_EXPECTED)) {
      const outcome = outcomes.get(name) ?? "missing";
      const isRequest = !tortureMessage(name).toString("latin1").startsWith("SIP/2.0 ");
      const why = `${name} (${expected.outcome}: ${expected.note})\n${report}`;
      if (expected.outcome === "accept" && isRequest && !UNFRAMEABLE_ON_TCP.has(name)) {
        expect(outcome, why).toMatch(/^SIP\/2\.0 [2-6]\d\d/);
      } else if (expected.outcome === "respond" && outcome.startsWith("SIP/2.0")) {
        expect(outcome, why).toMatch(new RegExp(`^SIP/2\\.0 ${expected.status ?? 400} `));
      } else if (expected.outcome === "drop") {
        expect(outcome, why).not.toMatch(/^SIP\/2\.0/);
      }
    }
    expect(engine.alive(), engine.output()).toBe(true);
  });

  it("the engine as started by `npm run engine` (main.ts) also survives the torture corpus", async () => {
    const cli = await startEngineProcess({ entry: "cli" });
    try {
      await cli.connectApp((srf: Srf) => {
        srf.use("options", (_req: Srf.SrfRequest, res: Srf.SrfResponse) => res.send(200));
      });
      const raw = tortureNames().map((n) => tortureMessage(n));
      await sendUdp(raw, cli.sipPort);
      await sendTcp(raw, 4475, cli.sipPort);
      expect(cli.alive(), cli.output()).toBe(true);
      expect(await probeOptions("udp", ANSWER_MS, "", cli.sipPort)).toBe("SIP/2.0 200 OK");
      expect(await probeOptions("tcp", ANSWER_MS, "", cli.sipPort)).toBe("SIP/2.0 200 OK");
    } finally {
      await cli.close();
    }
  });

  it("answers a request preceded by empty lines (RFC 3261 §7.5: CRLFs before the start line are ignored)", async () => {
    const before = appSeen.options;
    expect(await probeOptions("udp", ANSWER_MS, "\r\n\r\n")).toBe("SIP/2.0 200 OK");
    expect(await probeOptions("tcp", ANSWER_MS, "\r\n\r\n")).toBe("SIP/2.0 200 OK");
    expect(appSeen.options - before).toBe(2);
  });

  it("survives 12,000 mutations over UDP and TCP with flat memory and still answers OPTIONS within 3 s", async () => {
    const target = engine.sipTarget;
    appSeen = { options: 0, register: 0, invite: 0 };
    const start = await settledMemory();

    // First half.
    const udp1 = await sendUdp(mixed(1, PER_TRANSPORT_PER_HALF, target));
    const tcp1 = await sendTcp(mixed(2, PER_TRANSPORT_PER_HALF, target), 2);
    expect(engine.alive(), engine.output()).toBe(true);
    const firstHalf = await settledMemory();

    // Second half, different seeds.
    const udp2 = await sendUdp(mixed(3, PER_TRANSPORT_PER_HALF, target));
    const tcp2 = await sendTcp(mixed(4, PER_TRANSPORT_PER_HALF, target), 4);
    expect(engine.alive(), engine.output()).toBe(true);
    const secondHalf = await settledMemory();
    // Every transaction and dialog of the run has ended (timers expired), nothing is left behind.
    const stats = await engine.engineStats();
    console.log(`robustness: engine stats after the run settled ${JSON.stringify(stats)}`);
    expect(stats?.stack.serverTransactions).toBe(0);
    expect(stats?.stack.clientTransactions).toBe(0);
    expect(stats?.stack.internalErrors).toBe(0);
    expect(stats?.dialogs).toBe(0);
    expect(stats?.netTransactions).toBe(0);

    const total = udp1.sent + udp2.sent + tcp1.sent + tcp2.sent;
    console.log(
      `robustness: ${total} mutations (UDP ${udp1.sent + udp2.sent}, ${udp1.received + udp2.received} datagrams answered; ` +
        `TCP ${tcp1.sent + tcp2.sent} over ${tcp1.connections + tcp2.connections} connections); ` +
        `app saw OPTIONS ${appSeen.options}, REGISTER ${appSeen.register}, INVITE ${appSeen.invite}; ` +
        `RSS start ${start.rss.toFixed(1)} MB, after 1st half ${firstHalf.rss.toFixed(1)} MB, after 2nd half ${secondHalf.rss.toFixed(1)} MB; ` +
        `heap after GC ${start.heap.toFixed(1)} / ${firstHalf.heap.toFixed(1)} / ${secondHalf.heap.toFixed(1)} MB`,
    );
    expect(total).toBeGreaterThanOrEqual(10_000);
    // Mutations that stayed valid reach the app, so the engine kept relaying during the run.
    expect(appSeen.options + appSeen.register + appSeen.invite).toBeGreaterThan(100);
    expect(udp1.received + udp2.received).toBeGreaterThan(100);

    expect(engine.alive(), engine.output()).toBe(true);
    // Answered in milliseconds on an idle engine; 3 s is what a 3x slower, loaded machine still passes.
    expect(await probeOptions("udp", POST_STORM_ANSWER_MS)).toBe("SIP/2.0 200 OK");
    expect(await probeOptions("tcp", POST_STORM_ANSWER_MS)).toBe("SIP/2.0 200 OK");
    expect(secondHalf.rss - firstHalf.rss).toBeLessThan(RSS_GROWTH_LIMIT_MB);
    // The GC'd heap is the sharper leak detector: 6,000 more messages must not leave megabytes behind.
    expect(secondHalf.heap - firstHalf.heap).toBeLessThan(5);
  });
});
