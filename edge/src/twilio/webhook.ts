/**
 * The gate in front of every Twilio webhook (/api/webhooks/twilio/*): the request
 * must carry a valid X-Twilio-Signature computed over the public URL Twilio called
 * (PUBLIC_URL + path + query, never the address this server sees behind a proxy)
 * and every POST parameter. Anything else, including an edge with no Twilio
 * credentials yet, answers 403 before a handler runs: fail closed.
 *
 * Handlers read the verified parameters with `twilioParams(c)`.
 */
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { errorBody } from "../http/errors.ts";
import { twilioCredentials } from "./credentials.ts";
import { constantTimeEqual, sha256Hex, type TwilioParams, verifyTwilioSignature } from "./signature.ts";

export const TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature";

/** The URL Twilio signed for this request: the configured public base, then path and query as received. */
export function publicUrlOf(c: Context<AppEnv>): string {
  const url = new URL(c.req.url);
  return `${c.get("deps").config.publicUrl}${url.pathname}${url.search}`;
}

/** Parses a form body into Twilio parameters; a repeated name keeps all its values in order. */
export function parseForm(body: string): TwilioParams {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of new URLSearchParams(body)) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (typeof prev === "string") out[name] = [prev, value];
    else prev.push(value);
  }
  return out;
}

/** Single-valued view of the parameters (the first value of a repeated name). */
export type WebhookParams = Readonly<Record<string, string>>;

function singleValued(params: TwilioParams): WebhookParams {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) out[k] = typeof v === "string" ? v : (v[0] ?? "");
  return out;
}

const forbidden = (c: Context<AppEnv>) => c.json(errorBody("forbidden", "Invalid Twilio signature"), 403);

/** Verifies the signature; on success the parameters are available through `twilioParams(c)`. */
export const verifyTwilioWebhook: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  const deps = c.get("deps");
  const signature = c.req.header(TWILIO_SIGNATURE_HEADER);
  let ok = false;
  let params: TwilioParams = {};
  try {
    const creds = await twilioCredentials(deps);
    if (!creds) {
      deps.logger.warn({ path: c.req.path }, "twilio webhook refused: no Twilio credentials configured");
      return forbidden(c);
    }
    const url = publicUrlOf(c);
    // Bytes then UTF-8 (what Twilio sends): workerd warns when a form body is read as text().
    const body = new TextDecoder().decode(await c.req.arrayBuffer());
    const type = c.req.header("content-type") ?? "";
    if (type.startsWith("application/json")) {
      // JSON webhooks sign the URL alone; the URL's bodySHA256 parameter binds the body.
      const claimed = new URL(url).searchParams.get("bodySHA256") ?? "";
      ok =
        constantTimeEqual(await sha256Hex(body), claimed) &&
        (await verifyTwilioSignature(creds.authToken, url, {}, signature));
    } else {
      params = parseForm(body);
      ok = await verifyTwilioSignature(creds.authToken, url, params, signature);
    }
  } catch (err) {
    // Fail closed: an error while checking is a refusal, never a pass.
    deps.logger.error(
      { err: err instanceof Error ? err.message : String(err), path: c.req.path },
      "twilio signature check failed",
    );
    return forbidden(c);
  }
  if (!ok) {
    deps.logger.warn(
      { path: c.req.path, signed: signature !== undefined },
      "twilio webhook refused: bad signature",
    );
    return forbidden(c);
  }
  c.set("twilioParams", singleValued(params));
  await next();
});

/** The verified webhook parameters (empty outside a verified webhook). */
export function twilioParams(c: Context<AppEnv>): WebhookParams {
  return c.get("twilioParams") ?? {};
}
