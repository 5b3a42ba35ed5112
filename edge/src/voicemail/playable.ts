/**
 * Audio that Twilio must fetch (a DID's uploaded greeting, a rule's "play message")
 * lives in GoSIP's private blob store. Twilio cannot sign in, so such audio is
 * served at a public URL that carries an expiring HMAC-SHA256 signature over the
 * blob key: only URLs the edge minted open, and only for a while.
 *
 * The signing key is derived from the Twilio auth token (HMAC of a fixed label), so
 * no new secret has to be configured and rotating the token invalidates every URL.
 */
import type { AudioSource } from "@gosip/drizzle";
import type { EdgeDeps } from "../platform/types.ts";
import { twilioCredentials } from "../twilio/credentials.ts";
import { constantTimeEqual } from "../twilio/signature.ts";
import { el, type TwimlElement } from "../twiml/builder.ts";

/** Path of the public route (voicemail/routes.ts) that serves signed audio. */
export const PLAYABLE_AUDIO_PATH = "/api/voicemails/prompt-audio";

const HOUR_MS = 3_600_000;

/**
 * Only prompt audio is ever made public: uploaded greetings and messages. A rule or a DID
 * naming any other blob (a voicemail, a call recording) gets no URL, so no private audio can
 * be published by pointing a prompt at it.
 */
const PROMPT_KEY_PREFIXES = ["greetings/", "prompts/"] as const;
export const isPromptKey = (blobKey: string): boolean =>
  PROMPT_KEY_PREFIXES.some((p) => blobKey.startsWith(p)) && !blobKey.includes("..");
const KEY_LABEL = "gosip playable audio url v1";
const encoder = new TextEncoder();

type SignDeps = Pick<EdgeDeps, "db" | "config" | "clock">;

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmacSha256(key: Uint8Array | string, data: string): Promise<ArrayBuffer> {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(data));
}

/** The URL-signing key, or null when no Twilio account is configured (then nothing is playable). */
async function signingKey(deps: SignDeps): Promise<Uint8Array | null> {
  const creds = await twilioCredentials(deps);
  if (!creds) return null;
  return new Uint8Array(await hmacSha256(creds.authToken, KEY_LABEL));
}

async function signatureOf(key: Uint8Array, blobKey: string, exp: number): Promise<string> {
  return hex(await hmacSha256(key, `${blobKey}\n${exp}`));
}

/**
 * A URL Twilio can fetch for an uploaded audio source, or null for text-to-speech
 * (nothing to fetch) and when no Twilio account is configured. The expiry is
 * rounded up to a whole hour, one to two hours ahead, so every call in the same
 * hour gets the same URL and Twilio's media cache can serve it.
 */
export async function playableAudioUrl(deps: SignDeps, source: AudioSource): Promise<string | null> {
  if (source.kind !== "audio" || !isPromptKey(source.blobKey)) return null;
  const key = await signingKey(deps);
  if (!key) return null;
  const exp = Math.ceil((deps.clock.now() + HOUR_MS) / HOUR_MS) * (HOUR_MS / 1000);
  const sig = await signatureOf(key, source.blobKey, exp);
  const query = new URLSearchParams({ key: source.blobKey, exp: String(exp), sig });
  return `${deps.config.publicUrl}${PLAYABLE_AUDIO_PATH}?${query.toString()}`;
}

/** Whether (key, exp, sig) came from {@link playableAudioUrl} and has not expired. */
export async function verifyPlayableAudio(
  deps: SignDeps,
  params: { key: string; exp: number; sig: string },
): Promise<boolean> {
  if (params.exp * 1000 < deps.clock.now() || !isPromptKey(params.key)) return false;
  const key = await signingKey(deps);
  if (!key) return false;
  return constantTimeEqual(await signatureOf(key, params.key, params.exp), params.sig);
}

/**
 * The TwiML verb that plays `source` to the caller: `<Say>` for text-to-speech,
 * `<Play>` of the signed URL for uploaded audio. Null when the audio cannot be made
 * playable (no Twilio account), so the caller can fall back to a spoken default.
 */
export async function audioSourceVerb(deps: SignDeps, source: AudioSource): Promise<TwimlElement | null> {
  if (source.kind === "tts") {
    return el("Say", { voice: source.voice, language: source.language }, [source.text]);
  }
  const url = await playableAudioUrl(deps, source);
  return url ? el("Play", {}, [url]) : null;
}
