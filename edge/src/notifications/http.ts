/**
 * The HTTP calls of the notification channels (Postmark, Gotify): JSON POST with
 * a timeout, and network failures turned into the outbox's retryable error, so
 * the runner backs off instead of treating a refused connection as a bug.
 */
import { RetryableJobError } from "../jobs/types.ts";
import { parseRetryAfter } from "../twilio/rest.ts";

/** POSTs `body` as JSON; throws RetryableJobError when the server cannot be reached or does not answer in time. */
export async function postJson(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
  service: string,
): Promise<Response> {
  try {
    return await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const name = (err as { name?: unknown } | undefined)?.name;
    if (name === "TimeoutError" || name === "AbortError")
      throw new RetryableJobError(`${service} did not answer within ${timeoutMs} ms`);
    const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
    throw new RetryableJobError(`${service} unreachable${typeof code === "string" ? ` (${code})` : ""}`);
  }
}

/** Retry-After of a response in milliseconds, when it has one. */
export function retryAfterMs(res: Response): number | undefined {
  return parseRetryAfter(res.headers.get("retry-after"));
}
