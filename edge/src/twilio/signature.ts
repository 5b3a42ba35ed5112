/**
 * Twilio's webhook signature (X-Twilio-Signature): base64 of HMAC-SHA1 keyed with
 * the auth token over the full public URL followed by every POST parameter's name
 * and value, sorted by name. Computed with WebCrypto, so the same code runs on Node
 * and Workers. Also used by the Twilio simulator to sign the webhooks it sends.
 */

const encoder = new TextEncoder();

/** Form parameters as Twilio sends them; a name can repeat (rare; each value is signed). */
export type TwilioParams = Record<string, string | readonly string[]>;

/** The string Twilio signs: the URL, then name+value of each parameter in name order. */
export function signedPayload(url: string, params: TwilioParams): string {
  let out = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    const values = typeof value === "string" ? [value] : [...(value ?? [])];
    for (const v of values) out += name + v;
  }
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** X-Twilio-Signature for a request to `url` with `params`, keyed by `authToken`. */
export async function twilioSignature(
  authToken: string,
  url: string,
  params: TwilioParams = {},
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(authToken),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(signedPayload(url, params)));
  return toBase64(new Uint8Array(mac));
}

/** Equality of two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Whether `signature` is Twilio's signature of (`url`, `params`); false for anything missing. */
export async function verifyTwilioSignature(
  authToken: string,
  url: string,
  params: TwilioParams,
  signature: string | undefined,
): Promise<boolean> {
  if (!signature || !authToken) return false;
  const expected = await twilioSignature(authToken, url, params);
  return constantTimeEqual(expected, signature);
}

/** Lowercase hex SHA-256 of a body (the `bodySHA256` query parameter of JSON webhooks). */
export async function sha256Hex(body: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(body));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
