/**
 * The Twilio simulator's account state, in memory: what one Twilio account (and
 * its subaccounts) holds — numbers, calls, messages with media, recordings with
 * their audio, transcriptions, SIP domains and credential lists, Intelligence
 * transcripts, Serverless services — plus the request log tests assert on.
 *
 * Resources are kept in Twilio's own JSON shape (snake_case, RFC 2822 dates,
 * SID prefixes) so the REST server renders them as stored and a test reads the
 * same field names it would read from Twilio. What Twilio never shows (media
 * bytes, SIP passwords) is kept beside them. The REST server (server.ts) and
 * the call driver (calls/) share one instance; `events` tells the driver about
 * calls and messages created over REST.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";

export const API_VERSION = "2010-04-01";

/** A Twilio SID: two-letter prefix and 32 lowercase hex digits. */
export function newSid(prefix: string): string {
  return prefix + randomBytes(16).toString("hex");
}

/** Twilio's v2010 date format: "Tue, 01 Dec 2026 10:00:00 +0000". */
export function rfc2822(date: Date): string {
  return date.toUTCString().replace("GMT", "+0000");
}

/** ISO 8601 without milliseconds, as the v1/v2 products write dates. */
export function iso8601(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

const E164 = /^\+[1-9]\d{6,14}$/;
export function isE164(value: string): boolean {
  return E164.test(value);
}

export type HttpMethod = "GET" | "POST" | "DELETE";

export interface AccountResource {
  sid: string;
  owner_account_sid: string;
  auth_token: string;
  friendly_name: string;
  status: "active" | "suspended" | "closed";
  type: "Full" | "Trial";
  date_created: string;
  date_updated: string;
}

export interface Capabilities {
  voice: boolean;
  sms: boolean;
  mms: boolean;
  fax: boolean;
}

export interface IncomingNumberResource {
  sid: string;
  account_sid: string;
  api_version: string;
  friendly_name: string;
  phone_number: string;
  origin: "twilio" | "hosted";
  capabilities: Capabilities;
  voice_url: string | null;
  voice_method: string;
  voice_fallback_url: string | null;
  voice_fallback_method: string;
  voice_caller_id_lookup: boolean;
  voice_application_sid: string | null;
  voice_receive_mode: "voice" | "fax";
  status_callback: string | null;
  status_callback_method: string;
  sms_url: string | null;
  sms_method: string;
  sms_fallback_url: string | null;
  sms_fallback_method: string;
  sms_application_sid: string | null;
  trunk_sid: string | null;
  address_sid: string | null;
  address_requirements: "none" | "any" | "local" | "foreign";
  identity_sid: string | null;
  bundle_sid: string | null;
  emergency_status: "Active" | "Inactive";
  emergency_address_sid: string | null;
  emergency_address_status: string;
  beta: boolean;
  status: string;
  type: "local" | "tollfree" | "mobile";
  date_created: string;
  date_updated: string;
}

export interface AvailableNumber {
  phone_number: string;
  friendly_name: string;
  iso_country: string;
  region: string | null;
  locality: string | null;
  postal_code: string | null;
  rate_center: string | null;
  lata: string | null;
  latitude: string | null;
  longitude: string | null;
  address_requirements: "none" | "any" | "local" | "foreign";
  beta: boolean;
  capabilities: { voice: boolean; SMS: boolean; MMS: boolean };
  type: "local" | "tollfree" | "mobile";
}

export type CallStatus =
  | "queued"
  | "ringing"
  | "in-progress"
  | "canceled"
  | "completed"
  | "failed"
  | "busy"
  | "no-answer";

const TERMINAL_CALL = new Set<CallStatus>(["canceled", "completed", "failed", "busy", "no-answer"]);
export function isTerminalCallStatus(status: CallStatus): boolean {
  return TERMINAL_CALL.has(status);
}

export type CallDirection = "inbound" | "outbound-api" | "outbound-dial";

export interface CallResource {
  sid: string;
  account_sid: string;
  api_version: string;
  parent_call_sid: string | null;
  to: string;
  to_formatted: string;
  from: string;
  from_formatted: string;
  phone_number_sid: string | null;
  status: CallStatus;
  direction: CallDirection;
  start_time: string | null;
  end_time: string | null;
  duration: string | null;
  price: string | null;
  price_unit: string;
  answered_by: string | null;
  forwarded_from: string | null;
  group_sid: string | null;
  caller_name: string | null;
  queue_time: string;
  trunk_sid: string | null;
  date_created: string;
  date_updated: string;
}

/** How a call was asked to behave (REST create/update); the driver reads it. */
export interface CallInstructions {
  url?: string;
  method?: string;
  twiml?: string;
  fallbackUrl?: string;
  statusCallback?: string;
  statusCallbackMethod?: string;
  statusCallbackEvents?: string[];
  timeoutSeconds?: number;
  record?: boolean;
}

export interface RecordingResource {
  sid: string;
  account_sid: string;
  api_version: string;
  call_sid: string;
  conference_sid: string | null;
  date_created: string;
  date_updated: string;
  start_time: string;
  duration: string;
  price: string | null;
  price_unit: string;
  status: "in-progress" | "paused" | "stopped" | "processing" | "completed" | "absent" | "deleted";
  channels: number;
  source: string;
  error_code: number | null;
  encryption_details: null;
  media_url: string;
}

export interface TranscriptionResource {
  sid: string;
  account_sid: string;
  api_version: string;
  recording_sid: string;
  status: "in-progress" | "completed" | "failed";
  transcription_text: string | null;
  duration: string;
  price: string | null;
  price_unit: string;
  type: string;
  date_created: string;
  date_updated: string;
}

export type MessageStatus =
  | "queued"
  | "sending"
  | "sent"
  | "failed"
  | "delivered"
  | "undelivered"
  | "receiving"
  | "received"
  | "accepted"
  | "scheduled"
  | "read"
  | "partially_delivered"
  | "canceled";

export interface MessageResource {
  sid: string;
  account_sid: string;
  api_version: string;
  messaging_service_sid: string | null;
  from: string;
  to: string;
  body: string;
  num_segments: string;
  num_media: string;
  direction: "inbound" | "outbound-api" | "outbound-call" | "outbound-reply";
  status: MessageStatus;
  error_code: number | null;
  error_message: string | null;
  price: string | null;
  price_unit: string;
  date_created: string;
  date_updated: string;
  date_sent: string | null;
}

/** Where an outbound message goes after it is queued. */
export interface MessageSendOptions {
  statusCallback?: string;
  mediaUrls: string[];
}

export interface MediaResource {
  sid: string;
  account_sid: string;
  parent_sid: string;
  content_type: string;
  date_created: string;
  date_updated: string;
}

export interface SipDomainResource {
  sid: string;
  account_sid: string;
  api_version: string;
  domain_name: string;
  friendly_name: string;
  auth_type: string;
  voice_url: string | null;
  voice_method: string;
  voice_fallback_url: string | null;
  voice_fallback_method: string;
  voice_status_callback_url: string | null;
  voice_status_callback_method: string;
  sip_registration: boolean;
  emergency_calling_enabled: boolean;
  secure: boolean;
  byoc_trunk_sid: string | null;
  emergency_caller_sid: string | null;
  date_created: string;
  date_updated: string;
}

export interface CredentialListResource {
  sid: string;
  account_sid: string;
  friendly_name: string;
  date_created: string;
  date_updated: string;
}

export interface CredentialResource {
  sid: string;
  account_sid: string;
  credential_list_sid: string;
  username: string;
  date_created: string;
  date_updated: string;
}

/** Which mapping collection a credential list is attached through. */
export type MappingKind = "legacy" | "auth-calls" | "auth-registrations";

export interface CredentialListMapping {
  kind: MappingKind;
  domainSid: string;
  credentialListSid: string;
  date_created: string;
  date_updated: string;
}

export interface IntelligenceServiceResource {
  sid: string;
  account_sid: string;
  unique_name: string;
  friendly_name: string | null;
  language_code: string;
  auto_redaction: boolean;
  media_redaction: boolean;
  auto_transcribe: boolean;
  data_logging: boolean;
  webhook_url: string | null;
  webhook_http_method: "GET" | "POST" | "NULL";
  read_only_attached_operator_sids: string[];
  version: number;
  encryption_credential_sid: string | null;
  date_created: string;
  date_updated: string;
}

export interface IntelligenceTranscriptResource {
  sid: string;
  account_sid: string;
  service_sid: string;
  status: "queued" | "in-progress" | "completed" | "failed" | "canceled";
  channel: Record<string, unknown>;
  data_logging: boolean;
  language_code: string;
  customer_key: string | null;
  media_start_time: string | null;
  duration: number;
  redaction: boolean;
  date_created: string;
  date_updated: string;
  /** Not in Twilio's JSON: the recording it transcribes, and the text it will have. */
  recordingSid: string | null;
  text: string;
}

export interface ServerlessService {
  sid: string;
  account_sid: string;
  friendly_name: string;
  unique_name: string;
  include_credentials: boolean;
  ui_editable: boolean;
  domain_base: string;
  date_created: string;
  date_updated: string;
}

export interface ServerlessEnvironment {
  sid: string;
  account_sid: string;
  service_sid: string;
  build_sid: string | null;
  unique_name: string;
  domain_suffix: string | null;
  domain_name: string;
  date_created: string;
  date_updated: string;
}

export interface ServerlessFunction {
  sid: string;
  account_sid: string;
  service_sid: string;
  friendly_name: string;
  date_created: string;
  date_updated: string;
}

export interface ServerlessFunctionVersion {
  sid: string;
  account_sid: string;
  service_sid: string;
  function_sid: string;
  path: string;
  visibility: "public" | "private" | "protected";
  date_created: string;
  /** Not in Twilio's JSON: the uploaded source. */
  content: string;
}

export interface ServerlessBuild {
  sid: string;
  account_sid: string;
  service_sid: string;
  status: "building" | "completed" | "failed";
  asset_versions: unknown[];
  function_versions: unknown[];
  dependencies: unknown[];
  runtime: string;
  date_created: string;
  date_updated: string;
  /** Not in Twilio's JSON: status polls left before the build completes. */
  pollsUntilDone: number;
}

export interface ServerlessDeployment {
  sid: string;
  account_sid: string;
  service_sid: string;
  environment_sid: string;
  build_sid: string;
  date_created: string;
  date_updated: string;
}

export interface ServerlessVariable {
  sid: string;
  account_sid: string;
  service_sid: string;
  environment_sid: string;
  key: string;
  value: string;
  date_created: string;
  date_updated: string;
}

/** What Lookups v2 says about a number (configure with `state.lookups.set`). */
export interface LookupFacts {
  callerName?: string | null;
  callerType?: "BUSINESS" | "CONSUMER" | null;
  lineType?: "mobile" | "landline" | "fixedVoip" | "nonFixedVoip" | "tollFree" | "voip" | null;
  carrierName?: string | null;
}

/** One request the REST server received, for "exactly one POST to Messages" assertions. */
export interface RequestLogEntry {
  at: Date;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  form: Record<string, string | string[]>;
  /** The status answered; undefined when a fault left the request unanswered. */
  status: number | undefined;
  /** The fault that was applied, if any. */
  fault?: string;
  /** The authenticated account, if authentication passed. */
  accountSid?: string;
}

/** A webhook the simulator posted (status callbacks, inbound SMS). */
export interface WebhookLogEntry {
  at: Date;
  url: string;
  params: Record<string, string>;
  status: number | undefined;
  error?: string;
  body?: string;
}

export interface StateEvents {
  /** An outbound call was created over REST (Calls.json): the driver should place it. */
  "call-created": [call: CallResource, instructions: CallInstructions];
  /** A live call was told over REST to run new TwiML or fetch a new URL. */
  "call-redirected": [call: CallResource, instructions: CallInstructions];
  /** A call was ended over REST (Status=completed|canceled). */
  "call-ended-by-api": [call: CallResource];
  /** Any change of a call's status (driver or REST). */
  "call-status": [call: CallResource];
  /** A message was created (REST send or inbound). */
  "message-created": [message: MessageResource];
  /** An outbound message changed status. */
  "message-status": [message: MessageResource];
  "recording-created": [recording: RecordingResource];
  "recording-deleted": [sid: string];
}

export interface SimStateOptions {
  accountSid?: string;
  authToken?: string;
  friendlyName?: string;
  /** Subaccounts to create: each gets its own SID and token unless given. */
  subaccounts?: Array<{ friendlyName: string; sid?: string; authToken?: string }>;
  /** Base URL the REST server answers on (media URLs point there). Set by the server. */
  baseUrl?: string;
}

/** Most entries kept in `requests` and `webhooks` (far beyond any test). */
export const LOG_LIMIT = 50_000;

/** The fake defaults: obviously not a real account. */
export const DEFAULT_ACCOUNT_SID = "AC0000000000000000000000000000c0de";
export const DEFAULT_AUTH_TOKEN = "5151515151515151515151515151515a";

export interface IncomingNumberInput {
  phoneNumber: string;
  accountSid?: string;
  friendlyName?: string;
  voiceUrl?: string | null;
  voiceMethod?: string;
  voiceFallbackUrl?: string | null;
  statusCallback?: string | null;
  smsUrl?: string | null;
  smsMethod?: string;
  smsFallbackUrl?: string | null;
  capabilities?: Partial<Capabilities>;
  type?: IncomingNumberResource["type"];
}

export interface CreateCallInput {
  from: string;
  to: string;
  direction: CallDirection;
  accountSid?: string;
  status?: CallStatus;
  parentCallSid?: string | null;
  phoneNumberSid?: string | null;
  callerName?: string | null;
  forwardedFrom?: string | null;
}

export interface UpdateCallPatch {
  status?: CallStatus;
  answeredBy?: string | null;
  /** Overrides the computed duration (seconds). */
  durationSeconds?: number;
}

export interface InboundMediaInput {
  contentType: string;
  content: Uint8Array;
}

export interface InboundMessageInput {
  from: string;
  to: string;
  body?: string;
  media?: InboundMediaInput[];
  accountSid?: string;
}

/** GSM-7 basic character set (the extension table counts as two, ignored here). */
const GSM7 =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_SET = new Set([...GSM7]);

/** Segments Twilio bills for a body: 160/153 GSM-7 characters, 70/67 UCS-2. */
export function segmentCount(body: string): number {
  const chars = [...body];
  if (chars.length === 0) return 1;
  const gsm = chars.every((c) => GSM7_SET.has(c));
  const single = gsm ? 160 : 70;
  const multi = gsm ? 153 : 67;
  return chars.length <= single ? 1 : Math.ceil(chars.length / multi);
}

/** US-style "(415) 555-0100" for +1 numbers, the number itself otherwise. */
export function formatNational(e164: string): string {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164);
  return m ? `(${m[1]}) ${m[2]}-${m[3]}` : e164;
}

