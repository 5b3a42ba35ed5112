/**
 * A small Twilio REST client over fetch (the full SDK is over 500 KiB gzipped on
 * Workers). It knows Twilio's conventions: Basic auth with the account SID and
 * auth token, form-encoded bodies, JSON answers, the error shape
 * { code, message, more_info, status }, Retry-After on 429, and one host per
 * product (api, lookups, intelligence, serverless, …). TWILIO_API_BASE sends
 * every product to one other base URL (the simulator serves them all; their
 * paths do not overlap).
 *
 * Failures are typed so the outbox can decide: TwilioApiError (Twilio answered
 * with an error status) and TwilioNetworkError, whose `ambiguous` flag says the
 * request may have reached Twilio (a timeout after sending): such a send must be
 * checked against Twilio before it is retried.
 */
import type { TwilioCredentials } from "./credentials.ts";

export type TwilioProduct = "api" | "lookups" | "intelligence" | "serverless" | "messaging";

/** Default time a REST call may take before it is abandoned (and counted ambiguous). */
export const TWILIO_TIMEOUT_MS = 10_000;

export class TwilioApiError extends Error {
  override name = "TwilioApiError";
  constructor(
    readonly status: number,
    /** Twilio's error code (e.g. 20003 auth, 20404 not found, 21211 invalid To), when given. */
    readonly code: number | undefined,
    message: string,
    readonly moreInfo: string | undefined,
    /** From Retry-After on a 429/503, in milliseconds. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
  /** Worth retrying later: throttled or a server-side failure. */
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

export class TwilioNetworkError extends Error {
  override name = "TwilioNetworkError";
  constructor(
    message: string,
    /** True when the request may have been received (timeout or reset after sending). */
    readonly ambiguous: boolean,
  ) {
    super(message);
  }
}

export interface TwilioRequestOptions {
  /** Form fields; arrays repeat the field (e.g. MediaUrl). */
  form?: Record<string, string | number | boolean | readonly string[] | undefined>;
  query?: Record<string, string | number | undefined>;
  timeoutMs?: number;
}

type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === "string" ? cause.code : undefined;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class TwilioRest {
  private readonly fetchFn: FetchFn;

  constructor(
    readonly credentials: Pick<TwilioCredentials, "accountSid" | "authToken" | "apiBase">,
    options: { fetch?: FetchFn } = {},
  ) {
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Base URL of a product: TWILIO_API_BASE when set, else https://<product>.twilio.com. */
  baseUrl(product: TwilioProduct): string {
    return this.credentials.apiBase ?? `https://${product}.twilio.com`;
  }

  /** Path under the account on the core API: `/2010-04-01/Accounts/AC…{path}`. */
  accountPath(path: string): string {
    return `/2010-04-01/Accounts/${this.credentials.accountSid}${path}`;
  }

  /** Whether `url` points at a Twilio API host this client may send credentials to. */
  isTwilioUrl(url: string): boolean {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    if (this.credentials.apiBase) return parsed.origin === new URL(this.credentials.apiBase).origin;
    return parsed.protocol === "https:" && /^[a-z0-9-]+\.twilio\.com$/.test(parsed.hostname);
  }

  private authorization(): string {
    return `Basic ${btoa(`${this.credentials.accountSid}:${this.credentials.authToken}`)}`;
  }

  /** A JSON request; throws TwilioApiError or TwilioNetworkError. 204 answers undefined. */
  async request<T>(
    method: "GET" | "POST" | "DELETE",
    product: TwilioProduct,
    path: string,
    options: TwilioRequestOptions = {},
  ): Promise<T> {
    const url = new URL(path, `${this.baseUrl(product)}/`);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    let body: string | undefined;
    const headers: Record<string, string> = {
      Authorization: this.authorization(),
      Accept: "application/json",
    };
    if (options.form) {
      const form = new URLSearchParams();
      for (const [k, v] of Object.entries(options.form)) {
        if (v === undefined) continue;
        if (Array.isArray(v)) for (const item of v) form.append(k, item);
        else form.append(k, String(v));
      }
      body = form.toString();
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    const res = await this.send(url.toString(), { method, headers, body }, options.timeoutMs);
    if (res.status === 204) return undefined as T;
    if (!res.ok) throw await apiError(res);
    try {
      return (await res.json()) as T;
    } catch {
      throw new TwilioApiError(
        res.status,
        undefined,
        "Twilio answered with a body that is not JSON",
        undefined,
        undefined,
      );
    }
  }

  /**
   * GET of a Twilio media URL (recording audio, MMS media) with the account's
   * credentials; refuses URLs that are not Twilio's (no credentials to strangers).
   * Redirects are followed; fetch drops the Authorization header across origins.
   */
  async download(url: string, timeoutMs = 30_000): Promise<Response> {
    if (!this.isTwilioUrl(url))
      throw new TwilioApiError(400, undefined, "not a Twilio media URL", undefined, undefined);
    const res = await this.send(
      url,
      { method: "GET", headers: { Authorization: this.authorization() } },
      timeoutMs,
    );
    if (!res.ok) throw await apiError(res);
    return res;
  }

  private async send(url: string, init: RequestInit, timeoutMs = TWILIO_TIMEOUT_MS): Promise<Response> {
    try {
      return await this.fetchFn(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
    } catch (err) {
      const name = (err as { name?: unknown } | undefined)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw new TwilioNetworkError(`Twilio did not answer within ${timeoutMs} ms`, init.method !== "GET");
      }
      const code = causeCode(err);
      const notSent = code !== undefined && NOT_SENT_CODES.has(code);
      throw new TwilioNetworkError(
        `Twilio unreachable${code ? ` (${code})` : ""}`,
        !notSent && init.method !== "GET",
      );
    }
  }
}

async function apiError(res: Response): Promise<TwilioApiError> {
  let code: number | undefined;
  let message = `Twilio answered ${res.status}`;
  let moreInfo: string | undefined;
  try {
    const body = (await res.json()) as { code?: unknown; message?: unknown; more_info?: unknown };
    if (typeof body.code === "number") code = body.code;
    if (typeof body.message === "string") message = body.message;
    if (typeof body.more_info === "string") moreInfo = body.more_info;
  } catch {
    // not JSON: keep the status line
  }
  return new TwilioApiError(
    res.status,
    code,
    message,
    moreInfo,
    parseRetryAfter(res.headers.get("retry-after")),
  );
}
