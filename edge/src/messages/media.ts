/**
 * MMS media: which types GoSIP keeps, how big they may be, where they live in
 * the blob store, and the signed public URLs Twilio fetches outgoing media from.
 *
 * - Inbound media is copied from Twilio (its URLs need the account credentials)
 *   to `messages/<messageId>/<n>`.
 * - Images a user uploads for sending wait at `messages/uploads/<userId>/<uploadId>`
 *   (the user id in the key scopes them: nobody can attach someone else's upload)
 *   and are moved under their message when it is sent.
 * - Twilio fetches outgoing media without credentials, so each send gets URLs
 *   `/api/messages/media/<mediaId>/public?exp=<unix s>&sig=<hmac>` that expire;
 *   the HMAC key is derived from the Twilio auth token (already a shared secret
 *   of this installation; rotating the token invalidates old links).
 */
import { constantTimeEqual } from "../twilio/signature.ts";

/** Largest media item stored (inbound) or accepted for sending (Twilio's own MMS cap is 5 MB). */
export const MAX_MEDIA_BYTES = 5 * 1024 * 1024;

/** Twilio sends at most 10 media items per message. */
export const MAX_MEDIA_PER_MESSAGE = 10;

/** An uploaded image not sent within this time is removed. */
export const UPLOAD_TTL_MS = 24 * 60 * 60_000;

/** How long a public media link works; each send attempt signs fresh links. */
export const PUBLIC_MEDIA_TTL_MS = 2 * 60 * 60_000;

/**
 * Inbound types kept. SVG is left out on purpose: it is an image that can carry
 * script, and these files are served back to signed-in browsers.
 */
const INBOUND_TYPE =
  /^(image\/(jpeg|png|gif|webp|heic|heif|bmp|tiff)|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+)$/;
const INBOUND_EXTRA = new Set(["text/vcard", "text/x-vcard", "application/pdf"]);

/** Images a user may attach to an outgoing MMS (what phones display everywhere). */
export const SENDABLE_IMAGE_TYPES: ReadonlySet<string> = new Set([
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
]);

/** The bare media type of a Content-Type value ("image/jpeg; q=1" → "image/jpeg"). */
export function mediaTypeOf(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/** Whether an inbound media item of this type is copied into GoSIP. */
export function isStorableInboundType(contentType: string): boolean {
  const type = mediaTypeOf(contentType);
  return INBOUND_TYPE.test(type) || INBOUND_EXTRA.has(type);
}

export const inboundMediaKey = (messageId: string, index: number): string => `messages/${messageId}/${index}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` can be an upload or media id (a UUID); anything else is never looked up. */
export const isMediaId = (id: string): boolean => UUID.test(id);

export const uploadKey = (userId: string, uploadId: string): string =>
  `messages/uploads/${userId}/${uploadId}`;

/** File name extension for a media type, for downloads and email attachments. */
export function extensionFor(contentType: string): string {
  const type = mediaTypeOf(contentType);
  const known: Record<string, string> = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "audio/mpeg": "mp3",
    "audio/amr": "amr",
    "audio/ogg": "ogg",
    "audio/wav": "wav",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "video/quicktime": "mov",
    "text/vcard": "vcf",
    "text/x-vcard": "vcf",
    "application/pdf": "pdf",
  };
  return known[type] ?? "bin";
}

// --- signed public links ------------------------------------------------------

const encoder = new TextEncoder();

async function hmacHex(key: string, data: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(data)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The signature of (mediaId, exp); a purpose prefix keeps it from matching any other HMAC of the token. */
function mediaSignature(authToken: string, mediaId: string, exp: number): Promise<string> {
  return hmacHex(authToken, `gosip.mms-media.v1\n${mediaId}\n${exp}`);
}

/** A public URL of `mediaId` valid until `nowMs + PUBLIC_MEDIA_TTL_MS`. */
export async function signedMediaUrl(
  publicUrl: string,
  authToken: string,
  mediaId: string,
  nowMs: number,
): Promise<string> {
  const exp = Math.floor((nowMs + PUBLIC_MEDIA_TTL_MS) / 1000);
  const sig = await mediaSignature(authToken, mediaId, exp);
  return `${publicUrl}/api/messages/media/${mediaId}/public?exp=${exp}&sig=${sig}`;
}

/** Whether (exp, sig) is a valid, unexpired signature of `mediaId`. */
export async function verifyMediaSignature(
  authToken: string,
  mediaId: string,
  exp: string | undefined,
  sig: string | undefined,
  nowMs: number,
): Promise<boolean> {
  if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return false;
  const expSeconds = Number(exp);
  if (expSeconds * 1000 <= nowMs) return false;
  return constantTimeEqual(await mediaSignature(authToken, mediaId, expSeconds), sig);
}