export class SimState {
  readonly accountSid: string;
  authToken: string;
  /** Set by the server once it listens: http://127.0.0.1:port. */
  baseUrl: string;
  readonly events = new EventEmitter<StateEvents>();

  readonly accounts = new Map<string, AccountResource>();
  /** API keys (SK…) → secret and the account they belong to. */
  readonly apiKeys = new Map<string, { secret: string; accountSid: string }>();
  readonly incomingNumbers = new Map<string, IncomingNumberResource>();
  /** Numbers for sale (AvailablePhoneNumbers); buying removes one. */
  readonly availableNumbers: AvailableNumber[] = [];
  readonly calls = new Map<string, CallResource>();
  readonly callInstructions = new Map<string, CallInstructions>();
  readonly recordings = new Map<string, RecordingResource>();
  readonly recordingAudio = new Map<string, Uint8Array>();
  /** SIDs of recordings deleted over REST, in order. */
  readonly deletedRecordings: string[] = [];
  readonly transcriptions = new Map<string, TranscriptionResource>();
  readonly messages = new Map<string, MessageResource>();
  readonly messageSend = new Map<string, MessageSendOptions>();
  readonly media = new Map<string, MediaResource>();
  readonly mediaContent = new Map<string, Uint8Array>();
  readonly deletedMessages: string[] = [];
  /** Recipients who texted STOP to a number: (to number) → senders; sends to them fail with 21610. */
  readonly unsubscribed = new Map<string, Set<string>>();
  /** Recipients whose messages end undelivered/failed, with the error code Twilio would give. */
  readonly deliveryFailures = new Map<string, { status: "undelivered" | "failed"; errorCode: number }>();
  readonly sipDomains = new Map<string, SipDomainResource>();
  readonly credentialLists = new Map<string, CredentialListResource>();
  readonly credentials = new Map<string, CredentialResource>();
  /** Passwords Twilio never shows, kept so the SIP side can check digest auth. */
  readonly credentialPasswords = new Map<string, string>();
  readonly mappings: CredentialListMapping[] = [];
  readonly lookups = new Map<string, LookupFacts>();
  readonly intelligenceServices = new Map<string, IntelligenceServiceResource>();
  readonly intelligenceTranscripts = new Map<string, IntelligenceTranscriptResource>();
  /** Canned Intelligence transcript text per recording SID. */
  readonly intelligenceTexts = new Map<string, string>();
  readonly serverlessServices = new Map<string, ServerlessService>();
  readonly serverlessEnvironments = new Map<string, ServerlessEnvironment>();
  readonly serverlessFunctions = new Map<string, ServerlessFunction>();
  readonly serverlessFunctionVersions = new Map<string, ServerlessFunctionVersion>();
  /** Assets have the shape of functions (ZH…), their versions that of function versions (ZN…). */
  readonly serverlessAssets = new Map<string, ServerlessFunction>();
  readonly serverlessAssetVersions = new Map<string, ServerlessFunctionVersion>();
  readonly serverlessBuilds = new Map<string, ServerlessBuild>();
  readonly serverlessDeployments = new Map<string, ServerlessDeployment>();
  readonly serverlessVariables = new Map<string, ServerlessVariable>();
  /**
   * Whether the account's US local numbers are registered for A2P 10DLC; when
   * false their messages to US numbers end undelivered with 30034, as carriers
   * block unregistered traffic.
   */
  a2pRegistered = true;
  /** Status polls a new build answers "building" before "completed". */
  buildPolls = 1;
  readonly requests: RequestLogEntry[] = [];
  readonly webhooks: WebhookLogEntry[] = [];

