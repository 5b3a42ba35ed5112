/**
 * An inbound SMS/MMS webhook, applied once per MessageSid.
 *
 * The claim in `processed_webhooks` stops a duplicate before anything is read or
 * written. Then everything the message causes is written in ONE batch (one
 * transaction): the message row, a media-download job per item, the forwarding
 * job, and the auto-reply. The auto-reply is guarded atomically by the
 * per-(DID, sender) ledger: a conditional upsert that only succeeds when the last
 * auto-reply is older than 30 minutes, followed by the reply's message and send
 * job, each inserted only when the statement before it changed a row (SQLite's
 * `changes()`). So two messages racing from one sender get one reply, and a
 * failed batch leaves nothing behind (the claim is released; Twilio's retry
 * starts over).
 */
import { autoReplies, autoReplyLedger, type Db, dids, holidays, jobs, messages } from "@gosip/drizzle";
import { and, asc, eq, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { claimWebhook, releaseWebhook } from "../twilio/idempotency.ts";
import {
  AUTO_REPLY_WINDOW_MS,
  type AutoReplyRule,
  canAutoReplyTo,
  chooseAutoReply,
  isCarrierKeyword,
} from "./auto-reply.ts";
import {
  SMS_FORWARD,
  SMS_MEDIA_DOWNLOAD,
  SMS_SEND,
  type SmsForwardPayload,
  type SmsMediaPayload,
  type SmsSendPayload,
  smsForwardKey,
  smsMediaKey,
  smsSendKey,
} from "./job-kinds.ts";
import { MAX_MEDIA_PER_MESSAGE } from "./media.ts";

/** Webhook kind in processed_webhooks. */
export const SMS_WEBHOOK_KIND = "sms";

export interface InboundSms {
  messageSid: string;
  from: string;
  to: string;
  body: string;
  media: { url: string; contentType: string }[];
  /** Twilio's Advanced Opt-Out flag (STOP, START, HELP) when present. */
  optOutType: string | undefined;
}

export class InboundSmsError extends Error {
  override name = "InboundSmsError";
}

const SID = /^[A-Z]{2}[0-9a-fA-F]{32}$/;

/** Reads the webhook parameters Twilio documents for an incoming message; throws InboundSmsError when unusable. */
export function parseInboundSms(params: Readonly<Record<string, string>>): InboundSms {
  const messageSid = params.MessageSid ?? params.SmsSid ?? "";
  if (!SID.test(messageSid)) throw new InboundSmsError("MessageSid is missing or malformed");
  const from = (params.From ?? "").trim();
  const to = (params.To ?? "").trim();
  if (from === "" || from.length > 64) throw new InboundSmsError("From is missing or too long");
  if (to === "" || to.length > 64) throw new InboundSmsError("To is missing or too long");
  const numMedia = Number(params.NumMedia ?? "0");
  if (!Number.isInteger(numMedia) || numMedia < 0 || numMedia > MAX_MEDIA_PER_MESSAGE)
    throw new InboundSmsError("NumMedia is not a count of at most 10");
  const media: InboundSms["media"] = [];
  for (let n = 0; n < numMedia; n++) {
    const url = params[`MediaUrl${n}`];
    if (!url) throw new InboundSmsError(`MediaUrl${n} is missing`);
    media.push({ url, contentType: params[`MediaContentType${n}`] ?? "application/octet-stream" });
  }
  return {
    messageSid,
    from,
    to,
    // Twilio's limit is 1600 characters; a longer body is kept whole, it is the sender's text.
    body: params.Body ?? "",
    media,
    optOutType: params.OptOutType || undefined,
  };
}

export interface InboundResult {
  duplicate: boolean;
  messageId: string | undefined;
  /** The auto-reply message created for it, if any. */
  autoReplyId: string | undefined;
}

/** The rule that answers `sms` on `did`, or null (sender, keyword, rules, settings all considered). */
async function pickAutoReply(
  db: Db,
  did: { id: string; dnd: boolean },
  sms: InboundSms,
  at: Date,
): Promise<AutoReplyRule | null> {
  if (!canAutoReplyTo(sms.from) || isCarrierKeyword(sms.body, sms.optOutType)) return null;
  const rules = await db
    .select({
      id: autoReplies.id,
      trigger: autoReplies.trigger,
      keyword: autoReplies.keyword,
      text: autoReplies.text,
      enabled: autoReplies.enabled,
      priority: autoReplies.priority,
    })
    .from(autoReplies)
    .where(and(eq(autoReplies.didId, did.id), eq(autoReplies.enabled, true)))
    .orderBy(asc(autoReplies.priority));
  if (rules.length === 0) return null;
  const triggers = new Set(rules.map((r) => r.trigger));
  const afterHours = triggers.has("after_hours");
  const [installation, businessHours, globalDnd, holidayRows] = await Promise.all([
    readSetting(db, "installation"),
    afterHours ? readSetting(db, "businessHours") : undefined,
    triggers.has("dnd") ? readSetting(db, "dnd") : undefined,
    afterHours ? db.select({ date: holidays.date, recurring: holidays.recurring }).from(holidays) : [],
  ]);
  return chooseAutoReply(rules, {
    body: sms.body,
    at,
    timeZone: installation.timeZone,
    businessHours: businessHours?.windows ?? [],
    holidays: holidayRows,
    dnd: did.dnd || globalDnd?.enabled === true,
  });
}

const names = (...columns: SQLiteColumn[]): SQL =>
  sql.join(
    columns.map((c) => sql.identifier(c.name)),
    sql`, `,
  );

/**
 * The auto-reply's three statements: claim the ledger (only if the last reply is
 * older than the window), then the reply message and its send job, each only if
 * the previous statement changed a row. The reply is stamped 1 ms after the
 * message it answers, so the conversation shows it after that message.
 */
function autoReplyStatements(
  db: Db,
  args: {
    didId: string;
    didE164: string;
    sender: string;
    text: string;
    replyId: string;
    jobId: string;
    nowMs: number;
  },
) {
  const { didId, didE164, sender, text, replyId, jobId, nowMs } = args;
  const payload: SmsSendPayload = { v: 1, messageId: replyId };
  return [
    db.run(sql`insert into ${autoReplyLedger} (${names(autoReplyLedger.didId, autoReplyLedger.sender, autoReplyLedger.lastSentAt)})
      values (${didId}, ${sender}, ${nowMs})
      on conflict (${names(autoReplyLedger.didId, autoReplyLedger.sender)}) do update
        set ${sql.identifier(autoReplyLedger.lastSentAt.name)} = excluded.${sql.identifier(autoReplyLedger.lastSentAt.name)}
        where ${autoReplyLedger.lastSentAt} < ${nowMs - AUTO_REPLY_WINDOW_MS}`),
    db.run(sql`insert into ${messages} (${names(
      messages.id,
      messages.direction,
      messages.didId,
      messages.fromNumber,
      messages.toNumber,
      messages.peerNumber,
      messages.body,
      messages.status,
      messages.isAutoReply,
      messages.createdAt,
      messages.updatedAt,
    )})
      select ${replyId}, 'outbound', ${didId}, ${didE164}, ${sender}, ${sender}, ${text}, 'queued', 1, ${nowMs + 1}, ${nowMs + 1}
      where changes() = 1`),
    db.run(sql`insert into ${jobs} (${names(
      jobs.id,
      jobs.kind,
      jobs.payload,
      jobs.status,
      jobs.attempts,
      jobs.maxAttempts,
      jobs.nextAttemptAt,
      jobs.idempotencyKey,
      jobs.createdAt,
      jobs.updatedAt,
    )})
      select ${jobId}, ${SMS_SEND}, ${JSON.stringify(payload)}, 'pending', 0, 10, ${nowMs}, ${smsSendKey(replyId)}, ${nowMs}, ${nowMs}
      where changes() = 1`),
  ] as const;
}

/**
 * Applies an inbound message once: stores it, queues its media downloads, its
 * email forward and its auto-reply. A duplicate MessageSid changes nothing.
 */
export async function applyInboundSms(
  deps: Pick<EdgeDeps, "db" | "clock" | "jobs" | "logger">,
  sms: InboundSms,
): Promise<InboundResult> {
  const { db } = deps;
  if (!(await claimWebhook(db, SMS_WEBHOOK_KIND, sms.messageSid))) {
    return { duplicate: true, messageId: undefined, autoReplyId: undefined };
  }
  try {
    const [existing] = await db
      .select({ id: messages.id })
      .from(messages)
      .where(eq(messages.twilioMessageSid, sms.messageSid));
    if (existing) return { duplicate: true, messageId: existing.id, autoReplyId: undefined };

    const nowMs = deps.clock.now();
    const now = new Date(nowMs);
    const [did] = await db
      .select({ id: dids.id, e164: dids.e164, dnd: dids.dnd })
      .from(dids)
      .where(eq(dids.e164, sms.to));
    const [rule, messaging] = await Promise.all([
      did ? pickAutoReply(db, did, sms, now) : null,
      readSetting(db, "messaging"),
    ]);

    const messageId = crypto.randomUUID();
    const insertMessage = db.insert(messages).values({
      id: messageId,
      direction: "inbound",
      didId: did?.id ?? null,
      fromNumber: sms.from,
      toNumber: sms.to,
      peerNumber: sms.from,
      body: sms.body,
      status: "received",
      twilioMessageSid: sms.messageSid,
      createdAt: now,
      updatedAt: now,
    });
    const mediaJobs = sms.media.map((item, index) => {
      const payload: SmsMediaPayload = {
        v: 1,
        messageId,
        index,
        total: sms.media.length,
        url: item.url,
        contentType: item.contentType,
      };
      return db
        .insert(jobs)
        .values({
          kind: SMS_MEDIA_DOWNLOAD,
          payload,
          idempotencyKey: smsMediaKey(messageId, index),
          nextAttemptAt: now,
        })
        .onConflictDoNothing({ target: jobs.idempotencyKey });
    });
    // With media the last download enqueues the forward, so the email carries the files.
    const forwardNow = messaging.forwardToEmail && sms.media.length === 0;
    const forwardPayload: SmsForwardPayload = { v: 1, messageId };
    const forwardJob = forwardNow
      ? [
          db
            .insert(jobs)
            .values({
              kind: SMS_FORWARD,
              payload: forwardPayload,
              idempotencyKey: smsForwardKey(messageId),
              nextAttemptAt: now,
            })
            .onConflictDoNothing({ target: jobs.idempotencyKey }),
        ]
      : [];
    const replyId = crypto.randomUUID();
    const reply =
      did && rule
        ? autoReplyStatements(db, {
            didId: did.id,
            didE164: did.e164,
            sender: sms.from,
            text: rule.text,
            replyId,
            jobId: crypto.randomUUID(),
            nowMs,
          })
        : [];

    const results = await db.batch([insertMessage, ...mediaJobs, ...forwardJob, ...reply]);
    // The reply's message insert is second to last of the batch when there is a rule.
    const replyInsert = reply.length > 0 ? results[results.length - 2] : undefined;
    const replied = (replyInsert as { rowsAffected?: number } | undefined)?.rowsAffected === 1;
    if (mediaJobs.length > 0 || forwardNow || replied) deps.jobs?.wake();
    deps.logger.info(
      {
        messageId,
        media: sms.media.length,
        autoReply: replied,
        ruleId: rule?.id,
        knownDid: did !== undefined,
      },
      "inbound sms stored",
    );
    return { duplicate: false, messageId, autoReplyId: replied ? replyId : undefined };
  } catch (err) {
    // Nothing of the batch was written: give the claim back so Twilio's retry is applied.
    await releaseWebhook(db, SMS_WEBHOOK_KIND, sms.messageSid).catch(() => undefined);
    throw err;
  }
}
