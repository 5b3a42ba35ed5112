/**
 * Wizard step "sip_domain": the Twilio side of outbound calls. The relay sends
 * INVITEs to `<name>.sip.twilio.com` and answers Twilio's challenge with the
 * credential "gosip-relay" of the credential list mapped to the Domain's call
 * authentication; the Domain's Voice URL is the edge's sip-outbound webhook.
 *
 * Every resource is looked up before it is created (the saved SID, then the
 * name), so a re-run, or a run after a crash halfway, reuses what exists. The
 * same step makes sure the relay has inbound credentials for Twilio's
 * `<Dial><Sip>` (the `relay` setting).
 */
import { generateSipPassword } from "../devices/credentials.ts";
import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting, writeSetting } from "../settings/store.ts";
import type { TwilioRest } from "../twilio/rest.ts";
import { SIP_OUTBOUND_PATH } from "../voice/urls.ts";
import { completeStep, type SetupProgress } from "./progress.ts";
import {
  callTwilio,
  listAll,
  requireTwilio,
  type TwilioCredential,
  type TwilioCredentialList,
  type TwilioCredentialListMapping,
  type TwilioSipDomain,
} from "./twilio-api.ts";

type StepDeps = Pick<EdgeDeps, "db" | "clock" | "config" | "relayChannel" | "logger">;

export const SIP_DOMAIN_FRIENDLY_NAME = "GoSIP";
export const CREDENTIAL_LIST_FRIENDLY_NAME = "GoSIP relay";
/** Username of the relay's credential towards the SIP Domain. */
export const RELAY_SIP_USERNAME = "gosip-relay";
/** Username Twilio uses towards the relay (its `<Sip username>`). */
export const RELAY_INBOUND_USERNAME = "twilio";
const SIP_DOMAIN_SUFFIX = ".sip.twilio.com";

export type ResourceAction = "created" | "reused" | "updated";

export interface SipDomainResult {
  sipDomain: { sid: string; domainName: string; voiceUrl: string; action: ResourceAction };
  credentialList: { sid: string; action: ResourceAction };
  credential: { username: string; action: ResourceAction };
  mapping: { action: "created" | "reused" };
  relayInboundCredentials: "created" | "reused";
  progress: SetupProgress;
}

/** "home" or "home.sip.twilio.com" → "home.sip.twilio.com"; 400 for anything Twilio would refuse. */
export function sipDomainName(input: string): string {
  const label = input.toLowerCase().endsWith(SIP_DOMAIN_SUFFIX)
    ? input.slice(0, -SIP_DOMAIN_SUFFIX.length)
    : input;
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(label)) {
    throw new AppError(
      400,
      "validation_failed",
      "The SIP Domain name may hold letters, digits and dashes (1–63, not starting or ending with a dash)",
      [{ path: "domainName", message: "invalid SIP Domain name" }],
    );
  }
  return `${label.toLowerCase()}${SIP_DOMAIN_SUFFIX}`;
}

/** A default name unique per account: "gosip-" and the end of the Account SID. */
export function defaultSipDomainName(accountSid: string): string {
  return `gosip-${accountSid.slice(-10).toLowerCase()}${SIP_DOMAIN_SUFFIX}`;
}

/**
 * A password Twilio accepts for a SIP credential: at least 12 characters with an
 * upper-case letter, a lower-case letter and a digit.
 */
export function generateTwilioSipPassword(): string {
  for (;;) {
    const password = generateSipPassword(24);
    if (/[A-Z]/.test(password) && /[a-z]/.test(password) && /\d/.test(password)) return password;
  }
}

async function ensureDomain(
  rest: TwilioRest,
  wanted: { domainName: string; savedSid: string | undefined; voiceUrl: string },
): Promise<SipDomainResult["sipDomain"]> {
  const domains = await callTwilio("listing SIP Domains", () =>
    listAll<TwilioSipDomain>(rest, rest.accountPath("/SIP/Domains.json"), "domains"),
  );
  const found =
    domains.find((d) => d.sid === wanted.savedSid) ??
    domains.find((d) => d.domain_name === wanted.domainName) ??
    domains.find((d) => d.friendly_name === SIP_DOMAIN_FRIENDLY_NAME);
  // Emergency calling on: 911 from a phone must go out (SPEC §1); Twilio then allows it from
  // caller IDs that have an emergency address registered in the account.
  const settings = {
    VoiceUrl: wanted.voiceUrl,
    VoiceMethod: "POST",
    SipRegistration: false,
    EmergencyCallingEnabled: true,
  };
  if (!found) {
    const created = await callTwilio(`creating the SIP Domain ${wanted.domainName}`, () =>
      rest.request<TwilioSipDomain>("POST", "api", rest.accountPath("/SIP/Domains.json"), {
        form: { DomainName: wanted.domainName, FriendlyName: SIP_DOMAIN_FRIENDLY_NAME, ...settings },
      }),
    );
    return {
      sid: created.sid,
      domainName: created.domain_name,
      voiceUrl: wanted.voiceUrl,
      action: "created",
    };
  }
  const current =
    found.voice_url === wanted.voiceUrl &&
    (found.voice_method ?? "POST").toUpperCase() === "POST" &&
    found.sip_registration !== true &&
    found.emergency_calling_enabled === true;
  if (!current) {
    await callTwilio("updating the SIP Domain's Voice URL", () =>
      rest.request<TwilioSipDomain>("POST", "api", rest.accountPath(`/SIP/Domains/${found.sid}.json`), {
        form: settings,
      }),
    );
  }
  return {
    sid: found.sid,
    domainName: found.domain_name,
    voiceUrl: wanted.voiceUrl,
    action: current ? "reused" : "updated",
  };
}

