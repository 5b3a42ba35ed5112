// Units of the recording feature: rtpengine's DTMF log, the feature-code detector, upload backoff, the HTTP
// uploader's error classes against a local server, and when the storage monitor reports.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryEventSink } from "../testing/fakes.ts";
import { FeatureCodes, parseDtmfLog } from "./dtmf.ts";
import { StorageMonitor } from "./storage.ts";
import { HttpUploader, retryDelay, UploadError } from "./uploader.ts";

const log = pino({ level: "silent" });

describe("rtpengine DTMF log", () => {
  it("turns rtpengine's JSON into digits (10 = *, 11 = #), ignores anything else", () => {
    const line =
      '{"callid":"c1","source_tag":"fa","tags":["tb","fa"],"type":"DTMF","timestamp":1796165521,"source_ip":"127.0.0.1","event":10,"duration":100,"volume":10}';
    expect(parseDtmfLog(line, 5)).toEqual({ callId: "c1", sourceTag: "fa", digit: "*", at: 5 });
    expect(parseDtmfLog(line.replace('"event":10', '"event":11'), 5)?.digit).toBe("#");
    expect(parseDtmfLog(line.replace('"event":10', '"event":3'), 5)?.digit).toBe("3");
    expect(parseDtmfLog(line.replace('"event":10', '"event":16'), 5)).toBeUndefined();
    expect(parseDtmfLog("not json", 5)).toBeUndefined();
    expect(parseDtmfLog('{"callid":"c1"}', 5)).toBeUndefined();
    expect(parseDtmfLog(line.replace('"type":"DTMF"', '"type":"other"'), 5)).toBeUndefined();
  });

  it("fires the feature code per party within the window, once per keying", () => {
    const fired: string[] = [];
    const codes = new FeatureCodes({ code: "*1", windowMs: 3000 }, (callId, tag) =>
      fired.push(`${callId}/${tag}`),
    );
    const d = (digit: string, at: number, tag = "a", callId = "c") =>
      codes.digit({ callId, sourceTag: tag, digit, at });
    d("*", 0);
    d("1", 500);
    expect(fired).toEqual(["c/a"]);
    d("1", 600); // "*11": once
    expect(fired).toHaveLength(1);
    d("*", 1000);
    d("*", 1100, "b"); // the other party's digits do not mix with a's
    d("1", 1200);
    expect(fired).toEqual(["c/a", "c/a"]);
    d("*", 2000, "b");
    d("1", 6000, "b"); // too slow
    expect(fired).toHaveLength(2);
    d("*", 7000, "b", "other");
    codes.forget("other");
    d("1", 7100, "b", "other");
    expect(fired).toHaveLength(2);
    expect(() => new FeatureCodes({ code: "x1" }, () => undefined)).toThrow();
  });
});

describe("upload backoff", () => {
  it("doubles from the base up to the cap, jittered into [delay/2, delay]", () => {
    const lo = () => 0;
    const hi = () => 0.999999;
    expect(retryDelay(1, { baseMs: 1000, capMs: 60_000 }, lo)).toBe(500);
    expect(retryDelay(1, { baseMs: 1000, capMs: 60_000 }, hi)).toBe(1000);
    expect(retryDelay(4, { baseMs: 1000, capMs: 60_000 }, hi)).toBe(8000);
    expect(retryDelay(30, { baseMs: 1000, capMs: 60_000 }, hi)).toBe(60_000);
    expect(retryDelay(1000, {}, hi)).toBe(300_000);
  });
});

describe("HttpUploader", () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  async function serve(
    status: number,
    headers: Record<string, string> = {},
  ): Promise<{ url: string; seen: string[] }> {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers["x-content-sha256"]} ${req.headers.authorization}`);
      req.resume();
      req.on("end", () => res.writeHead(status, headers).end());
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    closers.push(() => new Promise((r) => server.close(() => r())));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
  }

  async function file(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "gosip-upload-"));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, "r.wav");
    await writeFile(path, "RIFF....");
    return path;
  }

  const upload = { recordingId: "rec 1", contentType: "audio/wav", sizeBytes: 8, sha256: "ab".repeat(32) };

  it("PUTs to /api/relay/recordings/{id} with the token and checksum (ws:// edge URL taken as http://)", async () => {
    const edge = await serve(201);
    const u = new HttpUploader({ edgeUrl: `${edge.url.replace("http", "ws")}/`, relayToken: "t0k" });
    await u.upload({ ...upload, path: await file() });
    expect(edge.seen).toEqual([`PUT /api/relay/recordings/rec%201 ${"ab".repeat(32)} Bearer t0k`]);
  });

  it("5xx, 429 (with Retry-After) and an unreachable edge are retryable; other 4xx are not", async () => {
    const path = await file();
    const fails = async (url: string): Promise<UploadError> => {
      const err = await new HttpUploader({ edgeUrl: url, relayToken: "t" })
        .upload({ ...upload, path })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UploadError);
      return err as UploadError;
    };
    expect((await fails((await serve(503)).url)).retryable).toBe(true);
    const limited = await fails((await serve(429, { "Retry-After": "7" })).url);
    expect(limited.retryable).toBe(true);
    expect(limited.retryAfterMs).toBe(7000);
    expect((await fails((await serve(400)).url)).retryable).toBe(false);
    expect((await fails((await serve(401)).url)).retryable).toBe(false);
    const down = await serve(200);
    const url = down.url;
    await closers.pop()?.();
    expect((await fails(url)).retryable).toBe(true);
  });
});

describe("StorageMonitor", () => {
  it("reports on request, when low flips either way, and when low with reportIfLow", async () => {
    const events = new MemoryEventSink();
    let free = 500;
    const m = new StorageMonitor({
      dir: "/unused",
      probe: async () => ({ freeBytes: free, totalBytes: 1000 }),
      events,
      minFreeBytes: () => 100,
      log,
    });
    await m.check();
    expect(events.of("storage.status")).toEqual([
      { kind: "storage.status", freeBytes: 500, totalBytes: 1000, low: false },
    ]);
    await m.check();
    expect(events.events).toHaveLength(1); // nothing changed, nothing asked
    free = 50;
    await m.check();
    expect(events.of("storage.status").at(-1)).toMatchObject({ low: true, freeBytes: 50 });
    await m.check({ reportIfLow: true });
    expect(events.events).toHaveLength(3);
    free = 900;
    await m.check({ reportIfLow: true });
    expect(events.of("storage.status").at(-1)).toMatchObject({ low: false });
    await m.check({ report: true });
    expect(events.events).toHaveLength(5);
    expect(m.low).toBe(false);
  });

  it("a directory that cannot be measured reports nothing and refuses nothing", async () => {
    const events = new MemoryEventSink();
    const m = new StorageMonitor({
      dir: "/unused",
      probe: () => Promise.reject(new Error("EIO")),
      events,
      minFreeBytes: () => 100,
      log,
    });
    expect(await m.check({ report: true })).toBeUndefined();
    expect(events.events).toEqual([]);
  });
});
