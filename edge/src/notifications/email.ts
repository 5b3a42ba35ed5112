/**
 * The `email.send` outbox job (SPEC §8, §9): builds the message from the job's
 * payload (attachments read from the blob store at send time, so the job row stays
 * small) and delivers it by the configured provider: SMTP through the platform's
 * transport (Node only) or Postmark's HTTP API (both runtimes).
 *
 * "Retry 3× over 1 hour, then give up and record it": 3 attempts at least 20
 * minutes apart; giving up writes one `email.failed` system event (no alert per
 * email: a mail outage raises the service's single "degraded" alert instead).
 * Email is not checked for ambiguity: a timeout after the server took the message
 * can at worst deliver a second copy, which carries the same Message-ID.
 */
import { systemEvents } from "@gosip/drizzle";
import { z } from "zod";
import type { JobContext, JobHandler } from "../jobs/types.ts";
import { PermanentJobError, RetryableJobError } from "../jobs/types.ts";
import type { EdgeDeps, OutgoingEmail } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { sha256Hex } from "../twilio/signature.ts";
import { postJson, retryAfterMs } from "./http.ts";

export const EMAIL_MAX_ATTEMPTS = 3;
/** Smallest gap between two attempts: 3 attempts span about 40 minutes, within the hour. */
export const EMAIL_BACKOFF_MS = 20 * 60_000;
const POSTMARK_TIMEOUT_MS = 15_000;

/** What notify() puts in an `email.send` job. */
export const emailJobPayloadSchema = z.object({
  v: z.literal(1),
  type: z.string(),
  userId: z.string().optional(),
  to: z.email(),
  toName: z.string().optional(),
  subject: z.string().min(1).max(998),
  text: z.string(),
  html: z.string().optional(),
  link: z.string().optional(),
  attachments: z
    .array(
      z.object({ filename: z.string().min(1), contentType: z.string().min(1), blobKey: z.string().min(1) }),
    )
    .default([]),
});
export type EmailJobPayload = z.infer<typeof emailJobPayloadSchema>;

function parsePayload(ctx: JobContext): EmailJobPayload {
  const parsed = emailJobPayloadSchema.safeParse(ctx.job.payload);
  if (!parsed.success)
    throw new PermanentJobError(`email job payload is invalid: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** An absolute URL for a link into the UI ("/voicemails/1" → PUBLIC_URL + path). */
function absoluteLink(deps: EdgeDeps, link: string): string {
  return /^https?:\/\//.test(link)
    ? link
    : `${deps.config.publicUrl}${link.startsWith("/") ? "" : "/"}${link}`;
}

/** A display name safe inside a quoted RFC 5322 phrase. */
function quotedName(name: string): string {
  return `"${name.replace(/[\\"\r\n]/g, "").slice(0, 100)}"`;
}

async function readAttachments(deps: EdgeDeps, payload: EmailJobPayload) {
  const attachments: OutgoingEmail["attachments"] = [];
  const missing: string[] = [];
  for (const a of payload.attachments) {
    const blob = await deps.blobs.get(a.blobKey);
    if (!blob) {
      missing.push(a.filename);
      continue;
    }
    attachments.push({
      filename: a.filename,
      contentType: a.contentType,
      content: new Uint8Array(await new Response(blob.body).arrayBuffer()),
    });
  }
  return { attachments, missing };
}

