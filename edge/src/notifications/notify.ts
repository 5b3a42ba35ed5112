/**
 * Telling people that something happened (SPEC §9): a voicemail, a missed call,
 * an SMS, a device offline, a degraded service, storage filling up. `notify`
 * decides who gets what on which channel and enqueues the outbox jobs
 * (`email.send`, `gotify.push`); it never talks to a mail or push server itself,
 * so a webhook that calls it stays fast and nothing is lost when a server is down.
 *
 * - Recipients: the given users, or every admin when none are given.
 * - Per user and event type, notification_preferences decides the channels
 *   (no row: email on, Gotify off).
 * - Quiet hours (installation time zone) hold the push until they end: the
 *   Gotify job is enqueued with its first attempt at the end of the quiet hours,
 *   so the phone buzzes in the morning instead of never. Email is never held
 *   (it does not wake anyone).
 * - Gotify is one installation-wide application (settings `gotify`), so a
 *   notification is pushed once, not once per recipient: when several recipients
 *   want it, it goes out as soon as one of them is outside quiet hours.
 * - Channels that are not configured (email provider "none", Gotify disabled)
 *   are skipped here rather than failing later in the outbox.
 */
import {
  inDailyRange,
  type JobPayload,
  type NotificationEventType,
  notificationPreferences,
  users,
} from "@gosip/drizzle";
import { and, eq, inArray } from "drizzle-orm";
import { enqueueJob } from "../jobs/queue.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";

export interface NotificationAttachment {
  filename: string;
  contentType: string;
  /** Key in the blob store; read when the email is sent. */
  blobKey: string;
}

export interface Notification {
  type: NotificationEventType;
  /** Recipients; absent: every admin. */
  userIds?: string[];
  subject: string;
  text: string;
  html?: string;
  attachments?: NotificationAttachment[];
  /** Where the UI shows the thing (appended to the email, click URL of the push). */
  link?: string;
  /** Stable per event (e.g. `voicemail:${voicemailId}`): notifying twice for it sends nothing new. */
  idempotencyKey: string;
}

export interface NotifyResult {
  /** Email jobs newly enqueued. */
  emails: number;
  /** Whether a push was newly enqueued. */
  pushed: boolean;
  /** When the push will go out, if quiet hours hold it. */
  pushHeldUntil: Date | null;
}

/** Channel defaults when a user has no preference row for an event type. */
export const DEFAULT_PREFERENCE = { email: true, gotify: false } as const;

/** Gotify priorities (0–10): what can wait stays quiet, a failing PBX is loud. */
const GOTIFY_PRIORITY: Record<NotificationEventType, number> = {
  voicemail: 5,
  missed_call: 4,
  sms: 5,
  device_offline: 6,
  service_degraded: 8,
  storage_high: 7,
};

/** Minutes since local midnight of `instant` in `timeZone`. */
function localMinutes(instant: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(instant);
  const hour = Number(parts.find((p) => p.type === "hour")?.value ?? 0);
  const minute = Number(parts.find((p) => p.type === "minute")?.value ?? 0);
  return hour * 60 + minute;
}

/**
 * The first instant at or after `now` outside the daily range start–end in `timeZone`
 * (now itself when outside): the next local `end`. The wall-clock distance is a first
 * guess; a DST change inside the range moves it by the offset change, so the guess is
 * corrected until its local time is `end` (and stepped on if `end` does not exist that day).
 */
export function quietHoursEnd(start: string, end: string, now: Date, timeZone: string): Date {
  if (!inDailyRange(start, end, now, timeZone)) return now;
  const [eh = 0, em = 0] = end.split(":").map(Number);
  const endMinutes = eh * 60 + em;
  const minutesLeft = (endMinutes - localMinutes(now, timeZone) + 1440) % 1440 || 1440;
  let at = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + minutesLeft * 60_000);
  for (let i = 0; i < 3; i += 1) {
    const diff = ((endMinutes - localMinutes(at, timeZone) + 1440 + 720) % 1440) - 720;
    if (diff === 0) break;
    at = new Date(at.getTime() + diff * 60_000);
  }
  // `end` skipped by a DST jump, or a correction that overshot: walk on in 15-minute steps (bounded).
  for (let i = 0; i < 16 && (at <= now || inDailyRange(start, end, at, timeZone)); i += 1)
    at = new Date(at.getTime() + 15 * 60_000);
  return at;
}

/** Decides channels per recipient and enqueues the email and push jobs (idempotent per key). */
export async function notify(
  deps: Pick<EdgeDeps, "db" | "clock" | "jobs" | "logger">,
  n: Notification,
): Promise<NotifyResult> {
  const recipients = await deps.db
    .select({ id: users.id, email: users.email, name: users.name })
    .from(users)
    .where(n.userIds ? inArray(users.id, n.userIds) : eq(users.role, "admin"));
  const result: NotifyResult = { emails: 0, pushed: false, pushHeldUntil: null };
  if (recipients.length === 0) {
    deps.logger.info({ type: n.type }, "notification has no recipients");
    return result;
  }
  const prefs = await deps.db
    .select()
    .from(notificationPreferences)
    .where(
      and(
        inArray(
          notificationPreferences.userId,
          recipients.map((r) => r.id),
        ),
        eq(notificationPreferences.eventType, n.type),
      ),
    );
  const prefOf = new Map(prefs.map((p) => [p.userId, p]));
  const [email, gotify, installation] = await Promise.all([
    readSetting(deps.db, "email"),
    readSetting(deps.db, "gotify"),
    readSetting(deps.db, "installation"),
  ]);
  const now = new Date(deps.clock.now());

  let pushAt: Date | null = null;
  for (const user of recipients) {
    const pref = prefOf.get(user.id);
    const wantsEmail = pref?.email ?? DEFAULT_PREFERENCE.email;
    const wantsPush = pref?.gotify ?? DEFAULT_PREFERENCE.gotify;
    if (wantsEmail && email.provider !== "none") {
      const payload: JobPayload = {
        v: 1,
        type: n.type,
        userId: user.id,
        to: user.email,
        toName: user.name,
        subject: n.subject,
        text: n.text,
        ...(n.html !== undefined ? { html: n.html } : {}),
        ...(n.link !== undefined ? { link: n.link } : {}),
        attachments: (n.attachments ?? []).map((a) => ({
          filename: a.filename,
          contentType: a.contentType,
          blobKey: a.blobKey,
        })),
      };
      const { created } = await enqueueJob(deps, {
        kind: "email.send",
        payload,
        idempotencyKey: `${n.idempotencyKey}:${user.id}:email`,
      });
      if (created) result.emails += 1;
    }
    if (wantsPush && gotify.enabled) {
      const start = pref?.quietHoursStart;
      const end = pref?.quietHoursEnd;
      const at = start && end ? quietHoursEnd(start, end, now, installation.timeZone) : now;
      if (pushAt === null || at < pushAt) pushAt = at;
    }
  }

  if (pushAt !== null) {
    const payload: JobPayload = {
      v: 1,
      type: n.type,
      title: n.subject,
      message: n.text,
      priority: GOTIFY_PRIORITY[n.type],
      ...(n.link !== undefined ? { link: n.link } : {}),
    };
    const { created } = await enqueueJob(deps, {
      kind: "gotify.push",
      payload,
      idempotencyKey: `${n.idempotencyKey}:gotify`,
      runAt: pushAt,
    });
    result.pushed = created;
    if (created && pushAt > now) result.pushHeldUntil = pushAt;
  }
  return result;
}
