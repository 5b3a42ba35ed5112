/**
 * Wizard step "twilio": the admin's Account SID and Auth Token, verified live
 * (GET the account with exactly those credentials) before anything is stored.
 * Saving another account's credentials forgets what was provisioned in the old
 * one (SIP Domain, credential list, fallback) and reopens those steps.
 */

import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting, writeSetting } from "../settings/store.ts";
import { TwilioRest } from "../twilio/rest.ts";
import { completeStep, reopenSteps, type SetupProgress } from "./progress.ts";
import { callTwilio, type TwilioAccount } from "./twilio-api.ts";

type StepDeps = Pick<EdgeDeps, "db" | "clock" | "config" | "relayChannel" | "logger">;

export interface CredentialsResult {
  account: { sid: string; friendlyName: string; status: string; type: string | null };
  /** "saved": new credentials; "unchanged": the same ones again; "replaced": another account. */
  action: "saved" | "unchanged" | "replaced";
  /** TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are set: they, not the saved ones, are used. */
  environmentOverride: boolean;
  progress: SetupProgress;
}

export async function saveTwilioCredentials(
  deps: StepDeps,
  input: { accountSid: string; authToken: string },
): Promise<CredentialsResult> {
  const rest = new TwilioRest({ ...input, apiBase: deps.config.twilio.apiBase });
  const account = await callTwilio("verifying the credentials", () =>
    rest.request<TwilioAccount>("GET", "api", `/2010-04-01/Accounts/${input.accountSid}.json`),
  );
  if (account.status !== "active") {
    throw new AppError(
      400,
      "bad_request",
      `The Twilio account is ${account.status}, not active: reactivate it in the Twilio Console first`,
    );
  }

  const saved = await readSetting(deps.db, "twilio");
  let action: CredentialsResult["action"];
  if (saved && saved.accountSid === input.accountSid) {
    action = saved.authToken === input.authToken ? "unchanged" : "saved";
    if (action === "saved") await writeSetting(deps, "twilio", { ...saved, authToken: input.authToken });
  } else {
    action = saved ? "replaced" : "saved";
    await writeSetting(deps, "twilio", { v: 1, ...input });
    if (saved) await reopenSteps(deps, ["numbers", "sip_domain", "webhooks", "fallback"]);
  }
  deps.logger.info({ accountSid: input.accountSid, action }, "setup: Twilio credentials verified");
  return {
    account: {
      sid: account.sid,
      friendlyName: account.friendly_name,
      status: account.status,
      type: account.type ?? null,
    },
    action,
    environmentOverride: deps.config.twilio.accountSid !== undefined,
    progress: await completeStep(deps, "twilio"),
  };
}
