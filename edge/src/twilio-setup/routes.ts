/**
 * /api/setup/twilio (admin): the setup wizard's Twilio steps (SPEC §6). Each
 * step is idempotent and resumable: it answers what it did (created, reused,
 * updated) and the progress stored in the `setup` setting, and running it again
 * reuses what exists in the Twilio account instead of creating it twice.
 *
 *   POST /credentials        step "twilio": verify live, save
 *   GET  /numbers            the account's numbers (every page)
 *   GET  /numbers/available  numbers for sale
 *   POST /numbers/buy        step "numbers": buy one (once) and make it a DID
 *   POST /numbers/select     step "numbers": owned numbers become DIDs
 *   POST /sip-domain         step "sip_domain": Domain, credential list, credential, mapping
 *   POST /webhooks           step "webhooks": every DID's Voice/Fallback/Status/SMS URLs
 *   POST /fallback           step "fallback": deploy twilio-functions/
 *   POST /reconcile          voicemails the fallback took while the edge was down
 *   GET  /status             progress and what exists
 */
import { dids, e164Schema, setupSteps } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { asc, isNotNull } from "drizzle-orm";
import { requireAdmin } from "../auth/middleware.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import { errorEnvelopeSchema, errorResponses, jsonBody, jsonResponse } from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import { readSetting } from "../settings/store.ts";
import { twilioCredentials } from "../twilio/credentials.ts";
import { saveTwilioCredentials } from "./credentials-step.ts";
import { deployFallbackStep } from "./fallback-step.ts";
import { buyNumber, listOwnedNumbers, searchAvailableNumbers, selectNumbers } from "./numbers-step.ts";
import { readProgress } from "./progress.ts";
import { reconcileFallbackVoicemails } from "./reconcile.ts";
import { provisionSipDomain } from "./sip-domain-step.ts";
import { setNumberWebhooks } from "./webhooks-step.ts";

// --- schemas ----------------------------------------------------------------------

const progressSchema = z
  .object({
    completedSteps: z.array(z.enum(setupSteps)),
    completedAt: z.string().nullable(),
  })
  .openapi("SetupProgress");

const capabilitiesSchema = z.object({ voice: z.boolean(), sms: z.boolean(), mms: z.boolean() });
const actionSchema = z.enum(["created", "reused", "updated"]);

const credentialsBody = z
  .object({
    accountSid: z.string().regex(/^AC[0-9a-f]{32}$/, "must be an Account SID: AC followed by 32 hex digits"),
    authToken: z.string().trim().min(1, "required").max(256),
  })
  .strict()
  .openapi("TwilioCredentialsInput");

const credentialsResult = z
  .object({
    account: z.object({
      sid: z.string(),
      friendlyName: z.string(),
      status: z.string(),
      type: z.string().nullable(),
    }),
    action: z.enum(["saved", "unchanged", "replaced"]),
    environmentOverride: z.boolean(),
    progress: progressSchema,
  })
  .openapi("TwilioCredentialsResult");

const ownedNumberSchema = z
  .object({
    sid: z.string(),
    phoneNumber: z.string(),
    friendlyName: z.string(),
    capabilities: capabilitiesSchema,
    voiceUrl: z.string().nullable(),
    smsUrl: z.string().nullable(),
    didId: z.string().nullable(),
  })
  .openapi("TwilioOwnedNumber");

const availableQuery = z.object({
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, "must be a two-letter country code like US")
    .default("US"),
  areaCode: z
    .string()
    .regex(/^\d{2,5}$/, "must be 2–5 digits")
    .optional(),
  contains: z
    .string()
    .regex(/^[0-9A-Za-z*]{1,16}$/, "digits, letters or * (1–16)")
    .optional(),
  limit: z.coerce.number().int().min(1).max(50).default(20),
});

const availableNumberSchema = z
  .object({
    phoneNumber: z.string(),
    friendlyName: z.string(),
    locality: z.string().nullable(),
    region: z.string().nullable(),
    country: z.string().nullable(),
    capabilities: capabilitiesSchema,
  })
  .openapi("TwilioAvailableNumber");

const selectedDidSchema = z
  .object({
    didId: z.string(),
    e164: z.string(),
    twilioSid: z.string(),
    label: z.string(),
    action: z.enum(["created", "updated", "unchanged"]),
  })
  .openapi("SelectedDid");

const phoneNumberSid = z.string().regex(/^PN[0-9a-f]{32}$/, "must be a Twilio phone number SID (PN…)");
const selectBody = z
  .object({
    sids: z
      .array(phoneNumberSid)
      .min(1)
      .max(50)
      .refine((s) => new Set(s).size === s.length, "SIDs must not repeat"),
  })
  .strict()
  .openapi("SelectNumbersInput");

const buyBody = z.object({ phoneNumber: e164Schema }).strict().openapi("BuyNumberInput");

const sipDomainBody = z
  .object({
    /** "home" or "home.sip.twilio.com"; default: the saved one, else derived from the Account SID. */
    domainName: z.string().min(1).max(80).optional(),
  })
  .strict()
  .openapi("SipDomainInput");

