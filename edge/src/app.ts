/**
 * The edge application: one hono app, the same on Node and on Workers.
 * Feature folders each export a router; this file only mounts them.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { sessionMiddleware } from "./auth/middleware.ts";
import { authRouter } from "./auth/routes.ts";
import { setupRouter } from "./auth/setup.ts";
import { blocklistRouter } from "./blocklist/routes.ts";
import { cdrsRouter } from "./cdrs/routes.ts";
import { devicesRouter } from "./devices/routes.ts";
import { didsRouter } from "./dids/routes.ts";
import type { AppEnv } from "./env.ts";
import { errorBody, handleError } from "./http/errors.ts";
import { messagesRouter } from "./messages/routes.ts";
import { smsWebhooks } from "./messages/webhooks.ts";
import { notificationsRouter } from "./notifications/routes.ts";
import type { EdgeDeps } from "./platform/types.ts";
import { recordingsRouter } from "./recordings/routes.ts";
import { relayLinkRouter } from "./relay/link-routes.ts";
import { relayRouter } from "./relay/routes.ts";
import { relayUploadsRouter } from "./relay/uploads.ts";
import { rulesRouter } from "./rules/routes.ts";
import { settingsRouter } from "./settings/routes.ts";
import { mountApiDocs } from "./system/docs.ts";
import { systemRouter } from "./system/health.ts";
import { verifyTwilioWebhook } from "./twilio/webhook.ts";
import { twilioSetupRouter } from "./twilio-setup/routes.ts";
import { usersRouter } from "./users/routes.ts";
import { voiceWebhooks } from "./voice/webhooks.ts";
import { voicemailsRouter } from "./voicemail/routes.ts";
import { voicemailWebhooks } from "./voicemail/webhooks.ts";

/** Largest JSON body the API reads. */
export const API_BODY_LIMIT_BYTES = 256 * 1024;

const BODYLESS_METHODS = new Set(["GET", "HEAD"]);

/**
 * Binary uploads, each route applying its own size limit: recordings from the relay
 * (relay/uploads.ts), voicemail greetings (voicemail/), MMS images to send (messages/).
 */
const isUpload = (method: string, path: string): boolean =>
  (method === "PUT" && path.startsWith("/api/relay/recordings/")) ||
  (method === "PUT" && path.startsWith("/api/voicemails/greetings/")) ||
  (method === "POST" && path === "/api/messages/media");

export interface AppOptions {
  /** Resolves the client IP for a request: socket address on Node, CF-Connecting-IP on Workers. */
  clientIp: (req: Request, env: unknown) => string;
}

export function createApp(deps: EdgeDeps, options: AppOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", async (c, next) => {
    c.set("deps", deps);
    c.set("clientIp", options.clientIp(c.req.raw, c.env));
    c.set("user", undefined);
    c.set("sessionId", undefined);
    await next();
  });
  // JSON API bodies are small; anything larger is refused before it is read (uploads get their own limits).
  const limitBody = bodyLimit({
    maxSize: API_BODY_LIMIT_BYTES,
    onError: (c) => c.json(errorBody("payload_too_large", "The request body is too large"), 413),
  });
  // GET/HEAD carry no body. Skipping the check for them matters on Node: asking for the body makes
  // @hono/node-server build a full fetch Request (and AbortController) that a GET never needs.
  app.use("/api/*", (c, next) =>
    BODYLESS_METHODS.has(c.req.method) || isUpload(c.req.method, c.req.path) ? next() : limitBody(c, next),
  );
  // Twilio webhooks: signature checked over PUBLIC_URL before any handler (403 otherwise); no session.
  app.use("/api/webhooks/twilio/*", verifyTwilioWebhook);
  app.route("/api/webhooks/twilio", voiceWebhooks);
  app.route("/api/webhooks/twilio", voicemailWebhooks);
  app.route("/api/webhooks/twilio", smsWebhooks);
  app.use("*", sessionMiddleware);
  app.route("/api/setup/twilio", twilioSetupRouter);
  app.route("/api/setup", setupRouter);
  app.route("/api/auth", authRouter);
  app.route("/api/system", systemRouter);
  mountApiDocs(app);
  app.route("/api/users", usersRouter);
  app.route("/api/devices", devicesRouter);
  app.route("/api/relay", relayRouter);
  app.route("/api/relay", relayLinkRouter);
  app.route("/api/relay", relayUploadsRouter);
  app.route("/api/cdrs", cdrsRouter);
  app.route("/api/recordings", recordingsRouter);
  app.route("/api/blocklist", blocklistRouter);
  app.route("/api/dids", didsRouter);
  app.route("/api/routes", rulesRouter);
  app.route("/api/settings", settingsRouter);
  app.route("/api/voicemails", voicemailsRouter);
  app.route("/api/messages", messagesRouter);
  app.route("/api/notifications", notificationsRouter);
  app.onError(handleError);
  app.notFound((c) => c.json(errorBody("not_found", "No such endpoint"), 404));
  return app;
}