  constructor(options: SimStateOptions = {}) {
    this.accountSid = options.accountSid ?? DEFAULT_ACCOUNT_SID;
    this.authToken = options.authToken ?? DEFAULT_AUTH_TOKEN;
    this.baseUrl = options.baseUrl ?? "http://127.0.0.1";
    const now = rfc2822(new Date());
    this.accounts.set(this.accountSid, {
      sid: this.accountSid,
      owner_account_sid: this.accountSid,
      auth_token: this.authToken,
      friendly_name: options.friendlyName ?? "GoSIP simulator account",
      status: "active",
      type: "Full",
      date_created: now,
      date_updated: now,
    });
    for (const sub of options.subaccounts ?? []) this.addSubaccount(sub.friendlyName, sub.sid, sub.authToken);
    this.seedAvailableNumbers();
  }

  /** The main account and its subaccounts' SIDs. */
  get subaccounts(): AccountResource[] {
    return [...this.accounts.values()].filter((a) => a.sid !== this.accountSid);
  }

  addSubaccount(friendlyName: string, sid = newSid("AC"), authToken = randomBytes(16).toString("hex")) {
    const now = rfc2822(new Date());
    const account: AccountResource = {
      sid,
      owner_account_sid: this.accountSid,
      auth_token: authToken,
      friendly_name: friendlyName,
      status: "active",
      type: "Full",
      date_created: now,
      date_updated: now,
    };
    this.accounts.set(sid, account);
    return account;
  }

