/**
 * api.twilio.com 2010-04-01, the voice and number side: Accounts,
 * IncomingPhoneNumbers (buy, configure, release), AvailablePhoneNumbers (Local
 * and TollFree search), Calls (create, list, fetch, redirect or hang up),
 * Recordings (JSON and the WAV itself) and Transcriptions.
 */
import {
  dateFilter,
  listV2010,
  newestFirst,
  noContent,
  notFound,
  ok,
  type Router,
  SimError,
  type SimRequest,
} from "../http.ts";
import type { SimContext } from "../server.ts";
import {
  type AccountResource,
  API_VERSION,
  type AvailableNumber,
  type CallInstructions,
  type CallResource,
  type CallStatus,
  type IncomingNumberResource,
  isE164,
  isTerminalCallStatus,
  type RecordingResource,
  rfc2822,
  type SimState,
  type TranscriptionResource,
} from "../state.ts";

const A = `/${API_VERSION}/Accounts`;
const acct = (sid: string) => `${A}/${sid}`;

function renderAccount(a: AccountResource) {
  const base = acct(a.sid);
  return {
    ...a,
    uri: `${base}.json`,
    subresource_uris: {
      addresses: `${base}/Addresses.json`,
      conferences: `${base}/Conferences.json`,
      signing_keys: `${base}/SigningKeys.json`,
      transcriptions: `${base}/Transcriptions.json`,
      connect_apps: `${base}/ConnectApps.json`,
      sip: `${base}/SIP.json`,
      authorized_connect_apps: `${base}/AuthorizedConnectApps.json`,
      usage: `${base}/Usage.json`,
      keys: `${base}/Keys.json`,
      applications: `${base}/Applications.json`,
      recordings: `${base}/Recordings.json`,
      short_codes: `${base}/SMS/ShortCodes.json`,
      calls: `${base}/Calls.json`,
      notifications: `${base}/Notifications.json`,
      incoming_phone_numbers: `${base}/IncomingPhoneNumbers.json`,
      queues: `${base}/Queues.json`,
      messages: `${base}/Messages.json`,
      outgoing_caller_ids: `${base}/OutgoingCallerIds.json`,
      available_phone_numbers: `${base}/AvailablePhoneNumbers.json`,
      balance: `${base}/Balance.json`,
    },
  };
}

/**
 * An IncomingPhoneNumber as Twilio answers it. The /Local, /Mobile and
 * /TollFree collections answer the same resource without its `type`.
 */
export function renderIncomingNumber(n: IncomingNumberResource, withType = true) {
  const { capabilities, type, ...rest } = n;
  return {
    ...rest,
    ...(withType ? { type } : {}),
    capabilities: {
      voice: capabilities.voice,
      sms: capabilities.sms,
      mms: capabilities.mms,
      fax: capabilities.fax,
    },
    uri: `${acct(n.account_sid)}/IncomingPhoneNumbers/${n.sid}.json`,
  };
}

function renderAvailable(n: AvailableNumber) {
  const { type: _type, ...rest } = n;
  return rest;
}

export function renderCall(c: CallResource) {
  const base = `${acct(c.account_sid)}/Calls/${c.sid}`;
  return {
    ...c,
    uri: `${base}.json`,
    subresource_uris: {
      feedback: `${base}/Feedback.json`,
      user_defined_messages: `${base}/UserDefinedMessages.json`,
      notifications: `${base}/Notifications.json`,
      recordings: `${base}/Recordings.json`,
      streams: `${base}/Streams.json`,
      payments: `${base}/Payments.json`,
      user_defined_message_subscriptions: `${base}/UserDefinedMessageSubscriptions.json`,
      siprec: `${base}/Siprec.json`,
      events: `${base}/Events.json`,
      feedback_summaries: `${acct(c.account_sid)}/Calls/FeedbackSummary.json`,
    },
  };
}

export function renderRecording(r: RecordingResource) {
  const base = `${acct(r.account_sid)}/Recordings/${r.sid}`;
  return {
    ...r,
    uri: `${base}.json`,
    subresource_uris: {
      add_on_results: `${base}/AddOnResults.json`,
      transcriptions: `${base}/Transcriptions.json`,
    },
  };
}

