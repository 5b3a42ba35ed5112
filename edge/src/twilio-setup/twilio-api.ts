/**
 * The setup wizard's side of the Twilio REST API: the resources it reads and
 * provisions (account, phone numbers, SIP Domain, credential lists, recordings),
 * every list followed through Twilio's paging, and Twilio failures turned into
 * the API's error envelope (400 for what the admin can fix, 502 when Twilio is
 * unavailable), carrying Twilio's code and message and never the credentials.
 *
 * Paths and field names follow Twilio's published OpenAPI description of the
 * 2010-04-01 API (twilio-oai, spec/json/twilio_api_v2010.json).
 */

import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { openTwilioRest } from "../twilio/credentials.ts";
import { TwilioApiError, TwilioNetworkError, type TwilioRest } from "../twilio/rest.ts";

/** Twilio's error code for "authenticate" (wrong Account SID or Auth Token). */
export const TWILIO_AUTH_FAILED = 20003;

/** Pages read at most from one list (Twilio answers up to 1,000 items per page). */
const MAX_PAGES = 50;
const PAGE_SIZE = 100;

/** Twilio's own words about a failure, safe to show the admin (no credentials in them). */
export interface TwilioFailureDetails {
  twilio: { status: number; code: number | null; message: string; moreInfo: string | null };
}

/**
 * An error of a setup call as the API answers it: Twilio's 4xx is something the
 * admin can fix (400, e.g. a domain name already taken), 401 means the credentials
 * stopped working, 429/5xx and network failures are Twilio being unavailable (502).
 * Anything that is not a Twilio failure is rethrown as is.
 */
export function twilioFailure(err: unknown, doing: string): AppError {
  if (err instanceof TwilioApiError) {
    const details: TwilioFailureDetails = {
      twilio: {
        status: err.status,
        code: err.code ?? null,
        message: err.message,
        moreInfo: err.moreInfo ?? null,
      },
    };
    if (err.status === 401 || err.code === TWILIO_AUTH_FAILED) {
      return new AppError(
        400,
        "bad_request",
        `Twilio rejected the Account SID or Auth Token while ${doing}`,
        details,
      );
    }
    const code = err.code !== undefined ? ` ${err.code}` : "";
    if (err.retryable) {
      return new AppError(
        502,
        "unavailable",
        `Twilio is unavailable while ${doing} (error${code}: ${err.message}); try again`,
        details,
      );
    }
    return new AppError(
      400,
      "bad_request",
      `Twilio refused ${doing} (error${code}: ${err.message})`,
      details,
    );
  }
  if (err instanceof TwilioNetworkError) {
    return new AppError(502, "unavailable", `Twilio could not be reached while ${doing}; try again`);
  }
  throw err;
}

/** Runs one Twilio call of a setup step; Twilio failures become {@link twilioFailure}s. */
export async function callTwilio<T>(doing: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw twilioFailure(err, doing);
  }
}

/** The REST client of the saved (or environment) account; 409 before the credentials step ran. */
export async function requireTwilio(deps: Pick<EdgeDeps, "db" | "config">): Promise<TwilioRest> {
  const rest = await openTwilioRest(deps);
  if (!rest) {
    throw new AppError(
      409,
      "conflict",
      "Save the Twilio credentials first (POST /api/setup/twilio/credentials)",
    );
  }
  return rest;
}

interface TwilioPage {
  next_page_uri?: string | null;
}

/**
 * Every item of a Twilio list: the first page from `path`, then each `next_page_uri`
 * (a path under the same account, query included) until there is none. A next page
 * outside this account's API is not followed (the credentials would go with it).
 */
export async function listAll<T>(
  rest: TwilioRest,
  path: string,
  key: string,
  query: Record<string, string | number | undefined> = {},
): Promise<T[]> {
  const items: T[] = [];
  const accountPrefix = rest.accountPath("/");
  let page = await rest.request<TwilioPage & Record<string, unknown>>("GET", "api", path, {
    query: { PageSize: PAGE_SIZE, ...query },
  });
  for (let n = 1; ; n++) {
    const list = page[key];
    if (!Array.isArray(list)) {
      throw new TwilioApiError(502, undefined, `Twilio's list has no \`${key}\``, undefined, undefined);
    }
    items.push(...(list as T[]));
    const next = page.next_page_uri;
    if (typeof next !== "string" || next === "" || n >= MAX_PAGES) break;
    if (!next.startsWith(accountPrefix)) {
      throw new TwilioApiError(
        502,
        undefined,
        "Twilio's next page is outside the account",
        undefined,
        undefined,
      );
    }
    page = await rest.request<TwilioPage & Record<string, unknown>>("GET", "api", next);
  }
  return items;
}

// --- resources (only the fields GoSIP reads) --------------------------------------

export interface TwilioAccount {
  sid: string;
  friendly_name: string;
  /** active, suspended or closed. */
  status: string;
  type?: string;
}

/**
 * Capabilities of a number. The live AvailablePhoneNumbers API answers `SMS`/`MMS` in
 * upper case (IncomingPhoneNumbers in lower case), whatever the OpenAPI spec says: read both.
 */
export interface TwilioCapabilities {
  voice?: boolean;
  sms?: boolean;
  mms?: boolean;
  fax?: boolean;
  SMS?: boolean;
  MMS?: boolean;
}

export interface TwilioIncomingNumber {
  sid: string;
  phone_number: string;
  friendly_name: string;
  capabilities?: TwilioCapabilities;
  voice_url?: string | null;
  voice_fallback_url?: string | null;
  sms_url?: string | null;
  status_callback?: string | null;
}

export interface TwilioAvailableNumber {
  phone_number: string;
  friendly_name: string;
  locality?: string | null;
  region?: string | null;
  iso_country?: string;
  capabilities?: TwilioCapabilities;
}

export interface TwilioSipDomain {
  sid: string;
  domain_name: string;
  friendly_name: string;
  voice_url: string | null;
  voice_method: string | null;
  sip_registration: boolean | null;
  emergency_calling_enabled?: boolean | null;
}

export interface TwilioCredentialList {
  sid: string;
  friendly_name: string;
}

export interface TwilioCredential {
  sid: string;
  username: string;
}

export interface TwilioCredentialListMapping {
  /** The mapped credential list's SID (CL…). */
  sid: string;
  friendly_name: string;
}

export interface TwilioRecording {
  sid: string;
  call_sid: string | null;
  /** RFC 2822 date, e.g. "Fri, 17 Jul 2026 01:52:49 +0000". */
  date_created: string;
  start_time?: string | null;
  /** Seconds as a string; "-1" while in progress. */
  duration: string | null;
  status: string;
  /** RecordVerb for `<Record>`, DialVerb, Conference, OutboundAPI, … */
  source?: string | null;
  media_url?: string | null;
  uri?: string | null;
}

export interface TwilioCall {
  sid: string;
  from: string;
  to: string;
  direction?: string;
  start_time?: string | null;
}