  /** An API key (SK…) whose secret authenticates like the account's token. */
  addApiKey(accountSid = this.accountSid): { sid: string; secret: string } {
    const sid = newSid("SK");
    const secret = randomBytes(16).toString("hex");
    this.apiKeys.set(sid, { secret, accountSid });
    return { sid, secret };
  }

  /** Auth token of an account (the main token for the main account). */
  tokenOf(accountSid: string): string | undefined {
    return accountSid === this.accountSid ? this.authToken : this.accounts.get(accountSid)?.auth_token;
  }

  private seedAvailableNumbers(): void {
    const areas: Array<[string, string, string, string]> = [
      ["415", "San Francisco", "CA", "94105"],
      ["212", "New York", "NY", "10001"],
      ["720", "Denver", "CO", "80202"],
    ];
    for (const [area, locality, region, postal] of areas) {
      for (let i = 0; i < 10; i++) {
        const phone = `+1${area}555${String(100 + i).padStart(4, "0")}`;
        this.availableNumbers.push({
          phone_number: phone,
          friendly_name: formatNational(phone),
          iso_country: "US",
          region,
          locality,
          postal_code: postal,
          rate_center: locality.toUpperCase(),
          lata: null,
          latitude: null,
          longitude: null,
          address_requirements: "none",
          beta: false,
          capabilities: { voice: true, SMS: true, MMS: true },
          type: "local",
        });
      }
    }
    for (let i = 0; i < 3; i++) {
      // Mobile numbers are a UK product (US numbers are Local); Ofcom's drama range.
      const phone = `+447700900${String(100 + i)}`;
      this.availableNumbers.push({
        phone_number: phone,
        friendly_name: phone,
        iso_country: "GB",
        region: null,
        locality: null,
        postal_code: null,
        rate_center: null,
        lata: null,
        latitude: null,
        longitude: null,
        address_requirements: "any",
        beta: false,
        capabilities: { voice: true, SMS: true, MMS: false },
        type: "mobile",
      });
    }
    for (let i = 0; i < 5; i++) {
      const phone = `+1833555${String(200 + i).padStart(4, "0")}`;
      this.availableNumbers.push({
        phone_number: phone,
        friendly_name: formatNational(phone),
        iso_country: "US",
        region: null,
        locality: null,
        postal_code: null,
        rate_center: null,
        lata: null,
        latitude: null,
        longitude: null,
        address_requirements: "none",
        beta: false,
        capabilities: { voice: true, SMS: true, MMS: false },
        type: "tollfree",
      });
    }
  }

