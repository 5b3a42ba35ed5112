/**
 * Wizard step "fallback": deploys twilio-functions/ as the Serverless service
 * "gosip-fallback" (updated in place on a re-run), saves its SID and Voice
 * Fallback URL, and re-points the numbers' fallback URLs when the webhooks step
 * already ran. With TWILIO_API_BASE set the deployment cannot reach the
 * simulator (see fallback-deploy.ts): the step records that it was skipped and
 * why, and counts as done so a test installation can finish the wizard. Where
 * the deployer cannot run at all (Workers) the step answers why and stays to do.
 */
import { systemEvents } from "@gosip/drizzle";
import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting, writeSetting } from "../settings/store.ts";
import { twilioCredentials } from "../twilio/credentials.ts";
import {
  type DeployedFallback,
  type FallbackDeployer,
  FallbackDeployUnavailable,
  type SkipKind,
  serverlessApiDeployer,
} from "./fallback-deploy.ts";
import { type FallbackDeployPlan, fallbackDeployPlan, fallbackUrlOf } from "./fallback-plan.ts";
import { completeStep, readProgress, type SetupProgress } from "./progress.ts";
import { type PointedNumber, pointNumbers } from "./webhooks-step.ts";

type StepDeps = Pick<EdgeDeps, "db" | "clock" | "config" | "relayChannel" | "logger">;

export interface FallbackResult {
  deployed: boolean;
  /** Why nothing was deployed (simulator base URL, or a runtime that cannot deploy). */
  skipped: string | null;
  serviceName: string;
  serviceSid: string | null;
  fallbackUrl: string | null;
  /** Numbers whose fallback URLs were set now (the webhooks step had run before). */
  numbers: PointedNumber[];
  plan: { functions: string[]; env: string[]; runtime: string };
  progress: SetupProgress;
}

function planSummary(plan: FallbackDeployPlan): FallbackResult["plan"] {
  return {
    functions: plan.functions.map((f) => f.path),
    env: Object.keys(plan.env).sort(),
    runtime: plan.runtime,
  };
}

export async function deployFallbackStep(
  deps: StepDeps,
  input: { forwardSmsTo?: string | null | undefined },
  deployer: FallbackDeployer = serverlessApiDeployer,
): Promise<FallbackResult> {
  const credentials = await twilioCredentials(deps);
  const saved = await readSetting(deps.db, "twilio");
  if (!credentials || !saved) {
    throw new AppError(
      409,
      "conflict",
      "Save the Twilio credentials first (POST /api/setup/twilio/credentials)",
    );
  }
  const installation = await readSetting(deps.db, "installation");
  const plan = fallbackDeployPlan({
    installationName: installation.name,
    forwardSmsTo: input.forwardSmsTo ?? null,
    serviceSid: saved.fallbackServiceSid,
  });

  let deployed: DeployedFallback | null = null;
  let skipped: { reason: string; kind: SkipKind } | null = null;
  try {
    deployed = await deployer.deploy(plan, credentials);
  } catch (err) {
    if (!(err instanceof FallbackDeployUnavailable)) {
      // The library's errors can carry request options; only the message is kept.
      const message = err instanceof Error ? err.message : String(err);
      deps.logger.warn({ err: message }, "setup: fallback deployment failed");
      throw new AppError(502, "unavailable", `Deploying the fallback function failed: ${message}`);
    }
    skipped = { reason: err.message, kind: err.kind };
  }

  await deps.db.insert(systemEvents).values({
    type: deployed ? "twilio.fallback_deployed" : "twilio.fallback_skipped",
    severity: deployed ? "info" : "warning",
    at: new Date(deps.clock.now()),
    data: deployed
      ? {
          v: 1,
          message: "Voicemail fallback deployed",
          serviceSid: deployed.serviceSid,
          domain: deployed.domain,
        }
      : { v: 1, message: skipped?.reason ?? "not deployed" },
  });

  let numbers: PointedNumber[] = [];
  let fallbackUrl = saved.fallbackUrl ?? null;
  if (deployed) {
    fallbackUrl = fallbackUrlOf(deployed.domain);
    const latest = (await readSetting(deps.db, "twilio")) ?? saved;
    await writeSetting(deps, "twilio", { ...latest, fallbackServiceSid: deployed.serviceSid, fallbackUrl });
    if ((await readProgress(deps)).completedSteps.includes("webhooks")) numbers = await pointNumbers(deps);
  }
  deps.logger.info({ deployed: deployed !== null, skipped: skipped?.kind ?? null }, "setup: fallback step");
  // Skipped for the simulator: done (nothing can be deployed there). Unavailable runtime: still to do.
  const progress =
    deployed || skipped?.kind === "api_base"
      ? await completeStep(deps, "fallback")
      : await readProgress(deps);
  return {
    deployed: deployed !== null,
    skipped: skipped?.reason ?? null,
    serviceName: plan.serviceName,
    serviceSid: deployed?.serviceSid ?? saved.fallbackServiceSid ?? null,
    fallbackUrl,
    numbers,
    plan: planSummary(plan),
    progress,
  };
}