const sipDomainResult = z
  .object({
    sipDomain: z.object({
      sid: z.string(),
      domainName: z.string(),
      voiceUrl: z.string(),
      action: actionSchema,
    }),
    credentialList: z.object({ sid: z.string(), action: actionSchema }),
    credential: z.object({ username: z.string(), action: actionSchema }),
    mapping: z.object({ action: z.enum(["created", "reused"]) }),
    relayInboundCredentials: z.enum(["created", "reused"]),
    progress: progressSchema,
  })
  .openapi("SipDomainResult");

const pointedNumberSchema = z
  .object({
    didId: z.string(),
    e164: z.string(),
    twilioSid: z.string(),
    voiceUrl: z.string(),
    voiceFallbackUrl: z.string().nullable(),
    smsUrl: z.string(),
    statusCallback: z.string(),
  })
  .openapi("PointedNumber");

const fallbackBody = z
  .object({
    /** While the edge is down, inbound SMS are forwarded to this number (none: kept in Twilio). */
    forwardSmsTo: e164Schema.nullable().optional(),
  })
  .strict()
  .openapi("FallbackInput");

const fallbackResult = z
  .object({
    deployed: z.boolean(),
    skipped: z.string().nullable(),
    serviceName: z.string(),
    serviceSid: z.string().nullable(),
    fallbackUrl: z.string().nullable(),
    numbers: z.array(pointedNumberSchema),
    plan: z.object({ functions: z.array(z.string()), env: z.array(z.string()), runtime: z.string() }),
    progress: progressSchema,
  })
  .openapi("FallbackResult");

const reconcileBody = z.object({ since: z.iso.datetime().optional() }).strict().openapi("ReconcileInput");

const reconcileResult = z
  .object({
    since: z.string(),
    checked: z.number().int(),
    created: z.array(
      z.object({
        recordingSid: z.string(),
        callSid: z.string().nullable(),
        voicemailId: z.string(),
        from: z.string(),
        durationSeconds: z.number().int(),
      }),
    ),
    skipped: z.array(z.object({ recordingSid: z.string(), reason: z.string() })),
  })
  .openapi("ReconcileResult");

const statusSchema = z
  .object({
    progress: progressSchema,
    twilio: z
      .object({
        accountSid: z.string(),
        /** "environment": TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN override the saved credentials. */
        credentialsSource: z.enum(["environment", "settings"]),
        sipDomainSid: z.string().nullable(),
        sipDomainName: z.string().nullable(),
        credentialListSid: z.string().nullable(),
        sipUsername: z.string().nullable(),
        fallbackServiceSid: z.string().nullable(),
        fallbackUrl: z.string().nullable(),
      })
      .nullable(),
    numbers: z.array(
      z.object({ didId: z.string(), e164: z.string(), twilioSid: z.string(), label: z.string() }),
    ),
    relayInboundCredentials: z.boolean(),
  })
  .openapi("TwilioSetupStatus");

/** Error statuses of the steps that call Twilio: 400 (Twilio refused), 409 (step order), 502 (unavailable). */
const twilioErrors = {
  ...errorResponses(400, 401, 403, 409),
  502: {
    description:
      "Twilio is unavailable or unreachable (unavailable); details carry Twilio's code and message",
    content: { "application/json": { schema: errorEnvelopeSchema } },
  },
};

// --- routes -----------------------------------------------------------------------

const tags = ["setup"];

const credentialsRoute = createRoute({
  method: "post",
  path: "/credentials",
  tags,
  summary: "Verify Twilio credentials live and save them (step twilio)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(credentialsBody) },
  responses: { 200: jsonResponse(credentialsResult, "Verified and saved"), ...twilioErrors },
});

const numbersRoute = createRoute({
  method: "get",
  path: "/numbers",
  tags,
  summary: "Phone numbers the Twilio account owns",
  middleware: [requireAdmin] as const,
  request: { query: pageQuery },
  responses: { 200: jsonResponse(pageOf(ownedNumberSchema), "A page of owned numbers"), ...twilioErrors },
});

const availableRoute = createRoute({
  method: "get",
  path: "/numbers/available",
  tags,
  summary: "Local numbers for sale",
  middleware: [requireAdmin] as const,
  request: { query: availableQuery },
  responses: {
    200: jsonResponse(z.object({ items: z.array(availableNumberSchema) }), "Numbers for sale"),
    ...twilioErrors,
  },
});

const buyRoute = createRoute({
  method: "post",
  path: "/numbers/buy",
  tags,
  summary: "Buy a number (not again if the account owns it) and make it a DID (step numbers)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(buyBody) },
  responses: {
    200: jsonResponse(
      z.object({
        number: ownedNumberSchema,
        action: z.enum(["bought", "already_owned"]),
        did: selectedDidSchema,
        progress: progressSchema,
      }),
      "The number and its DID",
    ),
    ...twilioErrors,
  },
});

