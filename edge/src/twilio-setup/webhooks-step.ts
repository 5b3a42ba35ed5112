/**
 * Wizard step "webhooks": points every DID's Twilio number at the edge — Voice
 * URL, status callback and SMS URL — and, once the fallback function is
 * deployed, its Voice and SMS fallback URLs at that function. Setting a URL is
 * an update of the number, so running the step again changes nothing new.
 */
import { dids } from "@gosip/drizzle";
import { asc, isNotNull } from "drizzle-orm";
import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting } from "../settings/store.ts";
import { CALL_STATUS_PATH, VOICE_PATH } from "../voice/urls.ts";
import { completeStep, type SetupProgress } from "./progress.ts";
import { callTwilio, requireTwilio, type TwilioIncomingNumber } from "./twilio-api.ts";

type StepDeps = Pick<EdgeDeps, "db" | "clock" | "config" | "relayChannel" | "logger">;

export const SMS_PATH = "/api/webhooks/twilio/sms";
/** Path of the fallback function's SMS handler beside its voice handler. */
export const SMS_FALLBACK_PATH = "/sms-fallback";

export interface PointedNumber {
  didId: string;
  e164: string;
  twilioSid: string;
  voiceUrl: string;
  voiceFallbackUrl: string | null;
  smsUrl: string;
  statusCallback: string;
}

/** The form that points one number at this edge (and at the fallback, when there is one). */
export function numberWebhookForm(
  publicUrl: string,
  fallbackUrl: string | undefined,
): Record<string, string> {
  const form: Record<string, string> = {
    VoiceUrl: `${publicUrl}${VOICE_PATH}`,
    VoiceMethod: "POST",
    StatusCallback: `${publicUrl}${CALL_STATUS_PATH}`,
    StatusCallbackMethod: "POST",
    SmsUrl: `${publicUrl}${SMS_PATH}`,
    SmsMethod: "POST",
  };
  if (fallbackUrl) {
    form.VoiceFallbackUrl = fallbackUrl;
    form.VoiceFallbackMethod = "POST";
    form.SmsFallbackUrl = new URL(SMS_FALLBACK_PATH, fallbackUrl).toString();
    form.SmsFallbackMethod = "POST";
  }
  return form;
}

/** Sets the webhooks of every DID that has a Twilio number; 409 when none has. */
export async function pointNumbers(deps: StepDeps): Promise<PointedNumber[]> {
  const rest = await requireTwilio(deps);
  const rows = await deps.db
    .select({ id: dids.id, e164: dids.e164, twilioSid: dids.twilioSid })
    .from(dids)
    .where(isNotNull(dids.twilioSid))
    .orderBy(asc(dids.e164));
  if (rows.length === 0) {
    throw new AppError(409, "conflict", "Select at least one Twilio number first (POST /numbers/select)");
  }
  const fallbackUrl = (await readSetting(deps.db, "twilio"))?.fallbackUrl;
  const form = numberWebhookForm(deps.config.publicUrl, fallbackUrl);
  const out: PointedNumber[] = [];
  for (const row of rows) {
    const sid = row.twilioSid ?? "";
    const updated = await callTwilio(`setting the webhooks of ${row.e164}`, () =>
      rest.request<TwilioIncomingNumber>(
        "POST",
        "api",
        rest.accountPath(`/IncomingPhoneNumbers/${sid}.json`),
        {
          form,
        },
      ),
    );
    out.push({
      didId: row.id,
      e164: row.e164,
      twilioSid: sid,
      voiceUrl: updated.voice_url ?? form.VoiceUrl ?? "",
      voiceFallbackUrl: updated.voice_fallback_url ?? fallbackUrl ?? null,
      smsUrl: updated.sms_url ?? form.SmsUrl ?? "",
      statusCallback: updated.status_callback ?? form.StatusCallback ?? "",
    });
  }
  deps.logger.info(
    { numbers: out.length, fallback: fallbackUrl !== undefined },
    "setup: number webhooks set",
  );
  return out;
}

export async function setNumberWebhooks(
  deps: StepDeps,
): Promise<{ numbers: PointedNumber[]; progress: SetupProgress }> {
  const numbers = await pointNumbers(deps);
  return { numbers, progress: await completeStep(deps, "webhooks") };
}
