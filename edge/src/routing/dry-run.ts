/**
 * The routing dry run: "what happens if +1… calls this DID at time T", for the
 * admin UI. It loads the same snapshot the voice webhook loads and runs the same
 * decision, optionally as if every enabled device were registered (so a rule
 * can be tried before the phones are plugged in), and answers the decision with
 * a one-line summary and the reasons step by step. Nothing is stored.
 */
import { audioSourceSchema, dids, e164Schema } from "@gosip/drizzle";
import { z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { notFound } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { decideSafely } from "./evaluate.ts";
import { loadRoutingSnapshot, StoredRuleError } from "./snapshot.ts";
import { MAX_ADDONS_LENGTH, spamScore } from "./spam.ts";
import { summarizeDecision } from "./summary.ts";
import type { RoutingDecision, RoutingSnapshot } from "./types.ts";

export const dryRunRequestSchema = z
  .object({
    to: z
      .string()
      .trim()
      .min(1)
      .max(64)
      .openapi({ description: "The DID called: its E.164 number or its id", example: "+15551230001" }),
    from: z.string().max(64).openapi({
      description: 'Caller as Twilio would send it: E.164, "anonymous", "" …',
      example: "+15557654321",
    }),
    at: z.iso.datetime({ offset: true }).optional().openapi({
      description: "When the call happens (ISO 8601); default now",
      example: "2026-03-08T07:30:00Z",
    }),
    stirVerstat: z.string().max(64).optional().openapi({ example: "TN-Validation-Passed-A" }),
    addOns: z
      .union([z.string().max(MAX_ADDONS_LENGTH), z.record(z.string(), z.unknown())])
      .optional()
      .openapi({ description: "Twilio's AddOns parameter: its JSON text, or the parsed object" }),
    assumeRegistered: z
      .boolean()
      .default(false)
      .openapi({ description: "Treat every enabled device as registered and the relay as connected" }),
  })
  .strict()
  .openapi("RoutingDryRun");
export type DryRunRequest = z.infer<typeof dryRunRequestSchema>;

const stepSchema = z.object({
  step: z.enum(["blocklist", "anonymous", "spam", "dnd", "rule", "default", "targets", "error"]),
  outcome: z.enum(["pass", "match", "skip"]),
  detail: z.string(),
  ruleId: z.string().optional(),
});

const decisionBase = {
  spamScore: z.number().min(0).max(1).nullable(),
  ruleId: z.string().nullable(),
  trace: z.array(stepSchema),
};
const onNoAnswer = z.enum(["voicemail", "hangup"]);

/** RoutingDecision (types.ts) for the OpenAPI document. */
export const routingDecisionSchema = z
  .discriminatedUnion("action", [
    z.object({
      ...decisionBase,
      action: z.literal("reject"),
      reason: z.enum(["blocklist", "anonymous", "spam", "rule", "error"]),
      rejectAs: z.enum(["busy", "disconnected"]),
    }),
    z.object({
      ...decisionBase,
      action: z.literal("voicemail"),
      reason: z.enum(["blocklist", "dnd", "rule", "no_targets", "nobody_registered", "relay_offline"]),
    }),
    z.object({
      ...decisionBase,
      action: z.literal("ring"),
      targets: z.array(z.object({ deviceId: z.string(), extension: z.string() })),
      strategy: z.enum(["simultaneous", "sequential"]),
      timeoutSeconds: z.int(),
      onNoAnswer,
      record: z.boolean(),
    }),
    z.object({
      ...decisionBase,
      action: z.literal("forward"),
      to: z.string(),
      callerId: z.enum(["original", "did"]),
      timeoutSeconds: z.int(),
      onNoAnswer,
    }),
    z.object({ ...decisionBase, action: z.literal("playMessage"), message: audioSourceSchema }),
  ])
  .openapi("RoutingDecision");

export const dryRunResponseSchema = z
  .object({
    did: z.object({ id: z.string(), e164: z.string() }),
    at: z.iso.datetime(),
    decision: routingDecisionSchema,
    summary: z.string().openapi({ example: "Rings Alice's Desk phone (101) for 30 s, then voicemail" }),
    reasons: z.array(z.string()),
  })
  .openapi("RoutingDryRunResult");
export type DryRunResponse = z.infer<typeof dryRunResponseSchema>;

/** The DID `to` names (E.164 number or id); 404 when there is no such DID. */
async function didOf(deps: Pick<EdgeDeps, "db">, to: string): Promise<{ id: string; e164: string }> {
  if (to.startsWith("+") && !e164Schema.safeParse(to).success) throw notFound("DID");
  const [row] = await deps.db
    .select({ id: dids.id, e164: dids.e164 })
    .from(dids)
    .where(to.startsWith("+") ? eq(dids.e164, to) : eq(dids.id, to));
  if (!row) throw notFound("DID");
  return row;
}

function assumingRegistered(s: RoutingSnapshot): RoutingSnapshot {
  const devices = new Map([...s.devices].map(([id, d]) => [id, { ...d, registered: d.enabled }]));
  return { ...s, devices, relayOnline: true };
}

/** Runs the dry run; throws AppError 404 for an unknown DID. */
export async function dryRunRouting(
  deps: Pick<EdgeDeps, "db" | "clock" | "relayChannel" | "logger">,
  body: DryRunRequest,
): Promise<DryRunResponse> {
  const did = await didOf(deps, body.to);
  const now = new Date(deps.clock.now());
  const at = body.at ? new Date(body.at) : now;
  const addOns =
    typeof body.addOns === "string" || body.addOns === undefined ? body.addOns : JSON.stringify(body.addOns);
  let loaded: RoutingSnapshot | null;
  try {
    loaded = await loadRoutingSnapshot(deps, did.e164, now, { caller: body.from });
  } catch (err) {
    // A stored rule that cannot be evaluated rejects every call: that is the answer to show.
    if (!(err instanceof StoredRuleError)) throw err;
    const decision: RoutingDecision = {
      action: "reject",
      reason: "error",
      rejectAs: "busy",
      spamScore: spamScore(body.stirVerstat, addOns),
      ruleId: null,
      trace: [
        {
          step: "error",
          outcome: "match",
          detail: `${err.message}: every call is rejected until it is fixed`,
        },
      ],
    };
    return {
      did,
      at: at.toISOString(),
      decision,
      summary: "Rejected with a busy signal: routing failed (fail closed)",
      reasons: decision.trace.map((s) => s.detail),
    };
  }
  if (!loaded) throw notFound("DID");
  const snapshot = body.assumeRegistered ? assumingRegistered(loaded) : loaded;
  const decision: RoutingDecision = decideSafely(
    {
      callSid: "dry-run",
      from: body.from,
      to: did.e164,
      at,
      ...(body.stirVerstat === undefined ? {} : { stirVerstat: body.stirVerstat }),
      ...(addOns === undefined ? {} : { addOns }),
    },
    snapshot,
    (err) =>
      deps.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "routing dry run failed (fail closed)",
      ),
  );
  return {
    did: { id: snapshot.did.id, e164: snapshot.did.e164 },
    at: at.toISOString(),
    decision,
    summary: summarizeDecision(decision, snapshot),
    reasons: decision.trace.map((s) => s.detail),
  };
}
