/**
 * The blob store: where GoSIP keeps audio (call recordings, later voicemails and
 * MMS media). One interface, two implementations: files under GOSIP_DATA_DIR/blobs
 * on Node (fs.ts) and an R2 bucket on Workers (r2.ts). Every blob carries its
 * content type, size and SHA-256, checked while it is written: a body whose digest
 * is not the one announced is never stored.
 */

export interface BlobMeta {
  contentType: string;
  size: number;
  /** Lowercase hex SHA-256 of the whole body. */
  sha256: string;
}

export interface BlobPutOptions {
  contentType: string;
  /** The digest the writer announced; a mismatch throws BlobChecksumError and stores nothing. */
  sha256?: string;
  /** Exact length when known (Content-Length); a body of another length is refused. */
  size?: number;
  /** Largest body accepted; a longer one throws BlobTooLargeError and stores nothing. */
  maxBytes?: number;
}

/** A byte range: `offset` and `length` (both within the blob). */
export interface BlobRange {
  offset: number;
  length: number;
}

export interface BlobObject {
  meta: BlobMeta;
  /** The whole body, or only `range` when one was asked for. */
  body: ReadableStream<Uint8Array>;
  range?: BlobRange;
}

export interface BlobStore {
  /** Writes the blob atomically (readers see the old one or the new one, never half). */
  put(key: string, body: ReadableStream<Uint8Array> | Uint8Array, options: BlobPutOptions): Promise<BlobMeta>;
  /** The blob (or a range of it), or null when there is none. */
  get(key: string, range?: BlobRange): Promise<BlobObject | null>;
  head(key: string): Promise<BlobMeta | null>;
  /** Removes the blob; no error when there was none. */
  delete(key: string): Promise<void>;
}

export class BlobChecksumError extends Error {
  override name = "BlobChecksumError";
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super("blob body does not match its SHA-256");
  }
}

export class BlobTooLargeError extends Error {
  override name = "BlobTooLargeError";
  constructor(readonly maxBytes: number) {
    super(`blob larger than ${maxBytes} bytes`);
  }
}

export class BlobLengthError extends Error {
  override name = "BlobLengthError";
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`blob body is ${actual} bytes, ${expected} announced`);
  }
}

// Keys are paths made of safe segments ("recordings/abc.wav"): never "..", never absolute.
const KEY_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,7}$/;

/** Throws unless `key` is a safe blob key (so the file store can use it as a relative path). */
export function assertBlobKey(key: string): void {
  if (!KEY_PATTERN.test(key) || key.split("/").some((s) => s === "." || s === "..")) {
    throw new TypeError("invalid blob key");
  }
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A stream of one chunk, for callers that hold the bytes already. */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}