/** The message as the recipient sees it; `messageKey` makes its Message-ID (the job's idempotency key). */
export async function buildEmail(
  deps: EdgeDeps,
  payload: EmailJobPayload,
  messageKey: string,
  from: string,
): Promise<OutgoingEmail> {
  const installation = await readSetting(deps.db, "installation");
  const { attachments, missing } = await readAttachments(deps, payload);
  let text = payload.text;
  // The thing may have been deleted between the event and the email: still tell the user, say what is missing.
  if (missing.length > 0) text += `\n\n(No longer available: ${missing.join(", ")}.)`;
  if (payload.link) text += `\n\n${absoluteLink(deps, payload.link)}`;
  return {
    from: `${quotedName(installation.name)} <${from}>`,
    to: payload.toName ? { address: payload.to, name: payload.toName } : { address: payload.to },
    // A header line: a line break in it would start a new header.
    subject: payload.subject.replace(/[\r\n]+/g, " "),
    text,
    ...(payload.html !== undefined ? { html: payload.html } : {}),
    attachments,
    messageId: `<${(await sha256Hex(messageKey)).slice(0, 32)}@gosip>`,
  };
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  // Chunks keep String.fromCharCode's argument list small (a voicemail is megabytes).
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** POST /email to Postmark; throws Permanent/RetryableJobError by Postmark's answer. */
export async function sendViaPostmark(deps: EdgeDeps, token: string, email: OutgoingEmail): Promise<void> {
  const to = email.to.name ? `${quotedName(email.to.name)} <${email.to.address}>` : email.to.address;
  const res = await postJson(
    `${deps.config.postmarkApiBase}/email`,
    { "X-Postmark-Server-Token": token },
    {
      From: email.from,
      To: to,
      Subject: email.subject,
      TextBody: email.text,
      ...(email.html !== undefined ? { HtmlBody: email.html } : {}),
      MessageStream: "outbound",
      ...(email.messageId !== undefined ? { Headers: [{ Name: "Message-ID", Value: email.messageId }] } : {}),
      Attachments: email.attachments.map((a) => ({
        Name: a.filename,
        Content: base64(a.content),
        ContentType: a.contentType,
      })),
    },
    POSTMARK_TIMEOUT_MS,
    "Postmark",
  );
  if (res.ok) {
    await res.body?.cancel();
    return;
  }
  let detail = `Postmark answered ${res.status}`;
  try {
    const body = (await res.json()) as { ErrorCode?: unknown; Message?: unknown };
    if (typeof body.Message === "string") detail += `: ${body.Message}`;
    if (typeof body.ErrorCode === "number") detail += ` (ErrorCode ${body.ErrorCode})`;
  } catch {
    // not JSON: the status says enough
  }
  if (res.status === 429 || res.status >= 500) {
    const retryAfter = retryAfterMs(res);
    throw new RetryableJobError(detail, retryAfter !== undefined ? { retryAfterMs: retryAfter } : {});
  }
  // 401 (bad token), 422 (invalid address, inactive recipient, …): sending again changes nothing.
  throw new PermanentJobError(detail);
}

/** Maps an SMTP failure: a 5xx reply or refused login is permanent; timeouts and 4xx are retried. */
function smtpFailure(err: unknown): Error {
  const e = err as { responseCode?: unknown; code?: unknown; message?: unknown } | undefined;
  const message = `SMTP: ${typeof e?.message === "string" ? e.message : String(err)}`;
  if (typeof e?.responseCode === "number" && e.responseCode >= 500) return new PermanentJobError(message);
  if (e?.code === "EAUTH" || e?.code === "EENVELOPE") return new PermanentJobError(message);
  return new RetryableJobError(message);
}

/**
 * Sends one email now by the configured provider. Throws PermanentJobError (not
 * configured, refused for good) or RetryableJobError (try later); the outbox job and
 * the "send a test email" API both use it.
 */
export async function deliverEmail(
  deps: EdgeDeps,
  payload: EmailJobPayload,
  messageKey: string,
): Promise<void> {
  const settings = await readSetting(deps.db, "email");
  if (settings.provider === "none" || !settings.from)
    throw new PermanentJobError("email is not configured (settings email.provider is none)");
  if (settings.provider === "smtp") {
    const server = settings.smtp;
    if (!server) throw new PermanentJobError("email.provider is smtp but no SMTP server is set");
    if (!deps.mail)
      throw new PermanentJobError(
        "SMTP is not available on this runtime (Cloudflare Workers): choose Postmark as the email provider",
      );
    const email = await buildEmail(deps, payload, messageKey, settings.from);
    try {
      await deps.mail.send(
        {
          host: server.host,
          port: server.port,
          secure: server.secure,
          ...(server.username !== undefined ? { username: server.username } : {}),
          ...(server.password !== undefined ? { password: server.password } : {}),
        },
        email,
      );
    } catch (err) {
      throw smtpFailure(err);
    }
    return;
  }
  if (!settings.postmarkToken) throw new PermanentJobError("email.provider is postmark but no token is set");
  await sendViaPostmark(
    deps,
    settings.postmarkToken,
    await buildEmail(deps, payload, messageKey, settings.from),
  );
}

export const emailSendJob: JobHandler = {
  service: "email",
  maxAttempts: EMAIL_MAX_ATTEMPTS,
  backoffBaseMs: EMAIL_BACKOFF_MS,
  run: (ctx) => deliverEmail(ctx.deps, parsePayload(ctx), ctx.job.idempotencyKey),
  async onGiveUp(ctx, error) {
    const payload = emailJobPayloadSchema.safeParse(ctx.job.payload);
    await ctx.deps.db.insert(systemEvents).values({
      type: "email.failed",
      severity: "warning",
      data: {
        v: 1,
        message: "an email could not be delivered and was given up",
        jobId: ctx.job.id,
        ...(payload.success
          ? {
              notification: payload.data.type,
              subject: payload.data.subject,
              ...(payload.data.userId ? { userId: payload.data.userId } : {}),
            }
          : {}),
        error: error.slice(0, 500),
      },
      at: new Date(ctx.deps.clock.now()),
    });
  },
};