/** A recording as the call's Recordings collection answers it (with `track`, without media_url). */
function renderCallRecording(r: RecordingResource) {
  const { media_url: _m, ...rest } = r;
  return {
    ...rest,
    track: "both",
    uri: `${acct(r.account_sid)}/Calls/${r.call_sid}/Recordings/${r.sid}.json`,
  };
}

export function renderTranscription(t: TranscriptionResource) {
  return { ...t, uri: `${acct(t.account_sid)}/Transcriptions/${t.sid}.json` };
}

function ownIncoming(req: SimRequest): IncomingNumberResource {
  const n = req.state.incomingNumbers.get(req.params.Sid ?? "");
  if (!n || n.account_sid !== req.account.sid) throw notFound(req.path);
  return n;
}

/** Applies the configurable fields of an IncomingPhoneNumber from a create/update form. */
function applyNumberConfig(n: IncomingNumberResource, req: SimRequest): void {
  const f = req.form;
  const name = f.get("FriendlyName");
  if (name !== undefined) {
    if (name.length > 64) throw new SimError(400, 21502, "FriendlyName is too long (64 characters at most)");
    n.friendly_name = name;
  }
  n.voice_url = f.urlOr("VoiceUrl", n.voice_url);
  n.voice_method = f.methodOr("VoiceMethod", n.voice_method);
  n.voice_fallback_url = f.urlOr("VoiceFallbackUrl", n.voice_fallback_url);
  n.voice_fallback_method = f.methodOr("VoiceFallbackMethod", n.voice_fallback_method);
  n.status_callback = f.urlOr("StatusCallback", n.status_callback);
  n.status_callback_method = f.methodOr("StatusCallbackMethod", n.status_callback_method);
  n.sms_url = f.urlOr("SmsUrl", n.sms_url);
  n.sms_method = f.methodOr("SmsMethod", n.sms_method);
  n.sms_fallback_url = f.urlOr("SmsFallbackUrl", n.sms_fallback_url);
  n.sms_fallback_method = f.methodOr("SmsFallbackMethod", n.sms_fallback_method);
  const lookup = f.bool("VoiceCallerIdLookup");
  if (lookup !== undefined) n.voice_caller_id_lookup = lookup;
  const voiceApp = f.get("VoiceApplicationSid");
  if (voiceApp !== undefined) n.voice_application_sid = voiceApp || null;
  const smsApp = f.get("SmsApplicationSid");
  if (smsApp !== undefined) n.sms_application_sid = smsApp || null;
  const trunk = f.get("TrunkSid");
  if (trunk !== undefined) n.trunk_sid = trunk || null;
  n.date_updated = rfc2822(new Date());
}

function buyNumber(req: SimRequest, type?: IncomingNumberResource["type"]) {
  const { state } = req;
  const phone = req.form.get("PhoneNumber");
  const areaCode = req.form.get("AreaCode");
  if (phone === undefined && areaCode === undefined)
    throw new SimError(400, 21421, "PhoneNumber or AreaCode is required");
  let index: number;
  if (phone !== undefined) {
    if (!isE164(phone)) throw new SimError(400, 21421, `PhoneNumber ${phone} is invalid`);
    index = state.availableNumbers.findIndex((n) => n.phone_number === phone && (!type || n.type === type));
  } else {
    index = state.availableNumbers.findIndex(
      (n) => n.phone_number.startsWith(`+1${areaCode}`) && (!type || n.type === type),
    );
  }
  const available = index >= 0 ? state.availableNumbers[index] : undefined;
  if (!available)
    throw new SimError(
      400,
      21422,
      phone !== undefined
        ? `PhoneNumber ${phone} is not available`
        : `No phone numbers found in area code ${areaCode}`,
    );
  state.availableNumbers.splice(index, 1);
  const n = state.addIncomingNumber({
    phoneNumber: available.phone_number,
    accountSid: req.account.sid,
    capabilities: {
      voice: available.capabilities.voice,
      sms: available.capabilities.SMS,
      mms: available.capabilities.MMS,
    },
    type: available.type,
  });
  applyNumberConfig(n, req);
  return ok(renderIncomingNumber(n, !type), 201);
}