  // ---- incoming numbers ----

  addIncomingNumber(input: IncomingNumberInput): IncomingNumberResource {
    const now = rfc2822(new Date());
    const caps = { voice: true, sms: true, mms: true, fax: false, ...input.capabilities };
    const number: IncomingNumberResource = {
      sid: newSid("PN"),
      account_sid: input.accountSid ?? this.accountSid,
      api_version: API_VERSION,
      friendly_name: input.friendlyName ?? formatNational(input.phoneNumber),
      phone_number: input.phoneNumber,
      origin: "twilio",
      capabilities: caps,
      voice_url: input.voiceUrl ?? null,
      voice_method: input.voiceMethod ?? "POST",
      voice_fallback_url: input.voiceFallbackUrl ?? null,
      voice_fallback_method: "POST",
      voice_caller_id_lookup: false,
      voice_application_sid: null,
      voice_receive_mode: "voice",
      status_callback: input.statusCallback ?? null,
      status_callback_method: "POST",
      sms_url: input.smsUrl ?? null,
      sms_method: input.smsMethod ?? "POST",
      sms_fallback_url: input.smsFallbackUrl ?? null,
      sms_fallback_method: "POST",
      sms_application_sid: null,
      trunk_sid: null,
      address_sid: null,
      address_requirements: "none",
      identity_sid: null,
      bundle_sid: null,
      emergency_status: "Inactive",
      emergency_address_sid: null,
      emergency_address_status: "unregistered",
      beta: false,
      status: "in-use",
      type: input.type ?? (/^\+18(00|33|44|55|66|77|88)/.test(input.phoneNumber) ? "tollfree" : "local"),
      date_created: now,
      date_updated: now,
    };
    this.incomingNumbers.set(number.sid, number);
    return number;
  }

  /** The owned number with this E.164 value, if any. */
  incomingNumberByPhone(phoneNumber: string, accountSid?: string): IncomingNumberResource | undefined {
    for (const n of this.incomingNumbers.values())
      if (n.phone_number === phoneNumber && (!accountSid || n.account_sid === accountSid)) return n;
    return undefined;
  }

  // ---- calls ----

  createCall(input: CreateCallInput): CallResource {
    const now = new Date();
    const status = input.status ?? (input.direction === "inbound" ? "ringing" : "queued");
    const call: CallResource = {
      sid: newSid("CA"),
      account_sid: input.accountSid ?? this.accountSid,
      api_version: API_VERSION,
      parent_call_sid: input.parentCallSid ?? null,
      to: input.to,
      to_formatted: formatNational(input.to),
      from: input.from,
      from_formatted: formatNational(input.from),
      phone_number_sid: input.phoneNumberSid ?? null,
      status,
      direction: input.direction,
      start_time: status === "in-progress" ? rfc2822(now) : null,
      end_time: null,
      duration: null,
      price: null,
      price_unit: "USD",
      answered_by: null,
      forwarded_from: input.forwardedFrom ?? null,
      group_sid: null,
      caller_name: input.callerName ?? null,
      queue_time: "0",
      trunk_sid: null,
      date_created: rfc2822(now),
      date_updated: rfc2822(now),
    };
    this.calls.set(call.sid, call);
    this.events.emit("call-status", call);
    return call;
  }

  getCall(sid: string): CallResource | undefined {
    return this.calls.get(sid);
  }

