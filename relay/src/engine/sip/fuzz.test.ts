// Mutation fuzz of the parser (deterministic corpus from fuzz.ts): parseMessage never throws, answers quickly, and
// every message it accepts serializes into bytes it accepts again with the same content. The header helpers and the
// TCP framer get the same inputs and must not throw either.

import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { tortureMessage, tortureNames } from "./fixtures/torture.ts";
import { FUZZ_BASES, MUTATION_OPERATORS, mutations } from "./fuzz.ts";
import {
  DEFAULT_LIMITS,
  type ParseResult,
  parseCSeq,
  parseMessage,
  parseNameAddr,
  parseUri,
  parseVia,
  type SipMessage,
  StreamFramer,
  serializeMessage,
} from "./message.ts";

// drachtio-srf's own message class, as the app side of the engine uses it (CommonJS, untyped: narrowed here).
const requireCjs = createRequire(import.meta.url);
const SrfSipMessage = requireCjs("drachtio-srf/lib/sip-parser/message.js") as new (
  text: string,
) => { has(name: string): boolean; getParsedHeader(name: string): unknown };

const SEED = 4475;
const COUNT = 12_000;

function entries(m: SipMessage): string[] {
  return [...m.headers.entries()]
    .filter(([n]) => !/^(content-length|l)$/i.test(n))
    .map(([n, v]) => `${n}: ${v}`);
}

describe("mutation fuzz", () => {
  it("starts from valid base messages", () => {
    for (const b of FUZZ_BASES) expect(parseMessage(b.data).ok, b.name).toBe(true);
  });

  it("is deterministic for a seed", () => {
    const a = [...mutations(7, 50)].map((m) => m.data.toString("base64"));
    const b = [...mutations(7, 50)].map((m) => m.data.toString("base64"));
    expect(a).toEqual(b);
    expect([...mutations(8, 50)].map((m) => m.data.toString("base64"))).not.toEqual(a);
  });

  it(`${COUNT} mutations: no throw, bounded time, accepted messages round-trip`, () => {
    let accepted = 0;
    let rejected = 0;
    let respondable = 0;
    let slowest = 0;
    const opsSeen = new Set<string>();
    const problems: string[] = [];
    // Serializing may add a Content-Length line and one space per "Name:value" header.
    const relaxed = { maxMessageSize: DEFAULT_LIMITS.maxMessageSize + 300 };
    const started = performance.now();

    for (const mu of mutations(SEED, COUNT)) {
      for (const op of mu.ops) opsSeen.add(op);
      const label = `#${mu.index} ${mu.base} [${mu.ops.join(",")}]`;
      let r: ParseResult;
      const t0 = performance.now();
      try {
        r = parseMessage(mu.data);
      } catch (err) {
        problems.push(`${label}: threw ${String(err)}`);
        continue;
      }
      let took = performance.now() - t0;
      if (took > 20) {
        // Probably a GC pause or a busy machine: time it again and keep the best of a few runs.
        for (let k = 0; k < 3; k++) {
          const t1 = performance.now();
          parseMessage(mu.data);
          took = Math.min(took, performance.now() - t1);
        }
      }
      slowest = Math.max(slowest, took);
      if (!r.ok) {
        rejected++;
        if (r.respondable) respondable++;
        continue;
      }
      accepted++;
      const m = r.message;
      // Helpers are total on whatever the parser accepted.
      for (const [, value] of m.headers.entries()) {
        parseVia(value);
        parseNameAddr(value);
        parseCSeq(value);
      }
      if (m.kind === "request") parseUri(m.uri);

      const wire = serializeMessage(m);
      const again = parseMessage(wire, relaxed);
      if (!again.ok) {
        problems.push(`${label}: serialized form rejected: ${again.reason}`);
        continue;
      }
      const a = again.message;
      const same =
        a.kind === m.kind &&
        (a.kind === "request" && m.kind === "request"
          ? a.method === m.method && a.uri === m.uri
          : a.kind === "response" &&
            m.kind === "response" &&
            a.status === m.status &&
            a.reason === m.reason) &&
        a.body.equals(m.body) &&
        JSON.stringify(entries(a)) === JSON.stringify(entries(m));
      if (!same) problems.push(`${label}: content changed by the round trip`);
      else if (!serializeMessage(a).equals(wire)) problems.push(`${label}: serialization not stable`);
    }

    const elapsed = performance.now() - started;
    expect(problems.slice(0, 10)).toEqual([]);
    expect([...opsSeen].sort()).toEqual([...MUTATION_OPERATORS].sort());
    // The corpus exercises both sides: plenty accepted (round-tripped) and plenty rejected.
    expect(accepted).toBeGreaterThan(COUNT / 10);
    expect(rejected).toBeGreaterThan(COUNT / 10);
    expect(respondable).toBeGreaterThan(0);
    // Bounded time: no single parse may take long (inputs go up to ~110 KiB and 1000 header lines); typical
    // worst case is well under 1 ms.
    expect(slowest).toBeLessThan(50);
    expect(elapsed).toBeLessThan(30_000);
  });

  it("the TCP framer survives the corpus as one stream in random-sized chunks", () => {
    let messages = 0;
    let errors = 0;
    let framer = new StreamFramer(
      () => messages++,
      () => {},
      () => errors++,
    );
    let chunks = 0;
    for (const mu of mutations(SEED + 1, 3000)) {
      const data = mu.data;
      for (let pos = 0; pos < data.length; ) {
        const n = 1 + ((mu.index * 7919 + pos) % 1500);
        framer.push(data.subarray(pos, pos + n));
        pos += n;
        chunks++;
      }
      // A framing error kills the connection; the transport would open a new one.
      if (errors > 0 && framer.pending === 0) {
        framer = new StreamFramer(
          () => messages++,
          () => {},
          () => errors++,
        );
      }
    }
    expect(chunks).toBeGreaterThan(3000);
    expect(messages).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
  });

  it("everything the engine accepts is also understood by drachtio-srf's parser (the app side)", () => {
    const inputs: Array<[string, Buffer]> = tortureNames().map((n) => [n, tortureMessage(n)]);
    for (const mu of mutations(SEED, COUNT)) inputs.push([`#${mu.index} [${mu.ops.join(",")}]`, mu.data]);
    const problems: string[] = [];
    let checked = 0;
    for (const [label, data] of inputs) {
      const r = parseMessage(data);
      if (!r.ok) continue;
      checked++;
      try {
        const srf = new SrfSipMessage(serializeMessage(r.message).toString("utf8"));
        for (const h of ["via", "from", "to", "cseq", "call-id", "contact", "route", "record-route"]) {
          if (srf.has(h)) srf.getParsedHeader(h);
        }
      } catch (err) {
        problems.push(`${label}: ${String(err).slice(0, 100)}`);
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect(problems.slice(0, 10)).toEqual([]);
  });
});