function listIncoming(req: SimRequest, type?: IncomingNumberResource["type"]) {
  const phone = req.query.get("PhoneNumber");
  const name = req.query.get("FriendlyName");
  const items = [...req.state.incomingNumbers.values()].filter(
    (n) =>
      n.account_sid === req.account.sid &&
      (!type || n.type === type) &&
      (phone === undefined || n.phone_number.includes(phone.replace(/\*/g, ""))) &&
      (name === undefined || n.friendly_name === name),
  );
  return listV2010(req, "incoming_phone_numbers", items, (n) => renderIncomingNumber(n, !type));
}

function searchAvailable(req: SimRequest, type: AvailableNumber["type"]) {
  const country = req.params.CountryCode ?? "";
  if (!/^[A-Z]{2}$/.test(country)) throw notFound(req.path);
  const area = req.query.get("AreaCode");
  const contains = req.query.get("Contains");
  const sms = req.query.bool("SmsEnabled");
  const mms = req.query.bool("MmsEnabled");
  const voice = req.query.bool("VoiceEnabled");
  if (area !== undefined && !/^\d{3}$/.test(area)) throw new SimError(400, 21452, `Invalid AreaCode ${area}`);
  let pattern: RegExp | undefined;
  if (contains !== undefined) {
    // Contains: digits, letters (phone keypad) and * for any one digit.
    const keypad: Record<string, string> = {
      A: "2",
      B: "2",
      C: "2",
      D: "3",
      E: "3",
      F: "3",
      G: "4",
      H: "4",
      I: "4",
      J: "5",
      K: "5",
      L: "5",
      M: "6",
      N: "6",
      O: "6",
      P: "7",
      Q: "7",
      R: "7",
      S: "7",
      T: "8",
      U: "8",
      V: "8",
      W: "9",
      X: "9",
      Y: "9",
      Z: "9",
    };
    const digits = [...contains.toUpperCase()].map((c) => (c === "*" ? "\\d" : (keypad[c] ?? c))).join("");
    if (!/^(\\d|\d|\+)+$/.test(digits)) throw new SimError(400, 21451, `Invalid Contains ${contains}`);
    pattern = new RegExp(digits.replace(/\+/g, "\\+"));
  }
  const region = req.query.get("InRegion");
  const postal = req.query.get("InPostalCode");
  const locality = req.query.get("InLocality");
  const items = req.state.availableNumbers.filter(
    (n) =>
      n.iso_country === country &&
      (region === undefined || n.region === region) &&
      (postal === undefined || n.postal_code === postal) &&
      (locality === undefined || n.locality?.toLowerCase() === locality.toLowerCase()) &&
      n.type === type &&
      (area === undefined || n.phone_number.startsWith(`+1${area}`)) &&
      (!pattern || pattern.test(n.phone_number)) &&
      (sms !== true || n.capabilities.SMS) &&
      (mms !== true || n.capabilities.MMS) &&
      (voice !== true || n.capabilities.voice),
  );
  return listV2010(req, "available_phone_numbers", items, renderAvailable);
}

function ownCall(req: SimRequest): CallResource {
  const c = req.state.calls.get(req.params.Sid ?? "");
  if (!c || c.account_sid !== req.account.sid) throw notFound(req.path);
  return c;
}

function callInstructions(req: SimRequest): CallInstructions {
  const f = req.form;
  const out: CallInstructions = {};
  const url = f.urlOr("Url", null);
  if (url) out.url = url;
  const twiml = f.get("Twiml");
  if (twiml !== undefined) {
    if (twiml.length > 4000) throw new SimError(400, 21220, "Twiml is longer than 4000 characters");
    out.twiml = twiml;
  }
  out.method = f.methodOr("Method", "POST");
  const fallback = f.urlOr("FallbackUrl", null);
  if (fallback) out.fallbackUrl = fallback;
  const cb = f.urlOr("StatusCallback", null);
  if (cb) out.statusCallback = cb;
  out.statusCallbackMethod = f.methodOr("StatusCallbackMethod", "POST");
  const events = f.all("StatusCallbackEvent").flatMap((e) => e.split(" ").filter(Boolean));
  if (events.length) out.statusCallbackEvents = events;
  const timeout = f.get("Timeout");
  if (timeout !== undefined) {
    const n = Number(timeout);
    if (!Number.isInteger(n) || n < 1 || n > 600)
      throw new SimError(400, 21216, `Invalid Timeout ${timeout}`);
    out.timeoutSeconds = n;
  }
  const record = f.bool("Record");
  if (record !== undefined) out.record = record;
  return out;
}

