/**
 * The `sms.send` job: one outbound message to Twilio (POST Messages.json).
 *
 * Twilio's send is NOT idempotent: a blind retry after a request that timed out
 * (or whose connection broke) after reaching Twilio would text the person twice.
 * So when the runner flags the attempt ambiguous, the job first lists the
 * messages Twilio has from this DID to this peer since the message was queued
 * and adopts a matching one (same body, created after that, not already linked
 * to another row) instead of sending again.
 *
 * Outcomes: success stores the MessageSid and Twilio's status; a 4xx (21211
 * invalid number, 21610 unsubscribed, …) marks the message failed with the
 * error and gives up; 5xx, 429 and network failures are retried by the runner.
 */
import { type Db, messageMedia, messages } from "@gosip/drizzle";
import { and, eq, inArray, isNull } from "drizzle-orm";
import type { JobContext, JobHandler } from "../jobs/types.ts";
import { PermanentJobError } from "../jobs/types.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { openTwilioRest } from "../twilio/credentials.ts";
import { TwilioApiError, type TwilioRest } from "../twilio/rest.ts";
import { payloadString, type SmsSendPayload } from "./job-kinds.ts";
import { signedMediaUrl } from "./media.ts";
import { errorMessageFor, statusFromTwilio } from "./status.ts";

/** Path of the status callback webhook, under PUBLIC_URL. */
export const SMS_STATUS_PATH = "/api/webhooks/twilio/sms-status";

/** How far Twilio's clock may be behind ours when matching a message it created. */
const CLOCK_SKEW_MS = 60_000;

/** What the send job needs of Twilio's message resource. */
interface TwilioMessage {
  sid: string;
  status?: string;
  body?: string;
  from?: string;
  to?: string;
  direction?: string;
  date_created?: string;
  error_code?: number | null;
  error_message?: string | null;
}

interface MessageRow {
  id: string;
  direction: "inbound" | "outbound";
  fromNumber: string;
  toNumber: string;
  body: string;
  status: (typeof messages.$inferSelect)["status"];
  twilioMessageSid: string | null;
  /** When it was queued: created, or reset by a resend (a queued row is not updated otherwise). */
  queuedAt: Date;
}

async function loadMessage(db: Db, id: string): Promise<MessageRow | undefined> {
  const [row] = await db
    .select({
      id: messages.id,
      direction: messages.direction,
      fromNumber: messages.fromNumber,
      toNumber: messages.toNumber,
      body: messages.body,
      status: messages.status,
      twilioMessageSid: messages.twilioMessageSid,
      queuedAt: messages.updatedAt,
    })
    .from(messages)
    .where(eq(messages.id, id));
  return row;
}

/** Links the row to Twilio's message (only while it has none, so a retry can never relink it). */
async function adopt(deps: Pick<EdgeDeps, "db" | "clock">, row: MessageRow, found: TwilioMessage) {
  const status = statusFromTwilio(found.status) ?? "queued";
  const failed = status === "failed" || status === "undelivered";
  const code = typeof found.error_code === "number" ? found.error_code : undefined;
  await deps.db
    .update(messages)
    .set({
      twilioMessageSid: found.sid,
      status,
      ...(failed ? { errorCode: code ?? null, errorMessage: errorMessageFor(code) } : {}),
      updatedAt: new Date(deps.clock.now()),
    })
    .where(and(eq(messages.id, row.id), isNull(messages.twilioMessageSid)));
}

/** Marks a message that will not be sent as failed, with why. */
export async function markSendFailed(
  deps: Pick<EdgeDeps, "db" | "clock">,
  messageId: string,
  code: number | null,
  message: string,
): Promise<void> {
  await deps.db
    .update(messages)
    .set({ status: "failed", errorCode: code, errorMessage: message, updatedAt: new Date(deps.clock.now()) })
    .where(and(eq(messages.id, messageId), isNull(messages.twilioMessageSid), eq(messages.status, "queued")));
}

