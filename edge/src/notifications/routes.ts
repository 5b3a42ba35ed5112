/**
 * /api/notifications: the signed-in user's notification preferences (SPEC §9).
 * GET lists every event type (defaults filled in where the user saved nothing);
 * PUT changes the event types it names, all or nothing. Quiet hours are HH:MM in
 * the installation's time zone (answered alongside, so the UI can say which).
 * POST /test (admin) sends a test email or push to the admin right away, not
 * through the outbox, so the settings page can show at once whether it works.
 */
import { clockTimeSchema, type Db, notificationEventTypes, notificationPreferences } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { eq, sql } from "drizzle-orm";
import { currentUser, requireAdmin, requireUser } from "../auth/middleware.ts";
import { AppError } from "../http/errors.ts";
import { errorEnvelopeSchema, errorResponses, jsonBody, jsonResponse } from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import { PermanentJobError } from "../jobs/types.ts";
import { readSetting } from "../settings/store.ts";
import { deliverEmail } from "./email.ts";
import { deliverPush } from "./gotify.ts";
import { DEFAULT_PREFERENCE } from "./notify.ts";

const quietTime = clockTimeSchema.nullable().openapi({ example: "22:00" });

export const preferenceSchema = z
  .object({
    eventType: z.enum(notificationEventTypes),
    email: z.boolean(),
    gotify: z.boolean(),
    quietHoursStart: quietTime,
    quietHoursEnd: quietTime.openapi({ example: "07:00" }),
    /** True when the user never saved this event type (the defaults apply). */
    isDefault: z.boolean(),
  })
  .openapi("NotificationPreference");

const preferencesResponse = z
  .object({
    preferences: z.array(preferenceSchema),
    /** Time zone the quiet hours are read in (settings installation.timeZone). */
    timeZone: z.string(),
    /** Whether each channel is set up at all; a channel that is not delivers nothing. */
    channels: z.object({ email: z.boolean(), gotify: z.boolean() }),
  })
  .openapi("NotificationPreferences");

const preferenceInput = z
  .object({
    eventType: z.enum(notificationEventTypes),
    email: z.boolean(),
    gotify: z.boolean(),
    quietHoursStart: quietTime.default(null),
    quietHoursEnd: quietTime.default(null),
  })
  .strict()
  .superRefine((p, ctx) => {
    if ((p.quietHoursStart === null) !== (p.quietHoursEnd === null))
      ctx.addIssue({
        code: "custom",
        path: ["quietHoursEnd"],
        message: "set both quiet-hours start and end, or neither",
      });
    else if (p.quietHoursStart !== null && p.quietHoursStart === p.quietHoursEnd)
      ctx.addIssue({
        code: "custom",
        path: ["quietHoursEnd"],
        message: "quiet hours must not start and end at once",
      });
  });

const updateBody = z
  .object({ preferences: z.array(preferenceInput).min(1).max(notificationEventTypes.length) })
  .strict()
  .superRefine((b, ctx) => {
    const seen = new Set<string>();
    b.preferences.forEach((p, i) => {
      if (seen.has(p.eventType))
        ctx.addIssue({ code: "custom", path: ["preferences", i, "eventType"], message: "listed twice" });
      seen.add(p.eventType);
    });
  })
  .openapi("UpdateNotificationPreferences");

async function preferencesOf(db: Db, userId: string): Promise<z.infer<typeof preferencesResponse>> {
  const [rows, installation, email, gotify] = await Promise.all([
    db.select().from(notificationPreferences).where(eq(notificationPreferences.userId, userId)),
    readSetting(db, "installation"),
    readSetting(db, "email"),
    readSetting(db, "gotify"),
  ]);
  const byType = new Map(rows.map((r) => [r.eventType, r]));
  return {
    preferences: notificationEventTypes.map((eventType) => {
      const row = byType.get(eventType);
      return row
        ? {
            eventType,
            email: row.email,
            gotify: row.gotify,
            quietHoursStart: row.quietHoursStart,
            quietHoursEnd: row.quietHoursEnd,
            isDefault: false,
          }
        : { eventType, ...DEFAULT_PREFERENCE, quietHoursStart: null, quietHoursEnd: null, isDefault: true };
    }),
    timeZone: installation.timeZone,
    channels: { email: email.provider !== "none", gotify: gotify.enabled },
  };
}

