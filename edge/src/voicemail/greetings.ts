/**
 * /api/voicemails/greetings/{didId} (admin): the voicemail greeting of a DID
 * (SPEC §3). PUT takes either JSON text-to-speech `{ kind: "tts", text, voice?,
 * language? }` or an uploaded recording (Content-Type audio/wav or audio/mpeg, at
 * most 5 MB; 413 above); GET shows it, GET …/audio plays an uploaded one to the
 * admin, DELETE returns to the built-in greeting. Uploaded audio is stored in the
 * blob store under a new key each time (Twilio caches media by URL), the old one
 * removed; Twilio fetches it through the signed URL of playable.ts.
 *
 * The upload path is exempt from the API's JSON body limit (app.ts); this route
 * applies its own.
 */
import { dids, type Greeting, parseGreeting } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { bodyLimit } from "hono/body-limit";
import { requireAdmin } from "../auth/middleware.ts";
import { AppError, errorBody, notFound } from "../http/errors.ts";
import { errorEnvelopeSchema, errorResponses, jsonResponse } from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { serveAudio } from "./audio.ts";
import { audioExtension } from "./email.ts";

/** Largest greeting upload (a minute of 16-bit 8 kHz WAV is under 1 MB). */
export const MAX_GREETING_BYTES = 5 * 1024 * 1024;

const AUDIO_TYPES: Record<string, "audio/wav" | "audio/mpeg"> = {
  "audio/wav": "audio/wav",
  "audio/x-wav": "audio/wav",
  "audio/wave": "audio/wav",
  "audio/mpeg": "audio/mpeg",
  "audio/mp3": "audio/mpeg",
};

const ttsGreetingSchema = z
  .object({
    kind: z.literal("tts"),
    text: z.string().trim().min(1).max(2000),
    voice: z.string().min(1).max(64).optional(),
    language: z.string().min(2).max(16).optional(),
  })
  .strict()
  .openapi("TtsGreeting");

export const greetingSchema = z
  .object({
    didId: z.string(),
    greeting: z
      .discriminatedUnion("kind", [
        z.object({
          kind: z.literal("tts"),
          text: z.string(),
          voice: z.string().nullable(),
          language: z.string().nullable(),
        }),
        z.object({
          kind: z.literal("audio"),
          contentType: z.string(),
          sizeBytes: z.int().nullable(),
          audioUrl: z.string(),
        }),
      ])
      .nullable()
      .openapi({ description: "null: the built-in text-to-speech greeting plays" }),
  })
  .openapi("VoicemailGreeting");
type GreetingDto = z.infer<typeof greetingSchema>;

const didParams = z.object({
  didId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "didId", in: "path" } }),
});

async function loadDid(deps: EdgeDeps, didId: string): Promise<{ id: string; greeting: Greeting | null }> {
  const [row] = await deps.db
    .select({ id: dids.id, greeting: dids.greeting })
    .from(dids)
    .where(eq(dids.id, didId));
  if (!row) throw notFound("DID");
  let greeting: Greeting | null = null;
  try {
    greeting = row.greeting ? parseGreeting(row.greeting) : null;
  } catch {
    // Unreadable: treated as none (voicemailTwiml plays the default too).
  }
  return { id: row.id, greeting };
}

async function toDto(deps: EdgeDeps, didId: string, greeting: Greeting | null): Promise<GreetingDto> {
  if (!greeting) return { didId, greeting: null };
  const s = greeting.source;
  if (s.kind === "tts") {
    return {
      didId,
      greeting: { kind: "tts", text: s.text, voice: s.voice ?? null, language: s.language ?? null },
    };
  }
  const meta = await deps.blobs.head(s.blobKey);
  return {
    didId,
    greeting: {
      kind: "audio",
      contentType: s.contentType ?? meta?.contentType ?? "audio/wav",
      sizeBytes: meta?.size ?? null,
      audioUrl: `/api/voicemails/greetings/${didId}/audio`,
    },
  };
}

/** Whether the bytes look like the announced format (a WAV's RIFF/WAVE header, an MP3 frame or ID3 tag). */
function looksLike(type: "audio/wav" | "audio/mpeg", b: Uint8Array): boolean {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (type === "audio/wav") return b.length > 44 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WAVE";
  if (b.length < 4) return false;
  const first = b[0] ?? 0;
  const second = b[1] ?? 0;
  return ascii(0, 3) === "ID3" || (first === 0xff && (second & 0xe0) === 0xe0);
}

const uploadLimit = bodyLimit({
  maxSize: MAX_GREETING_BYTES,
  onError: (c) =>
    c.json(errorBody("payload_too_large", `A greeting is at most ${MAX_GREETING_BYTES} bytes`), 413),
});

const audioBody = { schema: z.string().openapi({ format: "binary" }) };

