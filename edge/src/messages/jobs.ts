/**
 * Outbox job kinds of SMS/MMS (see jobs/types.ts), listed in jobs/registry.ts:
 *
 * - `sms.send` (send.ts): one outbound message to Twilio, never sent twice.
 * - `sms.media-download`: one inbound media item copied from Twilio into the blob
 *   store (allowed types only, at most 5 MB) as a message_media row, then deleted
 *   at Twilio (a 404 there means it is gone already). Safe to repeat: a stored
 *   item is not fetched again, only its deletion is retried.
 * - `sms.forward`: the email of an inbound message to the DID's users, with the
 *   stored media attached. For an MMS it is enqueued by whichever media job
 *   finishes last (each one marks its item done, then counts), so the email
 *   carries every file that could be stored.
 * - `sms.upload-expire`: removes an uploaded image nobody sent, a day later.
 */
import { contactNumbers, contacts, dids, messageMedia, messages, processedWebhooks } from "@gosip/drizzle";
import { and, count, eq, isNull, like } from "drizzle-orm";
import { BlobTooLargeError } from "../blobs/store.ts";
import { enqueueJob } from "../jobs/queue.ts";
import type { JobContext, JobHandler } from "../jobs/types.ts";
import { PermanentJobError } from "../jobs/types.ts";
import { notify } from "../notifications/notify.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { openTwilioRest } from "../twilio/credentials.ts";
import { claimWebhook } from "../twilio/idempotency.ts";
import { TwilioApiError } from "../twilio/rest.ts";
import { recipientsOfDid } from "./access.ts";
import {
  payloadInt,
  payloadString,
  SMS_FORWARD,
  SMS_MEDIA_DOWNLOAD,
  SMS_SEND,
  SMS_UPLOAD_EXPIRE,
  type SmsForwardPayload,
  type SmsMediaPayload,
  type SmsUploadExpirePayload,
  smsForwardKey,
} from "./job-kinds.ts";
import {
  extensionFor,
  inboundMediaKey,
  isMediaId,
  isStorableInboundType,
  MAX_MEDIA_BYTES,
  mediaTypeOf,
  uploadKey,
} from "./media.ts";
import { createSmsSendHandler } from "./send.ts";

/** processed_webhooks kind marking one media item of a message as handled (stored or skipped). */
const MEDIA_DONE_KIND = "sms.media";

/** The Media resource of a Twilio media URL (…/Messages/MM…/Media/ME…), for its DELETE. */
const MEDIA_PATH =
  /^(\/2010-04-01\/Accounts\/AC[0-9a-fA-F]{32}\/Messages\/[A-Z]{2}[0-9a-fA-F]{32}\/Media\/(ME[0-9a-fA-F]{32}))(\.json)?$/;

/**
 * Marks item `index` handled; when every item of the message is, enqueues the
 * email forward (idempotent by key, so two media jobs finishing together forward once).
 */
async function mediaItemDone(deps: EdgeDeps, messageId: string, index: number, total: number): Promise<void> {
  await claimWebhook(deps.db, MEDIA_DONE_KIND, `${messageId}:${index}`);
  const [done] = await deps.db
    .select({ n: count() })
    .from(processedWebhooks)
    .where(and(eq(processedWebhooks.kind, MEDIA_DONE_KIND), like(processedWebhooks.sid, `${messageId}:%`)));
  if ((done?.n ?? 0) < total) return;
  const messaging = await readSetting(deps.db, "messaging");
  if (!messaging.forwardToEmail) return;
  const payload: SmsForwardPayload = { v: 1, messageId };
  await enqueueJob(deps, { kind: SMS_FORWARD, payload, idempotencyKey: smsForwardKey(messageId) });
}

function mediaPayload(ctx: JobContext<SmsMediaPayload>) {
  const p = ctx.job.payload;
  return {
    messageId: payloadString(p, "messageId"),
    index: payloadInt(p, "index"),
    total: payloadInt(p, "total"),
    url: payloadString(p, "url"),
    contentType: payloadString(p, "contentType"),
  };
}