  /**
   * Changes a call's status: becoming in-progress stamps start_time; reaching a
   * terminal status stamps end_time and the duration (seconds since answer, 0 if
   * never answered). A terminal call does not change again.
   */
  updateCall(sid: string, patch: UpdateCallPatch): CallResource {
    const call = this.calls.get(sid);
    if (!call) throw new Error(`no call ${sid}`);
    if (isTerminalCallStatus(call.status)) return call;
    const now = new Date();
    if (patch.answeredBy !== undefined) call.answered_by = patch.answeredBy;
    if (patch.status && patch.status !== call.status) {
      call.status = patch.status;
      if (patch.status === "in-progress" && !call.start_time) call.start_time = rfc2822(now);
      if (isTerminalCallStatus(patch.status)) {
        call.end_time = rfc2822(now);
        const started = call.start_time ? Date.parse(call.start_time) : now.getTime();
        const computed = call.start_time ? Math.max(0, Math.round((now.getTime() - started) / 1000)) : 0;
        call.duration = String(patch.durationSeconds ?? computed);
      }
    } else if (patch.durationSeconds !== undefined) {
      call.duration = String(patch.durationSeconds);
    }
    call.date_updated = rfc2822(now);
    this.events.emit("call-status", call);
    return call;
  }

  // ---- recordings and transcriptions ----

  /** A finished recording of a call with its WAV audio; its media_url serves the bytes. */
  addRecording(input: {
    callSid: string;
    audio: Uint8Array;
    durationSeconds: number;
    accountSid?: string;
    source?: string;
    channels?: number;
    status?: RecordingResource["status"];
  }): RecordingResource & { mediaUrl: string } {
    const now = rfc2822(new Date());
    const sid = newSid("RE");
    const accountSid = input.accountSid ?? this.calls.get(input.callSid)?.account_sid ?? this.accountSid;
    const recording: RecordingResource = {
      sid,
      account_sid: accountSid,
      api_version: API_VERSION,
      call_sid: input.callSid,
      conference_sid: null,
      date_created: now,
      date_updated: now,
      start_time: now,
      duration: String(Math.round(input.durationSeconds)),
      price: null,
      price_unit: "USD",
      status: input.status ?? "completed",
      channels: input.channels ?? 1,
      source: input.source ?? "RecordVerb",
      error_code: null,
      encryption_details: null,
      media_url: this.recordingMediaUrl(accountSid, sid),
    };
    this.recordings.set(sid, recording);
    this.recordingAudio.set(sid, input.audio);
    this.events.emit("recording-created", recording);
    // mediaUrl is for the driver, not part of Twilio's JSON: non-enumerable, so renders skip it.
    Object.defineProperty(recording, "mediaUrl", { value: recording.media_url, enumerable: false });
    return recording as RecordingResource & { mediaUrl: string };
  }

  /** `${baseUrl}/2010-04-01/Accounts/AC…/Recordings/RE…` (add .wav or .json). */
  recordingMediaUrl(accountSid: string, recordingSid: string): string {
    return `${this.baseUrl}/${API_VERSION}/Accounts/${accountSid}/Recordings/${recordingSid}`;
  }

  deleteRecording(sid: string): boolean {
    if (!this.recordings.delete(sid)) return false;
    this.recordingAudio.delete(sid);
    this.deletedRecordings.push(sid);
    this.events.emit("recording-deleted", sid);
    return true;
  }

  addTranscription(input: {
    recordingSid: string;
    text: string | null;
    status?: TranscriptionResource["status"];
  }): TranscriptionResource {
    const recording = this.recordings.get(input.recordingSid);
    const now = rfc2822(new Date());
    const t: TranscriptionResource = {
      sid: newSid("TR"),
      account_sid: recording?.account_sid ?? this.accountSid,
      api_version: API_VERSION,
      recording_sid: input.recordingSid,
      status: input.status ?? "completed",
      transcription_text: input.text,
      duration: recording?.duration ?? "0",
      price: null,
      price_unit: "USD",
      type: "fast",
      date_created: now,
      date_updated: now,
    };
    this.transcriptions.set(t.sid, t);
    return t;
  }

  // ---- messages ----

  /** Stores a message (REST send or inbound) with its media. */
  createMessage(input: {
    accountSid: string;
    from: string;
    to: string;
    body: string;
    direction: MessageResource["direction"];
    status: MessageStatus;
    media?: InboundMediaInput[];
    mediaCount?: number;
    messagingServiceSid?: string | null;
    send?: MessageSendOptions;
  }): MessageResource {
    const now = rfc2822(new Date());
    const mediaCount = input.media?.length ?? input.mediaCount ?? 0;
    const message: MessageResource = {
      sid: newSid(mediaCount > 0 ? "MM" : "SM"),
      account_sid: input.accountSid,
      api_version: API_VERSION,
      messaging_service_sid: input.messagingServiceSid ?? null,
      from: input.from,
      to: input.to,
      body: input.body,
      num_segments: String(segmentCount(input.body)),
      num_media: String(mediaCount),
      direction: input.direction,
      status: input.status,
      error_code: null,
      error_message: null,
      price: null,
      price_unit: "USD",
      date_created: now,
      date_updated: now,
      date_sent: input.direction === "inbound" ? now : null,
    };
    this.messages.set(message.sid, message);
    if (input.send) this.messageSend.set(message.sid, input.send);
    for (const m of input.media ?? []) this.addMedia(message, m);
    this.events.emit("message-created", message);
    return message;
  }