const selectRoute = createRoute({
  method: "post",
  path: "/numbers/select",
  tags,
  summary: "Make owned numbers GoSIP DIDs (step numbers)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(selectBody) },
  responses: {
    200: jsonResponse(z.object({ dids: z.array(selectedDidSchema), progress: progressSchema }), "The DIDs"),
    ...twilioErrors,
  },
});

const sipDomainRoute = createRoute({
  method: "post",
  path: "/sip-domain",
  tags,
  summary: "Create or reuse the SIP Domain, credential list, relay credential and mapping (step sip_domain)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(sipDomainBody) },
  responses: { 200: jsonResponse(sipDomainResult, "What exists now"), ...twilioErrors },
});

const webhooksRoute = createRoute({
  method: "post",
  path: "/webhooks",
  tags,
  summary: "Point every DID's Twilio number at the edge (step webhooks)",
  middleware: [requireAdmin] as const,
  responses: {
    200: jsonResponse(
      z.object({ numbers: z.array(pointedNumberSchema), progress: progressSchema }),
      "Pointed",
    ),
    ...twilioErrors,
  },
});

const fallbackRoute = createRoute({
  method: "post",
  path: "/fallback",
  tags,
  summary: "Deploy the voicemail fallback function (step fallback)",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(fallbackBody) },
  responses: { 200: jsonResponse(fallbackResult, "Deployed, or why not"), ...twilioErrors },
});

const reconcileRoute = createRoute({
  method: "post",
  path: "/reconcile",
  tags,
  summary: "Turn recordings the fallback took while the edge was down into voicemails",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(reconcileBody) },
  responses: { 200: jsonResponse(reconcileResult, "What was created and skipped"), ...twilioErrors },
});

const statusRoute = createRoute({
  method: "get",
  path: "/status",
  tags,
  summary: "Wizard progress and what the Twilio setup holds",
  middleware: [requireAdmin] as const,
  responses: { 200: jsonResponse(statusSchema, "Progress"), ...errorResponses(401, 403) },
});

export const twilioSetupRouter = createRouter()
  .openapi(credentialsRoute, async (c) => {
    return c.json(await saveTwilioCredentials(c.get("deps"), c.req.valid("json")), 200);
  })
  .openapi(numbersRoute, async (c) => {
    const { limit, offset } = c.req.valid("query");
    const all = await listOwnedNumbers(c.get("deps"));
    return c.json({ items: all.slice(offset, offset + limit), total: all.length, limit, offset }, 200);
  })
  .openapi(availableRoute, async (c) => {
    return c.json({ items: await searchAvailableNumbers(c.get("deps"), c.req.valid("query")) }, 200);
  })
  .openapi(buyRoute, async (c) => {
    return c.json(await buyNumber(c.get("deps"), c.req.valid("json").phoneNumber), 200);
  })
  .openapi(selectRoute, async (c) => {
    return c.json(await selectNumbers(c.get("deps"), c.req.valid("json").sids), 200);
  })
  .openapi(sipDomainRoute, async (c) => {
    return c.json(await provisionSipDomain(c.get("deps"), c.req.valid("json")), 200);
  })
  .openapi(webhooksRoute, async (c) => {
    return c.json(await setNumberWebhooks(c.get("deps")), 200);
  })
  .openapi(fallbackRoute, async (c) => {
    return c.json(await deployFallbackStep(c.get("deps"), c.req.valid("json")), 200);
  })
  .openapi(reconcileRoute, async (c) => {
    const { since } = c.req.valid("json");
    const result = await reconcileFallbackVoicemails(c.get("deps"), {
      since: since === undefined ? undefined : new Date(since),
    });
    return c.json(result, 200);
  })
  .openapi(statusRoute, async (c) => {
    const deps = c.get("deps");
    const [progress, saved, credentials, relay, numbers] = await Promise.all([
      readProgress(deps),
      readSetting(deps.db, "twilio"),
      twilioCredentials(deps),
      readSetting(deps.db, "relay"),
      deps.db
        .select({ didId: dids.id, e164: dids.e164, twilioSid: dids.twilioSid, label: dids.label })
        .from(dids)
        .where(isNotNull(dids.twilioSid))
        .orderBy(asc(dids.e164)),
    ]);
    return c.json(
      {
        progress: { completedSteps: progress.completedSteps, completedAt: progress.completedAt },
        twilio: credentials
          ? {
              accountSid: credentials.accountSid,
              credentialsSource: credentials.source,
              sipDomainSid: saved?.sipDomainSid ?? null,
              sipDomainName: saved?.sipDomainName ?? null,
              credentialListSid: saved?.credentialListSid ?? null,
              sipUsername: saved?.sipUsername ?? null,
              fallbackServiceSid: saved?.fallbackServiceSid ?? null,
              fallbackUrl: saved?.fallbackUrl ?? null,
            }
          : null,
        numbers: numbers.map((n) => ({ ...n, twilioSid: n.twilioSid ?? "" })),
        relayInboundCredentials: Boolean(relay.inboundUsername && relay.inboundPassword),
      },
      200,
    );
  });
