/**
 * Which Twilio account the edge acts for: TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN
 * when both are set (environment or Workers secrets), else what the setup wizard
 * saved in the `twilio` setting. Null when neither exists: webhooks then fail
 * closed and REST calls are refused.
 */
import type { Db } from "@gosip/drizzle";
import type { EdgeConfig } from "../config.ts";
import { readSetting } from "../settings/store.ts";
import { TwilioRest } from "./rest.ts";

export interface TwilioCredentials {
  accountSid: string;
  authToken: string;
  /** Where REST calls go: TWILIO_API_BASE, or undefined for Twilio's own hosts. */
  apiBase: string | undefined;
  source: "environment" | "settings";
}

export async function twilioCredentials(deps: {
  db: Db;
  config: EdgeConfig;
}): Promise<TwilioCredentials | null> {
  const env = deps.config.twilio;
  if (env.accountSid && env.authToken) {
    return {
      accountSid: env.accountSid,
      authToken: env.authToken,
      apiBase: env.apiBase,
      source: "environment",
    };
  }
  const saved = await readSetting(deps.db, "twilio");
  if (!saved) return null;
  return {
    accountSid: saved.accountSid,
    authToken: saved.authToken,
    apiBase: env.apiBase,
    source: "settings",
  };
}

/** A REST client for the current account, or null when no credentials exist. */
export async function openTwilioRest(deps: { db: Db; config: EdgeConfig }): Promise<TwilioRest | null> {
  const creds = await twilioCredentials(deps);
  return creds ? new TwilioRest(creds) : null;
}
