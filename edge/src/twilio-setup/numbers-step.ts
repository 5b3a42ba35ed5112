/**
 * Wizard step "numbers": the account's phone numbers (every page), a search of
 * numbers for sale, buying one, and selecting owned numbers as GoSIP DIDs. A DID
 * is matched by its Twilio SID or its E.164 number, so selecting (or buying)
 * again updates the row instead of adding a second one.
 */
import { dids } from "@gosip/drizzle";
import { eq, or } from "drizzle-orm";
import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { pushAllDevicesAndSettings } from "../relay/push.ts";
import { completeStep, type SetupProgress } from "./progress.ts";
import {
  callTwilio,
  listAll,
  requireTwilio,
  type TwilioAvailableNumber,
  type TwilioCapabilities,
  type TwilioIncomingNumber,
} from "./twilio-api.ts";

type StepDeps = Pick<EdgeDeps, "db" | "clock" | "config" | "relayChannel" | "logger">;

export interface Capabilities {
  voice: boolean;
  sms: boolean;
  mms: boolean;
}

export interface OwnedNumber {
  sid: string;
  phoneNumber: string;
  friendlyName: string;
  capabilities: Capabilities;
  voiceUrl: string | null;
  smsUrl: string | null;
  /** The GoSIP DID using this number, when it is selected. */
  didId: string | null;
}

export interface AvailableNumber {
  phoneNumber: string;
  friendlyName: string;
  locality: string | null;
  region: string | null;
  country: string | null;
  capabilities: Capabilities;
}

export interface SelectedDid {
  didId: string;
  e164: string;
  twilioSid: string;
  label: string;
  action: "created" | "updated" | "unchanged";
}

function capabilities(c: TwilioCapabilities | undefined): Capabilities {
  return {
    voice: c?.voice === true,
    sms: (c?.sms ?? c?.SMS) === true,
    mms: (c?.mms ?? c?.MMS) === true,
  };
}

async function didIdsByTwilioSid(deps: Pick<EdgeDeps, "db">): Promise<Map<string, string>> {
  const rows = await deps.db.select({ id: dids.id, twilioSid: dids.twilioSid }).from(dids);
  return new Map(rows.flatMap((r) => (r.twilioSid ? [[r.twilioSid, r.id] as const] : [])));
}

function ownedNumberDto(n: TwilioIncomingNumber, didIds: Map<string, string>): OwnedNumber {
  return {
    sid: n.sid,
    phoneNumber: n.phone_number,
    friendlyName: n.friendly_name,
    capabilities: capabilities(n.capabilities),
    voiceUrl: n.voice_url ?? null,
    smsUrl: n.sms_url ?? null,
    didId: didIds.get(n.sid) ?? null,
  };
}

async function fetchOwned(deps: StepDeps): Promise<TwilioIncomingNumber[]> {
  const rest = await requireTwilio(deps);
  return callTwilio("listing the account's phone numbers", () =>
    listAll<TwilioIncomingNumber>(
      rest,
      rest.accountPath("/IncomingPhoneNumbers.json"),
      "incoming_phone_numbers",
    ),
  );
}

/** Every number the account owns (all pages), in Twilio's order, with the DID each one is. */
export async function listOwnedNumbers(deps: StepDeps): Promise<OwnedNumber[]> {
  const [owned, didIds] = await Promise.all([fetchOwned(deps), didIdsByTwilioSid(deps)]);
  return owned.map((n) => ownedNumberDto(n, didIds));
}

/** Local numbers for sale in `country`, optionally in an area code or containing digits. */
export async function searchAvailableNumbers(
  deps: StepDeps,
  query: { country: string; areaCode?: string | undefined; contains?: string | undefined; limit: number },
): Promise<AvailableNumber[]> {
  const rest = await requireTwilio(deps);
  const page = await callTwilio("searching numbers for sale", () =>
    rest.request<{ available_phone_numbers?: TwilioAvailableNumber[] }>(
      "GET",
      "api",
      rest.accountPath(`/AvailablePhoneNumbers/${query.country}/Local.json`),
      { query: { AreaCode: query.areaCode, Contains: query.contains, PageSize: query.limit } },
    ),
  );
  return (page.available_phone_numbers ?? []).slice(0, query.limit).map((n) => ({
    phoneNumber: n.phone_number,
    friendlyName: n.friendly_name,
    locality: n.locality ?? null,
    region: n.region ?? null,
    country: n.iso_country ?? null,
    capabilities: capabilities(n.capabilities),
  }));
}