const SIP_OR_CLIENT = /^(sip:|client:)/i;

function createCall(req: SimRequest) {
  const { state } = req;
  const to = req.form.get("To");
  const from = req.form.get("From");
  if (!to) throw new SimError(400, 21201, "No 'To' number is specified");
  if (!from) throw new SimError(400, 21213, "No 'From' number is specified");
  if (!isE164(to) && !SIP_OR_CLIENT.test(to))
    throw new SimError(400, 21211, `Invalid 'To' Phone Number: ${to}`);
  if (!isE164(from) && !SIP_OR_CLIENT.test(from))
    throw new SimError(400, 21212, `Invalid 'From' Phone Number: ${from}`);
  const instructions = callInstructions(req);
  if (!instructions.url && instructions.twiml === undefined && !req.form.get("ApplicationSid"))
    throw new SimError(400, 21205, "Url parameter is required");
  if (isE164(from) && !state.incomingNumberByPhone(from, req.account.sid))
    throw new SimError(
      400,
      21210,
      `The source phone number provided, ${from}, is not yet verified for your account.`,
    );
  const owned = state.incomingNumberByPhone(from, req.account.sid);
  const call = state.createCall({
    from,
    to,
    direction: "outbound-api",
    accountSid: req.account.sid,
    status: "queued",
    phoneNumberSid: owned?.sid ?? null,
  });
  state.callInstructions.set(call.sid, instructions);
  state.events.emit("call-created", call, instructions);
  return ok(renderCall(call), 201);
}

function updateCall(req: SimRequest) {
  const { state } = req;
  const call = ownCall(req);
  const status = req.form.get("Status");
  if (status !== undefined) {
    if (status !== "completed" && status !== "canceled")
      throw new SimError(400, 21218, `Invalid Status ${status}: completed or canceled`);
    if (!isTerminalCallStatus(call.status)) {
      // canceled only ends a call that was not answered yet; completed ends either.
      const unanswered = call.status === "queued" || call.status === "ringing";
      if (status === "completed")
        state.updateCall(call.sid, { status: unanswered ? "canceled" : "completed" });
      else if (unanswered) state.updateCall(call.sid, { status: "canceled" });
      state.events.emit("call-ended-by-api", call);
    }
    return ok(renderCall(call));
  }
  const instructions = callInstructions(req);
  if (instructions.url || instructions.twiml !== undefined) {
    if (isTerminalCallStatus(call.status))
      throw new SimError(400, 21220, "Call is not in-progress. Cannot redirect.");
    state.callInstructions.set(call.sid, { ...state.callInstructions.get(call.sid), ...instructions });
    state.events.emit("call-redirected", call, instructions);
  }
  return ok(renderCall(call));
}

function listCalls(req: SimRequest) {
  const q = req.query;
  const to = q.get("To");
  const from = q.get("From");
  const status = q.get("Status") as CallStatus | undefined;
  const parent = q.get("ParentCallSid");
  const started = dateFilter(q, "StartTime");
  const ended = dateFilter(q, "EndTime");
  const items = newestFirst(req.state.calls.values()).filter(
    (c) =>
      c.account_sid === req.account.sid &&
      (to === undefined || c.to === to) &&
      (from === undefined || c.from === from) &&
      (status === undefined || c.status === status) &&
      (parent === undefined || c.parent_call_sid === parent) &&
      started(c.start_time ?? c.date_created) &&
      ended(c.end_time),
  );
  return listV2010(req, "calls", items, renderCall);
}

function ownRecording(req: SimRequest, sid = req.params.Sid ?? ""): RecordingResource {
  const r = req.state.recordings.get(sid);
  if (!r || r.account_sid !== req.account.sid) throw notFound(req.path);
  return r;
}

