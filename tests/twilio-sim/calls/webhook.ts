/**
 * How the simulator calls an application's URL the way Twilio does: a form POST (or a GET with the
 * parameters in the query), `X-Twilio-Signature` over the exact URL it requests (plus the sorted POST
 * parameters), Twilio's User-Agent and headers, and a deadline (Twilio gives a voice URL 15 s).
 * Every request and its outcome goes into the caller's transcript.
 */
import { twilioSignature } from "../../../edge/src/twilio/signature.ts";
import type { WebhookLogEntry } from "../state.ts";
import type { HttpMethod } from "./twiml.ts";

/** Twilio's default deadline for a voice webhook. */
export const TWILIO_WEBHOOK_TIMEOUT_MS = 15_000;

export interface WebhookRequest {
  url: string;
  method: HttpMethod;
  params: Record<string, string>;
  timeoutMs?: number;
}

export interface WebhookOutcome {
  url: string;
  method: HttpMethod;
  params: Record<string, string>;
  /** HTTP status, or undefined when no answer came (connection refused, timeout). */
  status: number | undefined;
  contentType: string | undefined;
  body: string;
  /** Why it did not succeed: "timeout", a network error, or "HTTP 500". */
  error: string | undefined;
  ms: number;
}

/** Whether Twilio would take this answer as a document to execute (2xx with a body it can read). */
export function succeeded(o: WebhookOutcome): boolean {
  return o.error === undefined && o.status !== undefined && o.status >= 200 && o.status < 300;
}

/**
 * Calls `req.url` signed with `authToken`; never throws (the outcome says what happened). When `log` is
 * given (the state's `webhooks`), the attempt is appended to it like every webhook the simulator sends.
 */
export async function callWebhook(
  authToken: string,
  req: WebhookRequest,
  log?: WebhookLogEntry[],
): Promise<WebhookOutcome> {
  const outcome = await send(authToken, req);
  log?.push({
    at: new Date(),
    url: outcome.url,
    params: outcome.params,
    status: outcome.status,
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    body: outcome.body,
  });
  return outcome;
}

async function send(authToken: string, req: WebhookRequest): Promise<WebhookOutcome> {
  const started = performance.now();
  let target = req.url;
  let body: string | undefined;
  if (req.method === "GET") {
    const u = new URL(req.url);
    for (const [k, v] of Object.entries(req.params)) u.searchParams.append(k, v);
    target = u.toString();
  } else {
    body = new URLSearchParams(req.params).toString();
  }
  const signature = await twilioSignature(authToken, target, req.method === "GET" ? {} : req.params);
  const base = { url: req.url, method: req.method, params: req.params };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), req.timeoutMs ?? TWILIO_WEBHOOK_TIMEOUT_MS);
  try {
    const res = await fetch(target, {
      method: req.method,
      headers: {
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        Accept: "*/*",
        "Cache-Control": "max-age=259200",
        ...(body !== undefined ? { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" } : {}),
      },
      ...(body !== undefined ? { body } : {}),
      signal: controller.signal,
      redirect: "follow",
    });
    const text = await res.text();
    return {
      ...base,
      status: res.status,
      contentType: res.headers.get("content-type") ?? undefined,
      body: text,
      error: res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`,
      ms: performance.now() - started,
    };
  } catch (err) {
    return {
      ...base,
      status: undefined,
      contentType: undefined,
      body: "",
      error: controller.signal.aborted ? "timeout" : String(err),
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}
