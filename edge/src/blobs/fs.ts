/**
 * The blob store on Node: one file per blob under a root directory
 * (GOSIP_DATA_DIR/blobs), its metadata beside it in `<file>.meta.json`. A put
 * streams to a temporary file while hashing and counting, then renames it into
 * place (atomic on one filesystem), so a reader never sees half a recording and a
 * failed or refused upload leaves nothing behind.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import {
  assertBlobKey,
  BlobChecksumError,
  BlobLengthError,
  type BlobMeta,
  type BlobObject,
  type BlobPutOptions,
  type BlobRange,
  type BlobStore,
  BlobTooLargeError,
  bytesStream,
} from "./store.ts";

export class FsBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  private path(key: string): string {
    assertBlobKey(key);
    return join(this.root, ...key.split("/"));
  }

  async put(
    key: string,
    body: ReadableStream<Uint8Array> | Uint8Array,
    options: BlobPutOptions,
  ): Promise<BlobMeta> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomUUID()}`;
    const hash = createHash("sha256");
    let size = 0;
    const file = await open(tmp, "wx");
    try {
      const reader = (body instanceof Uint8Array ? bytesStream(body) : body).getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (options.maxBytes !== undefined && size > options.maxBytes) {
            throw new BlobTooLargeError(options.maxBytes);
          }
          hash.update(value);
          await file.write(value);
        }
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        throw err;
      } finally {
        reader.releaseLock();
      }
      await file.sync();
    } catch (err) {
      await file.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await file.close();
    const sha256 = hash.digest("hex");
    try {
      if (options.size !== undefined && size !== options.size) throw new BlobLengthError(options.size, size);
      if (options.sha256 !== undefined && options.sha256 !== sha256) {
        throw new BlobChecksumError(options.sha256, sha256);
      }
      const meta: BlobMeta = { contentType: options.contentType, size, sha256 };
      const metaTmp = `${target}.meta.json.tmp-${randomUUID()}`;
      const metaFile = await open(metaTmp, "wx");
      try {
        await metaFile.writeFile(JSON.stringify(meta));
        await metaFile.sync();
      } finally {
        await metaFile.close();
      }
      // Body first, then its metadata: head() checks the size, so a crash in between reads as no blob.
      await rename(tmp, target);
      await rename(metaTmp, `${target}.meta.json`);
      return meta;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async head(key: string): Promise<BlobMeta | null> {
    const target = this.path(key);
    let meta: BlobMeta;
    try {
      meta = JSON.parse(await readFile(`${target}.meta.json`, "utf8")) as BlobMeta;
      const info = await stat(target);
      if (info.size !== meta.size) return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    return meta;
  }

  async get(key: string, range?: BlobRange): Promise<BlobObject | null> {
    const meta = await this.head(key);
    if (!meta) return null;
    const target = this.path(key);
    const stream =
      range === undefined
        ? createReadStream(target)
        : createReadStream(target, { start: range.offset, end: range.offset + range.length - 1 });
    const body = Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>;
    return range === undefined ? { meta, body } : { meta, body, range };
  }

  async delete(key: string): Promise<void> {
    const target = this.path(key);
    await rm(`${target}.meta.json`, { force: true });
    await rm(target, { force: true });
  }
}