function listRecordings(req: SimRequest, callSid?: string) {
  const render = callSid === undefined ? renderRecording : renderCallRecording;
  const q = req.query;
  const call = callSid ?? q.get("CallSid");
  const created = dateFilter(q, "DateCreated");
  const items = newestFirst(req.state.recordings.values()).filter(
    (r) =>
      r.account_sid === req.account.sid &&
      (call === undefined || r.call_sid === call) &&
      created(r.date_created),
  );
  return listV2010(req, "recordings", items, render);
}

function recordingAudio(req: SimRequest) {
  const r = ownRecording(req);
  const audio = req.state.recordingAudio.get(r.sid);
  if (!audio) throw notFound(req.path);
  return { status: 200, bytes: audio, contentType: "audio/x-wav" };
}

function deleteRecording(req: SimRequest) {
  const r = ownRecording(req);
  req.state.deleteRecording(r.sid);
  for (const t of [...req.state.transcriptions.values()])
    if (t.recording_sid === r.sid) req.state.transcriptions.delete(t.sid);
  return noContent();
}

function ownTranscription(req: SimRequest): TranscriptionResource {
  const t = req.state.transcriptions.get(req.params.Sid ?? "");
  if (!t || t.account_sid !== req.account.sid) throw notFound(req.path);
  return t;
}

function listTranscriptions(state: SimState, req: SimRequest, recordingSid?: string) {
  const items = newestFirst(state.transcriptions.values()).filter(
    (t) =>
      t.account_sid === req.account.sid && (recordingSid === undefined || t.recording_sid === recordingSid),
  );
  return listV2010(req, "transcriptions", items, renderTranscription);
}

