// Hands a finished recording to the edge's blob storage: PUT /api/relay/recordings/{recordingId} with the
// relay token, the WAV as the body and its SHA-256 in X-Content-SHA256 (the edge checks it before storing).
// An `Uploader` interface so tests (and another transport later) can stand in; `retryDelay` is the backoff the
// recorder waits between attempts.
import { readFile } from "node:fs/promises";

export interface RecordingUpload {
  recordingId: string;
  /** Absolute path of the local file. */
  path: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

/** Thrown by an uploader; `retryable` says whether trying again later can help. */
export class UploadError extends Error {
  override readonly name = "UploadError";
  constructor(
    message: string,
    readonly retryable: boolean,
    /** The server asked to wait this long (Retry-After), ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface Uploader {
  /** Resolves once the edge stored the bytes; rejects with UploadError (or any error: retried). */
  upload(recording: RecordingUpload): Promise<void>;
}

export interface HttpUploaderOptions {
  /** The edge's base URL (EDGE_URL; ws:// and wss:// are taken as http:// and https://). */
  edgeUrl: string;
  relayToken: string;
  /** Per attempt (default 120 s: a long recording over a slow uplink). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Uploads over HTTP(S) to the edge. */
export class HttpUploader implements Uploader {
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(opts: HttpUploaderOptions) {
    this.#base = opts.edgeUrl.replace(/^ws(s?):\/\//i, "http$1://").replace(/\/+$/, "");
    this.#token = opts.relayToken;
    this.#timeoutMs = opts.timeoutMs ?? 120_000;
    this.#fetch = opts.fetch ?? fetch;
  }

  async upload(r: RecordingUpload): Promise<void> {
    const body = await readFile(r.path);
    let res: Response;
    try {
      res = await this.#fetch(`${this.#base}/api/relay/recordings/${encodeURIComponent(r.recordingId)}`, {
        method: "PUT",
        headers: {
          Authorization: `Bearer ${this.#token}`,
          "Content-Type": r.contentType,
          "X-Content-SHA256": r.sha256,
        },
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      // Network down, edge unreachable, timeout: all worth another try.
      throw new UploadError(`upload failed: ${err instanceof Error ? err.message : String(err)}`, true);
    }
    // The body is not needed; reading it frees the connection for keep-alive.
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return;
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new UploadError(
      `edge answered ${res.status} to a recording upload`,
      retryable,
      retryAfterMs(res.headers.get("retry-after")),
    );
  }
}

export interface BackoffOptions {
  /** First delay (default 1 s). */
  baseMs?: number;
  /** Longest delay (default 5 min: a recording waits as long as the edge is down, without hammering it). */
  capMs?: number;
}

/** Exponential backoff with full jitter in [delay/2, delay], for attempt 1, 2, … (1 = after the first failure). */
export function retryDelay(attempt: number, opts: BackoffOptions = {}, random = Math.random): number {
  const base = opts.baseMs ?? 1000;
  const cap = opts.capMs ?? 300_000;
  const delay = Math.min(cap, base * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(delay / 2 + (random() * delay) / 2);
}
