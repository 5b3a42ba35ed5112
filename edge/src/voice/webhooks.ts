/**
 * Voice webhooks, mounted under /api/webhooks/twilio after the signature check (the
 * verified form parameters come from `twilioParams(c)`):
 * - POST /voice: an inbound call to a DID → routing decision → TwiML (inbound.ts);
 * - POST /dial-result: the inbound `<Dial>`'s action → next step, voicemail or hang up;
 * - POST /sip-outbound: the SIP Domain's Voice URL → `<Dial callerId><Number>` (outbound.ts);
 * - POST /call-status: status callbacks and the outbound Dial action → CDR completed.
 * A body no Twilio call could send (no CallSid, a foreign action URL) answers 400 and
 * changes nothing; everything else answers TwiML.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { errorBody } from "../http/errors.ts";
import { createRouter } from "../http/router.ts";
import { twilioParams } from "../twilio/webhook.ts";
import { twiml, twimlResponse } from "../twiml/builder.ts";
import { completeCall } from "./call-status.ts";
import { answerDialResult } from "./dial-result.ts";
import { answerInboundCall, type InboundAnswer } from "./inbound.ts";
import { answerSipOutbound } from "./outbound.ts";

const twimlContent = { "text/xml": { schema: z.string() } };

const formBody = {
  description: "Twilio's form parameters (application/x-www-form-urlencoded, signed with X-Twilio-Signature)",
  content: { "application/x-www-form-urlencoded": { schema: { type: "object" as const } } },
};

function voiceRoute(path: string, summary: string, description: string) {
  return createRoute({
    method: "post",
    path,
    tags: ["webhooks"],
    summary,
    description,
    request: { body: formBody },
    responses: {
      200: { description: "TwiML for Twilio", content: twimlContent },
      400: { description: "Not a Twilio call's webhook (no CallSid, foreign action URL); nothing stored" },
      403: { description: "Invalid Twilio signature" },
    },
  });
}

const voice = voiceRoute(
  "/voice",
  "Inbound call to a DID (the number's Voice URL)",
  "CallSid, From, To, CallerName, StirVerstat, AddOns. Answers <Dial><Sip> to the relay, a forward, " +
    "voicemail, a message, or a rejection, as the routing rules decide; fails closed (busy) on any routing error.",
);
const dialResult = voiceRoute(
  "/dial-result",
  "Action of an inbound call's <Dial>",
  "DialCallStatus, DialCallDuration, DialSipResponseCode; the query is the step this edge wrote into the action.",
);
const sipOutbound = voiceRoute(
  "/sip-outbound",
  "Outbound call from a phone (the SIP Domain's Voice URL)",
  "CallSid, From sip:<extension>@<domain>, To sip:<number>@<domain>, SipHeader_X-GoSIP-Device. " +
    "The device's outbound policy is applied again; emergency numbers always go out.",
);
const callStatus = voiceRoute(
  "/call-status",
  "Call status callback, and the action of an outbound call's <Dial>",
  "CallSid with CallStatus and CallDuration (status callback) or DialCallStatus and DialCallDuration (action).",
);

function answer(c: Context<AppEnv>, result: InboundAnswer) {
  if (!result.ok) return c.json(errorBody("validation_failed", result.message), 400);
  return twimlResponse(twiml(result.verbs));
}

export const voiceWebhooks = createRouter()
  .openapi(voice, async (c) => answer(c, await answerInboundCall(c.get("deps"), twilioParams(c))))
  .openapi(dialResult, async (c) =>
    answer(c, await answerDialResult(c.get("deps"), twilioParams(c), new URL(c.req.url).searchParams)),
  )
  .openapi(sipOutbound, async (c) => answer(c, await answerSipOutbound(c.get("deps"), twilioParams(c))))
  .openapi(callStatus, async (c) => answer(c, await completeCall(c.get("deps"), twilioParams(c))));