const getRoute = createRoute({
  method: "get",
  path: "/{didId}",
  tags: ["voicemails"],
  summary: "The voicemail greeting of a DID (admin)",
  middleware: [requireAdmin] as const,
  request: { params: didParams },
  responses: { 200: jsonResponse(greetingSchema, "The greeting"), ...errorResponses(401, 403, 404) },
});

const audioRoute = createRoute({
  method: "get",
  path: "/{didId}/audio",
  tags: ["voicemails"],
  summary: "Play the DID's uploaded greeting (admin)",
  middleware: [requireAdmin] as const,
  request: { params: didParams },
  responses: {
    200: { description: "The audio", content: { "audio/wav": audioBody, "audio/mpeg": audioBody } },
    206: {
      description: "The requested byte range",
      content: { "audio/wav": audioBody, "audio/mpeg": audioBody },
    },
    ...errorResponses(401, 403, 404),
  },
});

const putRoute = createRoute({
  method: "put",
  path: "/{didId}",
  tags: ["voicemails"],
  summary: "Set the greeting: text-to-speech (JSON) or an uploaded recording (audio/wav, audio/mpeg; ≤ 5 MB)",
  middleware: [requireAdmin, uploadLimit] as const,
  request: {
    params: didParams,
    body: {
      required: false,
      content: {
        "application/json": { schema: ttsGreetingSchema },
        "audio/wav": audioBody,
        "audio/mpeg": audioBody,
      },
    },
  },
  responses: {
    200: jsonResponse(greetingSchema, "The greeting now in use"),
    ...errorResponses(400, 401, 403, 404),
    413: {
      description: "Larger than 5 MB",
      content: { "application/json": { schema: errorEnvelopeSchema } },
    },
    415: {
      description: "Neither JSON nor audio/wav or audio/mpeg",
      content: { "application/json": { schema: errorEnvelopeSchema } },
    },
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{didId}",
  tags: ["voicemails"],
  summary: "Back to the built-in greeting (admin)",
  middleware: [requireAdmin] as const,
  request: { params: didParams },
  responses: { 204: { description: "Removed" }, ...errorResponses(401, 403, 404) },
});

async function replaceGreeting(deps: EdgeDeps, didId: string, old: Greeting | null, next: Greeting | null) {
  await deps.db.update(dids).set({ greeting: next }).where(eq(dids.id, didId));
  // The old recording goes only once nothing points at it any more.
  if (
    old?.source.kind === "audio" &&
    !(next?.source.kind === "audio" && next.source.blobKey === old.source.blobKey)
  ) {
    await deps.blobs.delete(old.source.blobKey);
  }
}

export const greetingRoutes = createRouter()
  .openapi(getRoute, async (c) => {
    const deps = c.get("deps");
    const did = await loadDid(deps, c.req.valid("param").didId);
    return c.json(await toDto(deps, did.id, did.greeting), 200);
  })
  .openapi(audioRoute, async (c) => {
    const deps = c.get("deps");
    const did = await loadDid(deps, c.req.valid("param").didId);
    const s = did.greeting?.source;
    if (s?.kind !== "audio") throw notFound("Greeting audio");
    return serveAudio(c, deps, s.blobKey, {
      contentType: s.contentType ?? null,
      filename: `greeting.${audioExtension(s.contentType ?? null)}`,
      cacheControl: "private, no-cache",
      what: "Greeting audio",
    });
  })
  .openapi(putRoute, async (c) => {
    const deps = c.get("deps");
    const did = await loadDid(deps, c.req.valid("param").didId);
    const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    let next: Greeting;
    if (type === "application/json") {
      const tts = c.req.valid("json");
      // The binary content types type the body as a string too; a JSON body is the object.
      if (typeof tts === "string") throw new AppError(400, "bad_request", "Expected a JSON greeting object");
      next = { v: 1, source: { kind: "tts", text: tts.text, voice: tts.voice, language: tts.language } };
    } else {
      const audioType = AUDIO_TYPES[type];
      if (!audioType) {
        throw new AppError(415, "bad_request", "Send JSON text-to-speech, or audio/wav or audio/mpeg");
      }
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      if (!looksLike(audioType, bytes)) {
        throw new AppError(
          400,
          "bad_request",
          `The body is not ${audioType === "audio/wav" ? "a WAV" : "an MP3"} file`,
        );
      }
      const blobKey = `greetings/${did.id}-${crypto.randomUUID()}.${audioExtension(audioType)}`;
      await deps.blobs.put(blobKey, bytes, { contentType: audioType, maxBytes: MAX_GREETING_BYTES });
      next = { v: 1, source: { kind: "audio", blobKey, contentType: audioType } };
    }
    await replaceGreeting(deps, did.id, did.greeting, next);
    return c.json(await toDto(deps, did.id, next), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const deps = c.get("deps");
    const did = await loadDid(deps, c.req.valid("param").didId);
    await replaceGreeting(deps, did.id, did.greeting, null);
    return c.body(null, 204);
  });
