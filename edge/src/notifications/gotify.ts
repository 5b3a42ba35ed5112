/**
 * The `gotify.push` outbox job (SPEC §8, §9): POST {url}/message with the
 * installation's application token (settings `gotify`). Pushes are best effort:
 * 3 attempts, then dropped silently (no admin alert, no event), as the spec asks.
 * The token travels in the X-Gotify-Key header, which Gotify accepts like the
 * `?token=` query parameter, so it never lands in a proxy's access log.
 */
import { z } from "zod";
import type { JobHandler } from "../jobs/types.ts";
import { PermanentJobError, RetryableJobError } from "../jobs/types.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { postJson, retryAfterMs } from "./http.ts";

export const GOTIFY_MAX_ATTEMPTS = 3;
const GOTIFY_TIMEOUT_MS = 10_000;

/** What notify() puts in a `gotify.push` job. */
export const gotifyJobPayloadSchema = z.object({
  v: z.literal(1),
  type: z.string(),
  title: z.string().min(1),
  message: z.string(),
  priority: z.int().min(0).max(10),
  link: z.string().optional(),
});

/** `{url}/message`, keeping a path prefix (Gotify behind a reverse proxy at /gotify/). */
export function gotifyMessageUrl(base: string): string {
  return new URL("message", base.endsWith("/") ? base : `${base}/`).toString();
}

export type GotifyPush = z.infer<typeof gotifyJobPayloadSchema>;

/** Pushes one message now; throws PermanentJobError (not enabled, refused) or RetryableJobError. */
export async function deliverPush(deps: EdgeDeps, push: GotifyPush): Promise<void> {
  const settings = await readSetting(deps.db, "gotify");
  if (!settings.enabled || !settings.url || !settings.appToken)
    throw new PermanentJobError("Gotify is not enabled (settings gotify)");
  const link = push.link
    ? /^https?:\/\//.test(push.link)
      ? push.link
      : `${deps.config.publicUrl}${push.link.startsWith("/") ? "" : "/"}${push.link}`
    : undefined;
  const res = await postJson(
    gotifyMessageUrl(settings.url),
    { "X-Gotify-Key": settings.appToken },
    {
      title: push.title,
      message: push.message,
      priority: push.priority,
      extras: {
        "client::display": { contentType: "text/plain" },
        ...(link ? { "client::notification": { click: { url: link } } } : {}),
      },
    },
    GOTIFY_TIMEOUT_MS,
    "Gotify",
  );
  await res.body?.cancel();
  if (res.ok) return;
  const detail = `Gotify answered ${res.status}`;
  if (res.status === 429 || res.status >= 500) {
    const retryAfter = retryAfterMs(res);
    throw new RetryableJobError(detail, retryAfter !== undefined ? { retryAfterMs: retryAfter } : {});
  }
  // 400/401/403: a wrong token or URL does not fix itself.
  throw new PermanentJobError(detail);
}

export const gotifyPushJob: JobHandler = {
  service: "gotify",
  maxAttempts: GOTIFY_MAX_ATTEMPTS,
  silent: true,
  async run(ctx) {
    const parsed = gotifyJobPayloadSchema.safeParse(ctx.job.payload);
    if (!parsed.success) throw new PermanentJobError("gotify job payload is invalid");
    await deliverPush(ctx.deps, parsed.data);
  },
};