function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A message Twilio already has for this row (from an earlier, ambiguous attempt), or undefined. */
async function findEarlierSend(
  db: Db,
  rest: TwilioRest,
  row: MessageRow,
): Promise<TwilioMessage | undefined> {
  // Since this send was queued: a resent message's earlier, failed copy at Twilio is not this attempt.
  const since = row.queuedAt.getTime() - CLOCK_SKEW_MS;
  const page = await rest.request<{ messages?: TwilioMessage[] }>(
    "GET",
    "api",
    rest.accountPath("/Messages.json"),
    // "DateSent>" with "=" as the separator is Twilio's DateSent>=YYYY-MM-DD filter.
    { query: { To: row.toNumber, From: row.fromNumber, "DateSent>": utcDate(since), PageSize: 100 } },
  );
  const candidates = (page.messages ?? []).filter((m) => {
    if (typeof m.sid !== "string" || m.body !== row.body) return false;
    if (m.direction !== undefined && !m.direction.startsWith("outbound")) return false;
    const created = m.date_created ? Date.parse(m.date_created) : Number.NaN;
    return !Number.isNaN(created) && created >= since;
  });
  if (candidates.length === 0) return undefined;
  // A message already linked to another row (the same text sent twice) is not ours.
  const taken = await db
    .select({ sid: messages.twilioMessageSid })
    .from(messages)
    .where(
      inArray(
        messages.twilioMessageSid,
        candidates.map((m) => m.sid),
      ),
    );
  const takenSids = new Set(taken.map((t) => t.sid));
  const free = candidates.filter((m) => !takenSids.has(m.sid));
  // The newest free one: the attempt that just failed made the latest message. (A resend shortly
  // after a failure would otherwise adopt the failed original; two identical rows may swap
  // Twilio's messages between them, but each is sent exactly once.)
  free.sort((a, b) => Date.parse(b.date_created ?? "") - Date.parse(a.date_created ?? ""));
  return free[0];
}

export interface SmsSendOptions {
  /** How long the POST may take before it is abandoned (and the attempt is counted ambiguous). */
  timeoutMs?: number;
}

/** The `sms.send` handler; tests build one with a short timeout. */
export function createSmsSendHandler(options: SmsSendOptions = {}): JobHandler<SmsSendPayload> {
  return {
    service: "twilio",
    async run(ctx: JobContext<SmsSendPayload>) {
      const { deps } = ctx;
      const messageId = payloadString(ctx.job.payload, "messageId");
      const row = await loadMessage(deps.db, messageId);
      // Deleted, already linked to Twilio, or no longer waiting to be sent: nothing to do.
      if (row?.direction !== "outbound" || row.twilioMessageSid || row.status !== "queued") return;
      const rest = await openTwilioRest(deps);
      if (!rest) {
        await markSendFailed(deps, row.id, null, "Twilio is not set up: add the account in the setup wizard");
        throw new PermanentJobError("no Twilio credentials");
      }
      if (ctx.ambiguous) {
        const earlier = await findEarlierSend(deps.db, rest, row);
        if (earlier) {
          deps.logger.info(
            { messageId },
            "sms.send: an earlier ambiguous attempt reached Twilio; adopted it",
          );
          await adopt(deps, row, earlier);
          return;
        }
      }
      const media = await deps.db
        .select({ id: messageMedia.id })
        .from(messageMedia)
        .where(eq(messageMedia.messageId, row.id))
        .orderBy(messageMedia.blobKey);
      const now = deps.clock.now();
      const mediaUrls = await Promise.all(
        media.map((m) => signedMediaUrl(deps.config.publicUrl, rest.credentials.authToken, m.id, now)),
      );
      let sent: TwilioMessage;
      try {
        sent = await rest.request<TwilioMessage>("POST", "api", rest.accountPath("/Messages.json"), {
          form: {
            To: row.toNumber,
            From: row.fromNumber,
            Body: row.body === "" ? undefined : row.body,
            MediaUrl: mediaUrls.length > 0 ? mediaUrls : undefined,
            StatusCallback: `${deps.config.publicUrl}${SMS_STATUS_PATH}`,
          },
          timeoutMs: options.timeoutMs,
        });
      } catch (err) {
        if (err instanceof TwilioApiError && !err.retryable) {
          // Twilio refused this message (bad number, unsubscribed, …): sending it again cannot help.
          await markSendFailed(deps, row.id, err.code ?? null, errorMessageFor(err.code, err.message));
        }
        throw err;
      }
      if (typeof sent?.sid !== "string") throw new Error("Twilio accepted the message without a sid");
      await adopt(deps, row, sent);
    },
    async onGiveUp(ctx) {
      const messageId = payloadString(ctx.job.payload, "messageId");
      await markSendFailed(
        ctx.deps,
        messageId,
        null,
        "Twilio could not be reached after several attempts; resend to try again",
      );
    },
  };
}