const mediaDownload: JobHandler<SmsMediaPayload> = {
  service: "twilio",
  async run(ctx) {
    const { deps } = ctx;
    const p = mediaPayload(ctx);
    const [message] = await deps.db
      .select({ id: messages.id })
      .from(messages)
      .where(eq(messages.id, p.messageId));
    if (!message) return;
    const rest = await openTwilioRest(deps);
    if (!rest) throw new PermanentJobError("no Twilio credentials");
    const key = inboundMediaKey(p.messageId, p.index);
    const [stored] = await deps.db
      .select({ id: messageMedia.id })
      .from(messageMedia)
      .where(eq(messageMedia.blobKey, key));
    const mediaPath = (() => {
      try {
        return MEDIA_PATH.exec(new URL(p.url).pathname);
      } catch {
        return null;
      }
    })();

    if (!stored) {
      if (!isStorableInboundType(p.contentType)) {
        deps.logger.info(
          { messageId: p.messageId, index: p.index, type: mediaTypeOf(p.contentType) },
          "mms media of a type GoSIP does not keep; skipped",
        );
        await mediaItemDone(deps, p.messageId, p.index, p.total);
        return;
      }
      let res: Response;
      try {
        res = await rest.download(p.url);
      } catch (err) {
        // Gone at Twilio (deleted, or never ours): nothing will ever be there to fetch.
        if (err instanceof TwilioApiError && !err.retryable) {
          deps.logger.warn(
            { messageId: p.messageId, index: p.index, status: err.status },
            "mms media not downloadable; skipped",
          );
          await mediaItemDone(deps, p.messageId, p.index, p.total);
          return;
        }
        throw err;
      }
      const type = mediaTypeOf(res.headers.get("content-type")) || mediaTypeOf(p.contentType);
      const length = Number(res.headers.get("content-length") ?? Number.NaN);
      if (!isStorableInboundType(type) || length > MAX_MEDIA_BYTES) {
        await res.body?.cancel().catch(() => undefined);
        deps.logger.info(
          { messageId: p.messageId, index: p.index, type, length },
          "mms media refused (type or size); skipped",
        );
        await mediaItemDone(deps, p.messageId, p.index, p.total);
        return;
      }
      let size: number;
      try {
        const meta = await deps.blobs.put(key, res.body ?? new Uint8Array(), {
          contentType: type,
          maxBytes: MAX_MEDIA_BYTES,
        });
        size = meta.size;
      } catch (err) {
        if (err instanceof BlobTooLargeError) {
          deps.logger.info(
            { messageId: p.messageId, index: p.index },
            "mms media over the size cap; skipped",
          );
          await mediaItemDone(deps, p.messageId, p.index, p.total);
          return;
        }
        throw err;
      }
      await deps.db
        .insert(messageMedia)
        .values({
          messageId: p.messageId,
          blobKey: key,
          contentType: type,
          sizeBytes: size,
          twilioMediaSid: mediaPath?.[2] ?? null,
          createdAt: new Date(deps.clock.now()),
        })
        .onConflictDoNothing({ target: messageMedia.blobKey });
    }

    // Stored by GoSIP now: Twilio's copy goes (it would otherwise stay there, billed and readable).
    if (mediaPath?.[1]) {
      try {
        await rest.request("DELETE", "api", `${mediaPath[1]}.json`);
      } catch (err) {
        if (!(err instanceof TwilioApiError && err.status === 404)) throw err;
      }
    }
    await mediaItemDone(deps, p.messageId, p.index, p.total);
  },
  async onGiveUp(ctx, error) {
    const p = mediaPayload(ctx);
    ctx.deps.logger.warn({ messageId: p.messageId, index: p.index, error }, "mms media download given up");
    // The email still goes, with whatever media could be stored.
    await mediaItemDone(ctx.deps, p.messageId, p.index, p.total);
  },
};

/** A name for `number` from the shared address book (an email may go to several users: no private contacts). */
async function contactName(deps: EdgeDeps, number: string): Promise<string | undefined> {
  const [row] = await deps.db
    .select({ name: contacts.name })
    .from(contactNumbers)
    .innerJoin(contacts, eq(contacts.id, contactNumbers.contactId))
    .where(and(eq(contactNumbers.e164, number), isNull(contacts.ownerUserId)))
    .orderBy(contacts.name)
    .limit(1);
  return row?.name;
}

const forward: JobHandler<SmsForwardPayload> = {
  service: "internal",
  async run(ctx) {
    const { deps } = ctx;
    const messageId = payloadString(ctx.job.payload, "messageId");
    const [row] = await deps.db
      .select({
        id: messages.id,
        didId: messages.didId,
        from: messages.fromNumber,
        to: messages.toNumber,
        body: messages.body,
        didLabel: dids.label,
      })
      .from(messages)
      .leftJoin(dids, eq(dids.id, messages.didId))
      .where(and(eq(messages.id, messageId), eq(messages.direction, "inbound")));
    if (!row) return;
    const media = await deps.db
      .select({ blobKey: messageMedia.blobKey, contentType: messageMedia.contentType })
      .from(messageMedia)
      .where(eq(messageMedia.messageId, row.id))
      .orderBy(messageMedia.blobKey);
    const name = await contactName(deps, row.from);
    const sender = name ? `${name} (${row.from})` : row.from;
    const line = row.didLabel ? `${row.didLabel} (${row.to})` : row.to;
    const attachments = media.map((m, i) => ({
      filename: `mms-${i + 1}.${extensionFor(m.contentType)}`,
      contentType: m.contentType,
      blobKey: m.blobKey,
    }));
    const mediaNote = attachments.length > 0 ? `\n\n${attachments.length} attachment(s).` : "";
    const link = `${deps.config.publicUrl}/messages/${row.didId ?? "none"}/${encodeURIComponent(row.from)}`;
    await notify(deps, {
      type: "sms",
      userIds: await recipientsOfDid(deps.db, row.didId),
      subject: `SMS from ${sender}`,
      text: `From: ${sender}\nTo: ${line}\n\n${row.body || "(no text)"}${mediaNote}`,
      attachments,
      link,
      idempotencyKey: `sms:${row.id}`,
    });
  },
};

/** Deletes an upload that was never attached to a message (a sent one was moved already: no-op). */
const uploadExpire: JobHandler<SmsUploadExpirePayload> = {
  service: "internal",
  async run(ctx) {
    const userId = payloadString(ctx.job.payload, "userId");
    const uploadId = payloadString(ctx.job.payload, "uploadId");
    if (!isMediaId(uploadId)) throw new PermanentJobError("upload id is not a media id");
    await ctx.deps.blobs.delete(uploadKey(userId, uploadId));
  },
};

export const messagesJobs: Record<string, JobHandler> = {
  [SMS_SEND]: createSmsSendHandler(),
  [SMS_MEDIA_DOWNLOAD]: mediaDownload,
  [SMS_FORWARD]: forward,
  [SMS_UPLOAD_EXPIRE]: uploadExpire,
};