const getRoute = createRoute({
  method: "get",
  path: "/preferences",
  tags: ["notifications"],
  summary: "My notification preferences, for every event type",
  middleware: [requireUser] as const,
  responses: { 200: jsonResponse(preferencesResponse, "Preferences"), ...errorResponses(401) },
});

const putRoute = createRoute({
  method: "put",
  path: "/preferences",
  tags: ["notifications"],
  summary: "Change my notification preferences for the event types listed",
  middleware: [requireUser] as const,
  request: { body: jsonBody(updateBody) },
  responses: {
    200: jsonResponse(preferencesResponse, "Preferences after the change"),
    ...errorResponses(400, 401),
  },
});

const testBody = z
  .object({ channel: z.enum(["email", "gotify"]) })
  .strict()
  .openapi("NotificationTest");

const testRoute = createRoute({
  method: "post",
  path: "/test",
  tags: ["notifications"],
  summary: "Send a test email or push to me now (admin)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(testBody) },
  responses: {
    200: jsonResponse(
      z
        .object({ channel: z.enum(["email", "gotify"]), delivered: z.literal(true) })
        .openapi("NotificationTestResult"),
      "The server accepted it",
    ),
    ...errorResponses(400, 401, 403),
    502: {
      description: "The mail or push server could not be reached or failed (unavailable)",
      content: { "application/json": { schema: errorEnvelopeSchema } },
    },
  },
});

export const notificationsRouter = createRouter()
  .openapi(getRoute, async (c) => {
    return c.json(await preferencesOf(c.get("deps").db, currentUser(c).id), 200);
  })
  .openapi(putRoute, async (c) => {
    const user = currentUser(c);
    const { db } = c.get("deps");
    const now = new Date(c.get("deps").clock.now());
    const [first, ...rest] = c.req.valid("json").preferences.map((p) =>
      db
        .insert(notificationPreferences)
        .values({ userId: user.id, ...p, updatedAt: now })
        .onConflictDoUpdate({
          target: [notificationPreferences.userId, notificationPreferences.eventType],
          set: {
            email: sql`excluded.email`,
            gotify: sql`excluded.gotify`,
            quietHoursStart: sql`excluded.quiet_hours_start`,
            quietHoursEnd: sql`excluded.quiet_hours_end`,
            updatedAt: now,
          },
        }),
    );
    // One batch: every listed type changes, or none does.
    if (first) await db.batch([first, ...rest]);
    return c.json(await preferencesOf(db, user.id), 200);
  })
  .openapi(testRoute, async (c) => {
    const user = currentUser(c);
    const deps = c.get("deps");
    const { channel } = c.req.valid("json");
    const subject = "GoSIP test notification";
    const text = `This is a test ${channel === "email" ? "email" : "push"} from GoSIP. If you can read it, notifications work.`;
    try {
      if (channel === "email")
        await deliverEmail(
          deps,
          { v: 1, type: "test", to: user.email, toName: user.name, subject, text, attachments: [] },
          `notification-test:${crypto.randomUUID()}`,
        );
      else await deliverPush(deps, { v: 1, type: "test", title: subject, message: text, priority: 5 });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Permanent: the settings are wrong (fix them); otherwise the server is down or slow right now.
      if (err instanceof PermanentJobError)
        throw new AppError(400, "bad_request", `Not delivered: ${message}`);
      throw new AppError(502, "unavailable", `Not delivered: ${message}`);
    }
    return c.json({ channel, delivered: true as const }, 200);
  });