async function ensureCredentialList(
  rest: TwilioRest,
  savedSid: string | undefined,
): Promise<SipDomainResult["credentialList"]> {
  const lists = await callTwilio("listing SIP credential lists", () =>
    listAll<TwilioCredentialList>(rest, rest.accountPath("/SIP/CredentialLists.json"), "credential_lists"),
  );
  const found =
    lists.find((l) => l.sid === savedSid) ??
    lists.find((l) => l.friendly_name === CREDENTIAL_LIST_FRIENDLY_NAME);
  if (found) return { sid: found.sid, action: "reused" };
  const created = await callTwilio("creating the SIP credential list", () =>
    rest.request<TwilioCredentialList>("POST", "api", rest.accountPath("/SIP/CredentialLists.json"), {
      form: { FriendlyName: CREDENTIAL_LIST_FRIENDLY_NAME },
    }),
  );
  return { sid: created.sid, action: "created" };
}

/**
 * The relay's credential in the list. Twilio never shows a stored password, so an
 * existing credential is reused only when GoSIP still has its password; otherwise
 * its password is replaced by a new one.
 */
async function ensureCredential(
  rest: TwilioRest,
  listSid: string,
  savedPassword: string | undefined,
): Promise<{ action: ResourceAction; password: string }> {
  const base = rest.accountPath(`/SIP/CredentialLists/${listSid}/Credentials`);
  const credentials = await callTwilio("listing the relay's SIP credentials", () =>
    listAll<TwilioCredential>(rest, `${base}.json`, "credentials"),
  );
  const found = credentials.find((c) => c.username === RELAY_SIP_USERNAME);
  if (found && savedPassword) return { action: "reused", password: savedPassword };
  const password = generateTwilioSipPassword();
  if (found) {
    await callTwilio("renewing the relay's SIP password", () =>
      rest.request("POST", "api", `${base}/${found.sid}.json`, { form: { Password: password } }),
    );
    return { action: "updated", password };
  }
  await callTwilio("creating the relay's SIP credential", () =>
    rest.request<TwilioCredential>("POST", "api", `${base}.json`, {
      form: { Username: RELAY_SIP_USERNAME, Password: password },
    }),
  );
  return { action: "created", password };
}

async function ensureMapping(
  rest: TwilioRest,
  domainSid: string,
  listSid: string,
): Promise<SipDomainResult["mapping"]> {
  const path = rest.accountPath(`/SIP/Domains/${domainSid}/Auth/Calls/CredentialListMappings.json`);
  const mappings = await callTwilio("listing the SIP Domain's call authentication", () =>
    listAll<TwilioCredentialListMapping>(rest, path, "contents"),
  );
  if (mappings.some((m) => m.sid === listSid)) return { action: "reused" };
  await callTwilio("mapping the credential list to the SIP Domain", () =>
    rest.request("POST", "api", path, { form: { CredentialListSid: listSid } }),
  );
  return { action: "created" };
}

/** Inbound credentials of the relay (Twilio's `<Sip username password>`), generated once. */
async function ensureRelayInbound(deps: StepDeps): Promise<"created" | "reused"> {
  const relay = await readSetting(deps.db, "relay");
  if (relay.inboundUsername && relay.inboundPassword) return "reused";
  await writeSetting(deps, "relay", {
    ...relay,
    inboundUsername: relay.inboundUsername ?? RELAY_INBOUND_USERNAME,
    inboundPassword: relay.inboundPassword ?? generateTwilioSipPassword(),
  });
  return "created";
}

/** Creates or reuses the SIP Domain, its credential list, the relay's credential and the mapping. */
export async function provisionSipDomain(
  deps: StepDeps,
  input: { domainName?: string | undefined },
): Promise<SipDomainResult> {
  const rest = await requireTwilio(deps);
  const saved = await readSetting(deps.db, "twilio");
  if (!saved) throw new AppError(409, "conflict", "Save the Twilio credentials first");
  const domainName = sipDomainName(
    input.domainName ?? saved.sipDomainName ?? defaultSipDomainName(rest.credentials.accountSid),
  );
  const voiceUrl = `${deps.config.publicUrl}${SIP_OUTBOUND_PATH}`;

  const sipDomain = await ensureDomain(rest, { domainName, savedSid: saved.sipDomainSid, voiceUrl });
  const credentialList = await ensureCredentialList(rest, saved.credentialListSid);
  const sameList = credentialList.sid === saved.credentialListSid && saved.sipUsername === RELAY_SIP_USERNAME;
  const credential = await ensureCredential(
    rest,
    credentialList.sid,
    sameList ? saved.sipPassword : undefined,
  );
  const mapping = await ensureMapping(rest, sipDomain.sid, credentialList.sid);

  // Read again: the credentials step may have run meanwhile; only this step's fields change.
  const latest = (await readSetting(deps.db, "twilio")) ?? saved;
  await writeSetting(deps, "twilio", {
    ...latest,
    sipDomainSid: sipDomain.sid,
    sipDomainName: sipDomain.domainName,
    credentialListSid: credentialList.sid,
    sipUsername: RELAY_SIP_USERNAME,
    sipPassword: credential.password,
  });
  const relayInboundCredentials = await ensureRelayInbound(deps);
  deps.logger.info(
    {
      sipDomainSid: sipDomain.sid,
      domain: sipDomain.action,
      credentialList: credentialList.action,
      credential: credential.action,
      mapping: mapping.action,
    },
    "setup: SIP Domain provisioned",
  );
  return {
    sipDomain,
    credentialList,
    credential: { username: RELAY_SIP_USERNAME, action: credential.action },
    mapping,
    relayInboundCredentials,
    progress: await completeStep(deps, "sip_domain"),
  };
}
