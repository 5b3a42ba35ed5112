/**
 * Webhook idempotency: Twilio retries and duplicates webhooks, so each handler
 * claims (kind, sid) in `processed_webhooks` before it changes anything. Only
 * the first claim wins; a duplicate changes nothing and gets the same kind of
 * answer. Kinds name the event, e.g. "voice", "recording.completed", "sms".
 */
import { type Db, processedWebhooks } from "@gosip/drizzle";
import { and, eq } from "drizzle-orm";

/** True for the first claim of (kind, sid); false for a duplicate. */
export async function claimWebhook(db: Db, kind: string, sid: string): Promise<boolean> {
  const inserted = await db
    .insert(processedWebhooks)
    .values({ kind, sid })
    .onConflictDoNothing()
    .returning({ sid: processedWebhooks.sid });
  return inserted.length > 0;
}

/** Gives a claim back (the handler failed before changing anything), so Twilio's retry is processed. */
export async function releaseWebhook(db: Db, kind: string, sid: string): Promise<void> {
  await db
    .delete(processedWebhooks)
    .where(and(eq(processedWebhooks.kind, kind), eq(processedWebhooks.sid, sid)));
}