export function registerCoreRoutes(router: Router, ctx: SimContext): void {
  const { state } = ctx;
  router
    .get(`${A}.json`, (req) => {
      const name = req.query.get("FriendlyName");
      const status = req.query.get("Status");
      const visible = [...state.accounts.values()].filter(
        (a) =>
          (a.sid === req.account.sid || a.owner_account_sid === req.account.sid) &&
          (name === undefined || a.friendly_name === name) &&
          (status === undefined || a.status === status),
      );
      return listV2010(req, "accounts", visible, renderAccount);
    })
    .post(`${A}.json`, (req) => {
      // Creating a subaccount is for the main account only.
      if (req.account.sid !== state.accountSid)
        throw new SimError(403, 20005, "Subaccounts cannot create subaccounts");
      const name = req.form.get("FriendlyName") ?? `SubAccount Created at ${rfc2822(new Date())}`;
      if (name.length > 64)
        throw new SimError(400, 21502, "FriendlyName is too long (64 characters at most)");
      return ok(renderAccount(state.addSubaccount(name)), 201);
    })
    .get(`${A}/:AccountSid.json`, (req) => ok(renderAccount(req.account)))
    .post(`${A}/:AccountSid.json`, (req) => {
      const name = req.form.get("FriendlyName");
      if (name !== undefined) req.account.friendly_name = name;
      const status = req.form.get("Status");
      if (status !== undefined) {
        if (status !== "active" && status !== "suspended" && status !== "closed")
          throw new SimError(400, 20001, `Invalid Status ${status}`);
        req.account.status = status;
      }
      req.account.date_updated = rfc2822(new Date());
      return ok(renderAccount(req.account));
    })
    // Incoming numbers
    .get(`${A}/:AccountSid/IncomingPhoneNumbers.json`, (req) => listIncoming(req))
    .get(`${A}/:AccountSid/IncomingPhoneNumbers/Local.json`, (req) => listIncoming(req, "local"))
    .get(`${A}/:AccountSid/IncomingPhoneNumbers/TollFree.json`, (req) => listIncoming(req, "tollfree"))
    .get(`${A}/:AccountSid/IncomingPhoneNumbers/Mobile.json`, (req) => listIncoming(req, "mobile"))
    .post(`${A}/:AccountSid/IncomingPhoneNumbers.json`, (req) => buyNumber(req))
    .post(`${A}/:AccountSid/IncomingPhoneNumbers/Local.json`, (req) => buyNumber(req, "local"))
    .post(`${A}/:AccountSid/IncomingPhoneNumbers/TollFree.json`, (req) => buyNumber(req, "tollfree"))
    .post(`${A}/:AccountSid/IncomingPhoneNumbers/Mobile.json`, (req) => buyNumber(req, "mobile"))
    .get(`${A}/:AccountSid/IncomingPhoneNumbers/:Sid.json`, (req) =>
      ok(renderIncomingNumber(ownIncoming(req))),
    )
    .post(`${A}/:AccountSid/IncomingPhoneNumbers/:Sid.json`, (req) => {
      const n = ownIncoming(req);
      // Validate everything on a copy first: a bad field changes nothing.
      const copy = structuredClone(n);
      applyNumberConfig(copy, req);
      Object.assign(n, copy);
      return ok(renderIncomingNumber(n));
    })
    .delete(`${A}/:AccountSid/IncomingPhoneNumbers/:Sid.json`, (req) => {
      const n = ownIncoming(req);
      state.incomingNumbers.delete(n.sid);
      return noContent();
    })
    // Available numbers
    .get(`${A}/:AccountSid/AvailablePhoneNumbers/:CountryCode/Local.json`, (req) =>
      searchAvailable(req, "local"),
    )
    .get(`${A}/:AccountSid/AvailablePhoneNumbers/:CountryCode/Mobile.json`, (req) =>
      searchAvailable(req, "mobile"),
    )
    .get(`${A}/:AccountSid/AvailablePhoneNumbers/:CountryCode/TollFree.json`, (req) =>
      searchAvailable(req, "tollfree"),
    )
    // Calls
    .get(`${A}/:AccountSid/Calls.json`, listCalls)
    .post(`${A}/:AccountSid/Calls.json`, createCall)
    .get(`${A}/:AccountSid/Calls/:Sid.json`, (req) => ok(renderCall(ownCall(req))))
    .post(`${A}/:AccountSid/Calls/:Sid.json`, updateCall)
    .delete(`${A}/:AccountSid/Calls/:Sid.json`, (req) => {
      const c = ownCall(req);
      state.calls.delete(c.sid);
      return noContent();
    })
    .get(`${A}/:AccountSid/Calls/:CallSid/Recordings.json`, (req) => listRecordings(req, req.params.CallSid))
    // Recordings
    .get(`${A}/:AccountSid/Recordings.json`, (req) => listRecordings(req))
    .get(`${A}/:AccountSid/Recordings/:Sid.json`, (req) => ok(renderRecording(ownRecording(req))))
    .get(`${A}/:AccountSid/Recordings/:Sid.wav`, recordingAudio)
    .get(`${A}/:AccountSid/Recordings/:Sid`, recordingAudio)
    .get(`${A}/:AccountSid/Recordings/:Sid.mp3`, (req) => {
      ownRecording(req);
      // No MP3 encoder here: say so rather than answer a bare 404 a test would misread.
      throw new SimError(404, 20404, "The simulator serves recordings as WAV only (.wav or no extension)");
    })
    .delete(`${A}/:AccountSid/Recordings/:Sid.json`, deleteRecording)
    .delete(`${A}/:AccountSid/Recordings/:Sid`, deleteRecording)
    .get(`${A}/:AccountSid/Recordings/:RecordingSid/Transcriptions.json`, (req) =>
      listTranscriptions(state, req, ownRecording(req, req.params.RecordingSid).sid),
    )
    // Transcriptions
    .get(`${A}/:AccountSid/Transcriptions.json`, (req) => listTranscriptions(state, req))
    .get(`${A}/:AccountSid/Transcriptions/:Sid.json`, (req) => ok(renderTranscription(ownTranscription(req))))
    .get(`${A}/:AccountSid/Transcriptions/:Sid.txt`, (req) => ({
      status: 200,
      bytes: new TextEncoder().encode(ownTranscription(req).transcription_text ?? ""),
      contentType: "text/plain; charset=utf-8",
    }))
    .delete(`${A}/:AccountSid/Transcriptions/:Sid.json`, (req) => {
      const t = ownTranscription(req);
      state.transcriptions.delete(t.sid);
      return noContent();
    });
}
