// The Node blob store on a real directory: atomic writes, checksums and limits
// refused without leaving files, ranges, and keys that cannot escape the root.

import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { FsBlobStore } from "./fs.ts";
import { BlobChecksumError, BlobLengthError, BlobTooLargeError, bytesStream } from "./store.ts";

let root: string;
let store: FsBlobStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "gosip-blobs-"));
  store = new FsBlobStore(root);
});
afterEach(() => rm(root, { recursive: true, force: true }));

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function read(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

it("stores a streamed body with its metadata and reads it whole or by range", async () => {
  const body = bytes(100_000);
  const meta = await store.put("recordings/a", bytesStream(body), {
    contentType: "audio/wav",
    sha256: sha(body),
  });
  expect(meta).toEqual({ contentType: "audio/wav", size: 100_000, sha256: sha(body) });
  expect(await store.head("recordings/a")).toEqual(meta);
  const whole = await store.get("recordings/a");
  expect(await read(whole?.body ?? bytesStream(new Uint8Array()))).toEqual(body);
  const part = await store.get("recordings/a", { offset: 10, length: 5 });
  expect(await read(part?.body ?? bytesStream(new Uint8Array()))).toEqual(body.slice(10, 15));
  await store.delete("recordings/a");
  expect(await store.head("recordings/a")).toBeNull();
  expect(await store.get("recordings/a")).toBeNull();
});

it("refuses a wrong checksum, a wrong length and an oversized body, leaving no file behind", async () => {
  const body = bytes(1000);
  await expect(
    store.put("x", body, { contentType: "audio/wav", sha256: sha(bytes(5)) }),
  ).rejects.toBeInstanceOf(BlobChecksumError);
  await expect(store.put("x", body, { contentType: "audio/wav", size: 999 })).rejects.toBeInstanceOf(
    BlobLengthError,
  );
  await expect(
    store.put("x", bytesStream(body), { contentType: "audio/wav", maxBytes: 500 }),
  ).rejects.toBeInstanceOf(BlobTooLargeError);
  expect(await readdir(root)).toEqual([]);
  // A failed replacement keeps the old blob intact.
  await store.put("x", body, { contentType: "audio/wav" });
  await expect(store.put("x", bytes(10), { contentType: "audio/wav", sha256: sha(body) })).rejects.toThrow();
  expect((await store.head("x"))?.sha256).toBe(sha(body));
  expect((await readdir(root)).sort()).toEqual(["x", "x.meta.json"]);
});

it("accepts only keys that stay inside the root", async () => {
  for (const key of ["../escape", "/abs", "a/../../b", "", "a//b", ".hidden"]) {
    await expect(store.put(key, bytes(1), { contentType: "audio/wav" }), key).rejects.toThrow(
      /invalid blob key/,
    );
  }
});
