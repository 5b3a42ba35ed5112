/**
 * The blob store on Workers: an R2 bucket (binding BLOBS). R2 writes an object
 * atomically and checks the SHA-256 it is given against what it received (a
 * mismatch stores nothing), so a put streams the body straight through with its
 * announced digest and exact length. Typed against the few R2 calls used here
 * (structurally), so this file needs no Workers types and runs in any test.
 */
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
} from "./store.ts";

/** The subset of an R2 object's metadata this store reads. */
export interface R2ObjectLike {
  size: number;
  httpMetadata?: { contentType?: string };
  customMetadata?: Record<string, string>;
}

/** The subset of R2Bucket this store calls. */
export interface R2BucketLike {
  put(
    key: string,
    value: ReadableStream<Uint8Array> | Uint8Array,
    options: {
      httpMetadata: { contentType: string };
      customMetadata: Record<string, string>;
      sha256?: string;
    },
  ): Promise<R2ObjectLike | null>;
  get(
    key: string,
    options?: { range?: { offset: number; length: number } },
  ): Promise<(R2ObjectLike & { body: ReadableStream<Uint8Array> }) | null>;
  head(key: string): Promise<R2ObjectLike | null>;
  delete(key: string): Promise<void>;
}

/** Workers' stream that enforces an exact byte count (and lets R2 know the length up front). */
type FixedLengthStreamCtor = new (length: number) => TransformStream<Uint8Array, Uint8Array>;

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function metaOf(obj: R2ObjectLike): BlobMeta | null {
  const sha256 = obj.customMetadata?.sha256;
  if (!sha256) return null;
  return { contentType: obj.httpMetadata?.contentType ?? "application/octet-stream", size: obj.size, sha256 };
}

export class R2BlobStore implements BlobStore {
  constructor(private readonly bucket: R2BucketLike) {}

  async put(
    key: string,
    body: ReadableStream<Uint8Array> | Uint8Array,
    options: BlobPutOptions,
  ): Promise<BlobMeta> {
    assertBlobKey(key);
    let value: ReadableStream<Uint8Array> | Uint8Array;
    let sha256: string;
    let size: number;
    if (body instanceof Uint8Array) {
      size = body.byteLength;
      if (options.maxBytes !== undefined && size > options.maxBytes)
        throw new BlobTooLargeError(options.maxBytes);
      if (options.size !== undefined && options.size !== size) throw new BlobLengthError(options.size, size);
      sha256 = hex(await crypto.subtle.digest("SHA-256", body));
      if (options.sha256 !== undefined && options.sha256 !== sha256) {
        throw new BlobChecksumError(options.sha256, sha256);
      }
      value = body;
    } else {
      // A streamed body goes to R2 unbuffered: R2 needs its length and verifies its digest.
      if (options.size === undefined || options.sha256 === undefined) {
        throw new TypeError("a streamed blob needs its size and SHA-256");
      }
      size = options.size;
      sha256 = options.sha256;
      if (options.maxBytes !== undefined && size > options.maxBytes)
        throw new BlobTooLargeError(options.maxBytes);
      const Fixed = (globalThis as { FixedLengthStream?: FixedLengthStreamCtor }).FixedLengthStream;
      value = Fixed ? body.pipeThrough(new Fixed(size)) : body;
    }
    try {
      await this.bucket.put(key, value, {
        httpMetadata: { contentType: options.contentType },
        customMetadata: { sha256 },
        sha256,
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/checksum|digest/i.test(message)) throw new BlobChecksumError(sha256, "unknown");
      if (/length|bytes/i.test(message)) throw new BlobLengthError(size, -1);
      throw err;
    }
    return { contentType: options.contentType, size, sha256 };
  }

  async head(key: string): Promise<BlobMeta | null> {
    assertBlobKey(key);
    const obj = await this.bucket.head(key);
    return obj ? metaOf(obj) : null;
  }

  async get(key: string, range?: BlobRange): Promise<BlobObject | null> {
    assertBlobKey(key);
    const obj = await this.bucket.get(key, range ? { range } : undefined);
    if (!obj) return null;
    const meta = metaOf(obj);
    if (!meta) {
      await obj.body.cancel();
      return null;
    }
    return range ? { meta, body: obj.body, range } : { meta, body: obj.body };
  }

  async delete(key: string): Promise<void> {
    assertBlobKey(key);
    await this.bucket.delete(key);
  }
}