/** Creates or updates the DID of each owned number (matched by Twilio SID, then by E.164). */
async function upsertDids(deps: StepDeps, numbers: readonly TwilioIncomingNumber[]): Promise<SelectedDid[]> {
  const out: SelectedDid[] = [];
  for (const n of numbers) {
    const [existing] = await deps.db
      .select()
      .from(dids)
      .where(or(eq(dids.twilioSid, n.sid), eq(dids.e164, n.phone_number)));
    if (!existing) {
      // Twilio's default friendly name is the number formatted; only a name someone gave it is a label.
      const label = /[A-Za-z]/.test(n.friendly_name) ? n.friendly_name.slice(0, 100) : "";
      const [row] = await deps.db
        .insert(dids)
        .values({ e164: n.phone_number, twilioSid: n.sid, label })
        .returning();
      if (!row) throw new Error("insert returned no row");
      out.push({ didId: row.id, e164: row.e164, twilioSid: n.sid, label: row.label, action: "created" });
      continue;
    }
    if (existing.twilioSid === n.sid && existing.e164 === n.phone_number) {
      out.push({
        didId: existing.id,
        e164: existing.e164,
        twilioSid: n.sid,
        label: existing.label,
        action: "unchanged",
      });
      continue;
    }
    // The label is the admin's; only the number's identity is brought up to date.
    await deps.db
      .update(dids)
      .set({ twilioSid: n.sid, e164: n.phone_number })
      .where(eq(dids.id, existing.id));
    out.push({
      didId: existing.id,
      e164: n.phone_number,
      twilioSid: n.sid,
      label: existing.label,
      action: "updated",
    });
  }
  if (out.some((d) => d.action !== "unchanged")) await pushAllDevicesAndSettings(deps);
  return out;
}

/**
 * Makes the owned numbers `sids` GoSIP DIDs. Every SID is checked against the
 * account first: one that is not the account's fails the whole request and
 * changes nothing.
 */
export async function selectNumbers(
  deps: StepDeps,
  sids: readonly string[],
): Promise<{ dids: SelectedDid[]; progress: SetupProgress }> {
  const owned = new Map((await fetchOwned(deps)).map((n) => [n.sid, n]));
  const unknown = sids.filter((sid) => !owned.has(sid));
  if (unknown.length > 0) {
    throw new AppError(
      400,
      "validation_failed",
      "These numbers are not in the Twilio account",
      unknown.map((sid) => ({ path: `sids.${sids.indexOf(sid)}`, message: `no number ${sid}` })),
    );
  }
  const selected = await upsertDids(
    deps,
    sids.flatMap((sid) => owned.get(sid) ?? []),
  );
  return { dids: selected, progress: await completeStep(deps, "numbers") };
}

/**
 * Buys `phoneNumber` and makes it a DID. A number the account already owns is not
 * bought again (a retried purchase after a lost answer must not fail or charge twice).
 */
export async function buyNumber(
  deps: StepDeps,
  phoneNumber: string,
): Promise<{
  number: OwnedNumber;
  action: "bought" | "already_owned";
  did: SelectedDid;
  progress: SetupProgress;
}> {
  const rest = await requireTwilio(deps);
  // Twilio's PhoneNumber filter also matches partial numbers: the exact one is picked out.
  const matches = await callTwilio("looking for the number in the account", () =>
    listAll<TwilioIncomingNumber>(
      rest,
      rest.accountPath("/IncomingPhoneNumbers.json"),
      "incoming_phone_numbers",
      {
        PhoneNumber: phoneNumber,
      },
    ),
  );
  const existing = matches.find((n) => n.phone_number === phoneNumber);
  const owned =
    existing !== undefined
      ? existing
      : await callTwilio(`buying ${phoneNumber}`, () =>
          rest.request<TwilioIncomingNumber>("POST", "api", rest.accountPath("/IncomingPhoneNumbers.json"), {
            form: { PhoneNumber: phoneNumber },
          }),
        );
  const action = owned === existing ? "already_owned" : "bought";
  deps.logger.info({ numberSid: owned.sid, action }, "setup: phone number");
  const [did] = await upsertDids(deps, [owned]);
  if (!did) throw new Error("upsert returned no DID");
  const number = ownedNumberDto(owned, new Map([[owned.sid, did.didId]]));
  return { number, action, did, progress: await completeStep(deps, "numbers") };
}