  addMedia(message: MessageResource, input: InboundMediaInput): MediaResource {
    const now = rfc2822(new Date());
    const media: MediaResource = {
      sid: newSid("ME"),
      account_sid: message.account_sid,
      parent_sid: message.sid,
      content_type: input.contentType,
      date_created: now,
      date_updated: now,
    };
    this.media.set(media.sid, media);
    this.mediaContent.set(media.sid, input.content);
    return media;
  }

  mediaOf(messageSid: string): MediaResource[] {
    return [...this.media.values()].filter((m) => m.parent_sid === messageSid);
  }

  /** `${baseUrl}/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…`: the content itself. */
  mediaUrl(media: MediaResource): string {
    return `${this.baseUrl}/${API_VERSION}/Accounts/${media.account_sid}/Messages/${media.parent_sid}/Media/${media.sid}`;
  }

  /**
   * An SMS/MMS a phone sent to one of the account's numbers (status received).
   * STOP/START keywords change who may be texted, as Twilio's opt-out handling does.
   * The webhook to the number's SMS URL is posted by `sim.deliverInboundMessage`.
   */
  addInboundMessage(input: InboundMessageInput): MessageResource {
    const owner = this.incomingNumberByPhone(input.to);
    const message = this.createMessage({
      accountSid: input.accountSid ?? owner?.account_sid ?? this.accountSid,
      from: input.from,
      to: input.to,
      body: input.body ?? "",
      direction: "inbound",
      status: "received",
      media: input.media ?? [],
    });
    const keyword = (input.body ?? "").trim().toUpperCase();
    const set = this.unsubscribed.get(input.to) ?? new Set<string>();
    if (["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"].includes(keyword)) set.add(input.from);
    if (["START", "YES", "UNSTOP"].includes(keyword)) set.delete(input.from);
    this.unsubscribed.set(input.to, set);
    return message;
  }

  setMessageStatus(sid: string, status: MessageStatus, errorCode: number | null = null): MessageResource {
    const message = this.messages.get(sid);
    if (!message) throw new Error(`no message ${sid}`);
    const now = rfc2822(new Date());
    message.status = status;
    message.date_updated = now;
    if (status === "sent" && !message.date_sent) message.date_sent = now;
    if (errorCode !== null) {
      message.error_code = errorCode;
      message.error_message = MESSAGE_ERRORS[errorCode] ?? "Unknown error";
    }
    this.events.emit("message-status", message);
    return message;
  }

  deleteMessage(sid: string): boolean {
    if (!this.messages.delete(sid)) return false;
    for (const m of this.mediaOf(sid)) {
      this.media.delete(m.sid);
      this.mediaContent.delete(m.sid);
    }
    this.deletedMessages.push(sid);
    return true;
  }

  /** Requests matching a method and a path ending, e.g. ("POST", "/Messages.json"). */
  requestsTo(method: string, pathEnd: string | RegExp): RequestLogEntry[] {
    return this.requests.filter(
      (r) =>
        r.method === method &&
        (typeof pathEnd === "string" ? r.path.endsWith(pathEnd) : pathEnd.test(r.path)),
    );
  }

  // ---- SIP ----

  addSipDomain(input: {
    domainName: string;
    friendlyName?: string;
    voiceUrl?: string | null;
    voiceFallbackUrl?: string | null;
    voiceStatusCallbackUrl?: string | null;
    sipRegistration?: boolean;
    secure?: boolean;
    accountSid?: string;
  }): SipDomainResource {
    const now = rfc2822(new Date());
    const domain: SipDomainResource = {
      sid: newSid("SD"),
      account_sid: input.accountSid ?? this.accountSid,
      api_version: API_VERSION,
      domain_name: input.domainName,
      friendly_name: input.friendlyName ?? input.domainName,
      auth_type: "",
      voice_url: input.voiceUrl ?? null,
      voice_method: "POST",
      voice_fallback_url: input.voiceFallbackUrl ?? null,
      voice_fallback_method: "POST",
      voice_status_callback_url: input.voiceStatusCallbackUrl ?? null,
      voice_status_callback_method: "POST",
      sip_registration: input.sipRegistration ?? false,
      emergency_calling_enabled: false,
      secure: input.secure ?? false,
      byoc_trunk_sid: null,
      emergency_caller_sid: null,
      date_created: now,
      date_updated: now,
    };
    this.sipDomains.set(domain.sid, domain);
    return domain;
  }

  sipDomainByName(name: string): SipDomainResource | undefined {
    const lower = name.toLowerCase();
    for (const d of this.sipDomains.values()) if (d.domain_name.toLowerCase() === lower) return d;
    return undefined;
  }

  addCredentialList(friendlyName: string, accountSid = this.accountSid): CredentialListResource {
    const now = rfc2822(new Date());
    const list: CredentialListResource = {
      sid: newSid("CL"),
      account_sid: accountSid,
      friendly_name: friendlyName,
      date_created: now,
      date_updated: now,
    };
    this.credentialLists.set(list.sid, list);
    return list;
  }

