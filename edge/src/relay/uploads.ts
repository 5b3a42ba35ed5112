/**
 * PUT /api/relay/recordings/{recordingId}: the relay uploads a recording's audio
 * here (Authorization: Bearer <relay token>) before it sends the recording.ready
 * event. The body is streamed into the blob store, never held whole in memory;
 * X-Content-SHA256 must match what arrives (else 400 and nothing is stored), and
 * Content-Length is required (at most MAX_RECORDING_BYTES). Uploading the same
 * audio again answers 200 without writing it twice, so the relay may retry freely.
 */
import { recordings } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { BlobChecksumError, BlobLengthError, BlobTooLargeError, SHA256_HEX } from "../blobs/store.ts";
import type { AppEnv } from "../env.ts";
import { AppError, conflict } from "../http/errors.ts";
import { errorEnvelopeSchema, errorResponses, jsonResponse } from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import { RELAY_RECORDING_ID, recordingBlobKey } from "./events.ts";
import { bearerToken, type RelayIdentity, verifyRelayToken } from "./tokens.ts";

/** Largest recording accepted: about 3.6 hours of 8 kHz 16-bit mono WAV. */
export const MAX_RECORDING_BYTES = 200 * 1024 * 1024;

/** Audio types a recording may be uploaded as. */
export const RECORDING_CONTENT_TYPES: ReadonlySet<string> = new Set([
  "audio/wav",
  "audio/x-wav",
  "audio/wave",
  "audio/ogg",
  "audio/opus",
  "audio/mpeg",
]);

/** 401 unless the request carries a live relay token; the relay is on the context afterwards. */
export const requireRelayToken = createMiddleware<AppEnv & { Variables: { relay: RelayIdentity } }>(
  async (c, next) => {
    const deps = c.get("deps");
    const token = bearerToken(c.req.header("authorization"));
    const relay = token ? await verifyRelayToken(deps.db, token, new Date(deps.clock.now())) : undefined;
    if (!relay) {
      throw new AppError(401, "unauthorized", "A valid relay token is required", undefined, {
        "WWW-Authenticate": 'Bearer realm="gosip-relay"',
      });
    }
    c.set("relay", relay);
    await next();
  },
);

const errorJson = (description: string) => ({
  description,
  content: { "application/json": { schema: errorEnvelopeSchema } },
});

const uploadedSchema = z
  .object({
    recordingId: z.string(),
    sizeBytes: z.int(),
    sha256: z.string(),
    contentType: z.string(),
  })
  .openapi("UploadedRecording");

const uploadRoute = createRoute({
  method: "put",
  path: "/recordings/{recordingId}",
  tags: ["relay"],
  summary: "Upload a recording's audio (relay token); send the recording.ready event afterwards",
  security: [{ relayToken: [] }],
  middleware: [requireRelayToken] as const,
  request: {
    params: z.object({
      recordingId: z
        .string()
        .regex(RELAY_RECORDING_ID, "letters, digits, dot, dash, underscore; at most 128")
        .openapi({ param: { name: "recordingId", in: "path" }, description: "The relay's recording id" }),
    }),
    headers: z.object({
      "x-content-sha256": z
        .string()
        .regex(SHA256_HEX, "must be the body's SHA-256 in lowercase hex")
        .openapi({ description: "SHA-256 of the body, lowercase hex" }),
    }),
    body: {
      required: true,
      description: `The audio, at most ${MAX_RECORDING_BYTES} bytes, with Content-Length`,
      content: { "audio/wav": { schema: z.string().openapi({ format: "binary" }) } },
    },
  },
  responses: {
    200: jsonResponse(uploadedSchema, "Already stored with this checksum; nothing written"),
    201: jsonResponse(uploadedSchema, "Stored"),
    ...errorResponses(400, 401, 409),
    411: errorJson("Content-Length is required"),
    413: errorJson(`Larger than ${MAX_RECORDING_BYTES} bytes`),
    415: errorJson("Not an audio type GoSIP stores"),
  },
});

export const relayUploadsRouter = createRouter().openapi(uploadRoute, async (c) => {
  const deps = c.get("deps");
  const { recordingId } = c.req.valid("param");
  const sha256 = c.req.valid("header")["x-content-sha256"];
  const contentType = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const body = c.req.raw.body;
  const discard = async () => {
    await body?.cancel().catch(() => undefined);
  };
  if (!RECORDING_CONTENT_TYPES.has(contentType)) {
    await discard();
    throw new AppError(
      415,
      "bad_request",
      `Content-Type must be one of ${[...RECORDING_CONTENT_TYPES].join(", ")}`,
    );
  }
  const lengthHeader = c.req.header("content-length");
  const size =
    lengthHeader !== undefined && /^\d{1,12}$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (size === undefined) {
    await discard();
    throw new AppError(411, "bad_request", "Content-Length is required");
  }
  if (size > MAX_RECORDING_BYTES) {
    await discard();
    throw new AppError(413, "payload_too_large", `A recording may be at most ${MAX_RECORDING_BYTES} bytes`);
  }
  const key = recordingBlobKey(recordingId);
  const existing = await deps.blobs.head(key);
  if (existing?.sha256 === sha256) {
    await discard();
    return c.json({ recordingId, sizeBytes: existing.size, sha256, contentType: existing.contentType }, 200);
  }
  if (existing) {
    // Replacing audio that a stored recording already vouches for would break its checksum.
    const [stored] = await deps.db
      .select({ id: recordings.id })
      .from(recordings)
      .where(and(eq(recordings.relayRecordingId, recordingId), eq(recordings.status, "stored")));
    if (stored) {
      await discard();
      throw conflict("This recording is stored already with other audio");
    }
  }
  try {
    const meta = await deps.blobs.put(key, body ?? new Uint8Array(0), {
      contentType,
      sha256,
      size,
      maxBytes: MAX_RECORDING_BYTES,
    });
    deps.logger.info({ recordingId, sizeBytes: meta.size }, "recording uploaded");
    return c.json({ recordingId, sizeBytes: meta.size, sha256: meta.sha256, contentType }, 201);
  } catch (err) {
    if (err instanceof BlobChecksumError) {
      throw new AppError(400, "bad_request", "The body does not match X-Content-SHA256; nothing was stored");
    }
    if (err instanceof BlobLengthError) {
      throw new AppError(400, "bad_request", "The body does not match Content-Length; nothing was stored");
    }
    if (err instanceof BlobTooLargeError) {
      throw new AppError(413, "payload_too_large", `A recording may be at most ${MAX_RECORDING_BYTES} bytes`);
    }
    throw err;
  }
});
