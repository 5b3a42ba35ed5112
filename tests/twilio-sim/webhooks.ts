/**
 * Webhooks the simulator sends, signed as Twilio signs them: a form POST (or a
 * GET with the parameters in the query) with X-Twilio-Signature computed by the
 * edge's own signature module over the exact URL and the parameters. Used for
 * message status callbacks and inbound SMS here, and by the call driver for
 * voice webhooks. Every attempt lands in `state.webhooks`.
 */
import { randomUUID } from "node:crypto";
import { twilioSignature } from "../../edge/src/twilio/signature.ts";
import type { SimState } from "./state.ts";

export interface WebhookResult {
  status: number;
  body: string;
  contentType: string | null;
}

/**
 * Posts `params` to `url` signed with `authToken`; throws when the server cannot
 * be reached or takes longer than `timeoutMs` (Twilio gives up after 15 s).
 */
export async function postSignedWebhook(
  url: string,
  params: Record<string, string>,
  authToken: string,
  options: {
    method?: "GET" | "POST";
    timeoutMs?: number;
    state?: SimState;
    /** I-Twilio-Idempotency-Token to send (a fresh one when absent). */
    idempotencyToken?: string;
  } = {},
): Promise<WebhookResult> {
  const method = options.method ?? "POST";
  let target = url;
  let body: string | undefined;
  let signed: Record<string, string> = params;
  if (method === "GET") {
    const u = new URL(url);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    target = u.toString();
    signed = {};
  } else {
    body = new URLSearchParams(params).toString();
  }
  const signature = await twilioSignature(authToken, target, signed);
  const entry: SimState["webhooks"][number] = { at: new Date(), url, params, status: undefined };
  options.state?.log(options.state.webhooks, entry);
  try {
    const res = await fetch(target, {
      method,
      headers: {
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        // Twilio sends one per delivery attempt; a retried webhook keeps it.
        "I-Twilio-Idempotency-Token": options.idempotencyToken ?? randomUUID(),
        Accept: "*/*",
        ...(body === undefined ? {} : { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8" }),
      },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    entry.status = res.status;
    entry.body = text;
    return { status: res.status, body: text, contentType: res.headers.get("content-type") };
  } catch (err) {
    entry.error = err instanceof Error ? err.message : String(err);
    throw err;
  }
}
