/**
 * SMS webhooks, mounted under /api/webhooks/twilio after the signature check
 * (twilio/webhook.ts), so the handlers only ever see verified parameters:
 *
 * - POST /sms: an incoming SMS/MMS (inbound.ts applies it once per MessageSid)
 *   answered with an empty TwiML `<Response/>`: replies go through the outbox,
 *   never as TwiML, so an auto-reply obeys the 30-minute ledger.
 * - POST /sms-status: delivery status of an outbound message; a status only
 *   moves forward (a late "sent" never undoes "delivered"), so callbacks in any
 *   order and repeated ones leave the right final state.
 */
import { messages } from "@gosip/drizzle";
import { createRoute } from "@hono/zod-openapi";
import { and, eq, inArray } from "drizzle-orm";
import { badRequest } from "../http/errors.ts";
import { errorResponses } from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import { twilioParams } from "../twilio/webhook.ts";
import { twiml, twimlResponse } from "../twiml/builder.ts";
import { applyInboundSms, InboundSmsError, parseInboundSms } from "./inbound.ts";
import { errorMessageFor, statusesBefore, statusFromTwilio } from "./status.ts";

const formBody = {
  description: "Twilio's form parameters (signed with X-Twilio-Signature)",
  content: { "application/x-www-form-urlencoded": { schema: { type: "object" as const } } },
};

const smsRoute = createRoute({
  method: "post",
  path: "/sms",
  tags: ["webhooks"],
  summary: "Incoming SMS/MMS (Twilio messaging webhook)",
  request: { body: formBody },
  responses: {
    200: { description: "Empty TwiML", content: { "text/xml": { schema: { type: "string" } } } },
    ...errorResponses(400),
  },
});

const statusRoute = createRoute({
  method: "post",
  path: "/sms-status",
  tags: ["webhooks"],
  summary: "Delivery status of an outbound message (Twilio StatusCallback)",
  request: { body: formBody },
  responses: { 204: { description: "Applied (or nothing to change)" }, ...errorResponses(400) },
});

const SID = /^[A-Z]{2}[0-9a-fA-F]{32}$/;

export const smsWebhooks = createRouter()
  .openapi(smsRoute, async (c) => {
    let sms: ReturnType<typeof parseInboundSms>;
    try {
      sms = parseInboundSms(twilioParams(c));
    } catch (err) {
      if (err instanceof InboundSmsError) throw badRequest(err.message);
      throw err;
    }
    await applyInboundSms(c.get("deps"), sms);
    return twimlResponse(twiml([]));
  })
  .openapi(statusRoute, async (c) => {
    const params = twilioParams(c);
    const sid = params.MessageSid ?? params.SmsSid ?? "";
    if (!SID.test(sid)) throw badRequest("MessageSid is missing or malformed");
    const next = statusFromTwilio(params.MessageStatus ?? params.SmsStatus);
    if (!next) return c.body(null, 204);
    const deps = c.get("deps");
    const failed = next === "failed" || next === "undelivered";
    const code = /^\d{1,6}$/.test(params.ErrorCode ?? "") ? Number(params.ErrorCode) : undefined;
    const updated = await deps.db
      .update(messages)
      .set({
        status: next,
        ...(failed ? { errorCode: code ?? null, errorMessage: errorMessageFor(code) } : {}),
        updatedAt: new Date(deps.clock.now()),
      })
      .where(
        and(
          eq(messages.twilioMessageSid, sid),
          eq(messages.direction, "outbound"),
          inArray(messages.status, statusesBefore(next)),
        ),
      )
      .returning({ id: messages.id });
    deps.logger.debug({ status: next, applied: updated.length > 0, errorCode: code }, "sms status callback");
    return c.body(null, 204);
  });