  addCredential(credentialListSid: string, username: string, password: string): CredentialResource {
    const list = this.credentialLists.get(credentialListSid);
    if (!list) throw new Error(`no credential list ${credentialListSid}`);
    const now = rfc2822(new Date());
    const cred: CredentialResource = {
      sid: newSid("CR"),
      account_sid: list.account_sid,
      credential_list_sid: credentialListSid,
      username,
      date_created: now,
      date_updated: now,
    };
    this.credentials.set(cred.sid, cred);
    this.credentialPasswords.set(cred.sid, password);
    return cred;
  }

  credentialsOfList(credentialListSid: string): CredentialResource[] {
    return [...this.credentials.values()].filter((c) => c.credential_list_sid === credentialListSid);
  }

  mapCredentialList(kind: MappingKind, domainSid: string, credentialListSid: string): CredentialListMapping {
    const existing = this.mappings.find(
      (m) => m.kind === kind && m.domainSid === domainSid && m.credentialListSid === credentialListSid,
    );
    if (existing) return existing;
    const now = rfc2822(new Date());
    const mapping = { kind, domainSid, credentialListSid, date_created: now, date_updated: now };
    this.mappings.push(mapping);
    return mapping;
  }

  /**
   * Username/password pairs that may place calls through a domain: the lists
   * mapped for call auth (Auth/Calls) or through the older CredentialListMappings.
   */
  credentialsForDomain(domainSid: string): Array<{ username: string; password: string; sid: string }> {
    const lists = new Set(
      this.mappings
        .filter((m) => m.domainSid === domainSid && (m.kind === "auth-calls" || m.kind === "legacy"))
        .map((m) => m.credentialListSid),
    );
    const out: Array<{ username: string; password: string; sid: string }> = [];
    for (const c of this.credentials.values()) {
      const password = this.credentialPasswords.get(c.sid);
      if (lists.has(c.credential_list_sid) && password !== undefined)
        out.push({ username: c.username, password, sid: c.sid });
    }
    return out;
  }

  /** A Conversational Intelligence Service (GA…), needed before transcripts can be created. */
  addIntelligenceService(uniqueName: string, accountSid = this.accountSid): IntelligenceServiceResource {
    const now = iso8601(new Date());
    const service: IntelligenceServiceResource = {
      sid: newSid("GA"),
      account_sid: accountSid,
      unique_name: uniqueName,
      friendly_name: null,
      language_code: "en-US",
      auto_redaction: false,
      media_redaction: false,
      auto_transcribe: false,
      data_logging: false,
      webhook_url: null,
      webhook_http_method: "POST",
      read_only_attached_operator_sids: [],
      version: 1,
      encryption_credential_sid: null,
      date_created: now,
      date_updated: now,
    };
    this.intelligenceServices.set(service.sid, service);
    return service;
  }

  /**
   * Appends to a log, dropping the oldest entries past LOG_LIMIT so a simulator
   * left running (npm run twilio-sim) does not grow without bound.
   */
  log<T>(list: T[], entry: T): void {
    list.push(entry);
    if (list.length > LOG_LIMIT) list.splice(0, list.length - LOG_LIMIT);
  }

  /** A plain-data snapshot for GET /__sim/state (no audio bytes, no passwords). */
  snapshot(): Record<string, unknown> {
    return {
      accountSid: this.accountSid,
      baseUrl: this.baseUrl,
      accounts: [...this.accounts.values()].map(({ auth_token: _t, ...a }) => a),
      incomingNumbers: [...this.incomingNumbers.values()],
      calls: [...this.calls.values()],
      messages: [...this.messages.values()],
      media: [...this.media.values()],
      recordings: [...this.recordings.values()],
      deletedRecordings: this.deletedRecordings,
      transcriptions: [...this.transcriptions.values()],
      sipDomains: [...this.sipDomains.values()],
      credentialLists: [...this.credentialLists.values()],
      credentials: [...this.credentials.values()],
      mappings: this.mappings,
      intelligenceServices: [...this.intelligenceServices.values()],
      intelligenceTranscripts: [...this.intelligenceTranscripts.values()],
      serverless: {
        services: [...this.serverlessServices.values()],
        environments: [...this.serverlessEnvironments.values()],
        functions: [...this.serverlessFunctions.values()],
        builds: [...this.serverlessBuilds.values()].map(({ pollsUntilDone: _p, ...b }) => b),
        deployments: [...this.serverlessDeployments.values()],
      },
      // SIP credential passwords travel in forms: masked here as everywhere Twilio shows them.
      requests: this.requests.map((r) =>
        r.form.Password === undefined ? r : { ...r, form: { ...r.form, Password: "***" } },
      ),
      webhooks: this.webhooks,
    };
  }
}

/** Messages Twilio gives for the error codes the simulator produces. */
export const MESSAGE_ERRORS: Record<number, string> = {
  11200: "HTTP retrieval failure",
  12300: "Invalid Content-Type",
  30003: "Unreachable destination handset",
  30005: "Unknown destination handset",
  30006: "Landline or unreachable carrier",
  30007: "Message filtered",
  30008: "Unknown error",
  30034: "US A2P 10DLC - Message from an Unregistered Number",
};
