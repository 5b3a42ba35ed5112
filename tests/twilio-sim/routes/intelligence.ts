/**
 * Conversational Intelligence v2 (intelligence.twilio.com): Services (GA…, one
 * is needed before any transcript; `state.addIntelligenceService`), create a transcript
 * from a recording (Channel.media_properties.source_sid = RE…) or a media URL,
 * fetch it (queued at creation, completed from the first fetch on), list its
 * sentences, delete it. The text is `state.intelligenceTexts` for the
 * recording, else the recording's Twilio transcription, else a fixed sentence.
 */

import { listMeta, noContent, notFound, ok, type Router, SimError, type SimRequest } from "../http.ts";
import type { SimContext } from "../server.ts";
import {
  type IntelligenceServiceResource,
  type IntelligenceTranscriptResource,
  iso8601,
  newSid,
} from "../state.ts";

export const DEFAULT_INTELLIGENCE_TEXT = "Hello, this is a simulated caller leaving a message.";

function render(t: IntelligenceTranscriptResource, baseUrl: string) {
  const { recordingSid: _r, text: _t, ...json } = t;
  const url = `${baseUrl}/v2/Transcripts/${t.sid}`;
  return {
    ...json,
    encryption_credential_sid: null,
    url,
    links: {
      sentences: `${url}/Sentences`,
      encrypted_sentences: `${url}/Sentences/Encrypted`,
      media: `${url}/Media`,
      operator_results: `${url}/OperatorResults`,
      encrypted_operator_results: `${url}/OperatorResults/Encrypted`,
    },
  };
}

/** Sentences of a text: split at . ! ?, timed at 2.5 words a second. */
function sentences(text: string) {
  const parts =
    text
      .match(/[^.!?]+[.!?]*/g)
      ?.map((s) => s.trim())
      .filter(Boolean) ?? [];
  let clock = 0;
  return parts.map((transcript, i) => {
    const words = transcript.split(/\s+/);
    const start = clock;
    clock += words.length / 2.5;
    return {
      media_channel: 1,
      sentence_index: i,
      start_time: start.toFixed(2),
      end_time: clock.toFixed(2),
      transcript,
      sid: newSid("GX"),
      confidence: "0.95",
      words: words.map((word) => ({ word, start_time: null, end_time: null })),
    };
  });
}

function renderService(s: IntelligenceServiceResource, baseUrl: string) {
  return { ...s, url: `${baseUrl}/v2/Services/${s.sid}` };
}

export function registerIntelligenceRoutes(router: Router, ctx: SimContext): void {
  const { state } = ctx;
  const ownService = (req: SimRequest) => {
    const s = state.intelligenceServices.get(req.params.Sid ?? "");
    if (!s || s.account_sid !== req.account.sid) throw notFound(req.path);
    return s;
  };
  router
    .get("/v2/Services", (req) =>
      listMeta(
        req,
        "services",
        [...state.intelligenceServices.values()].filter((s) => s.account_sid === req.account.sid),
        (s) => renderService(s, state.baseUrl),
      ),
    )
    .post("/v2/Services", (req) => {
      const unique = req.form.get("UniqueName");
      if (!unique || unique.length > 64) throw new SimError(400, 20001, "UniqueName is required");
      if (
        [...state.intelligenceServices.values()].some(
          (s) => s.account_sid === req.account.sid && s.unique_name === unique,
        )
      )
        throw new SimError(409, 20001, `UniqueName ${unique} already exists`);
      const s = state.addIntelligenceService(unique, req.account.sid);
      s.friendly_name = req.form.get("FriendlyName") ?? null;
      s.language_code = req.form.get("LanguageCode") ?? s.language_code;
      s.auto_transcribe = req.form.bool("AutoTranscribe") ?? false;
      s.data_logging = req.form.bool("DataLogging") ?? false;
      s.auto_redaction = req.form.bool("AutoRedaction") ?? false;
      s.media_redaction = req.form.bool("MediaRedaction") ?? false;
      s.webhook_url = req.form.urlOr("WebhookUrl", null);
      s.webhook_http_method = req.form.methodOr("WebhookHttpMethod", "POST") as "GET" | "POST";
      return ok(renderService(s, state.baseUrl), 201);
    })
    .get("/v2/Services/:Sid", (req) => ok(renderService(ownService(req), state.baseUrl)))
    .delete("/v2/Services/:Sid", (req) => {
      state.intelligenceServices.delete(ownService(req).sid);
      return noContent();
    });
  const own = (req: SimRequest, sid: string) => {
    const t = state.intelligenceTranscripts.get(sid);
    if (!t || t.account_sid !== req.account.sid) throw notFound(req.path);
    return t;
  };
  router
    .post("/v2/Transcripts", (req) => {
      const service = req.form.get("ServiceSid");
      const channelRaw = req.form.get("Channel");
      if (!service || !/^GA[0-9a-fA-F]{32}$/.test(service))
        throw new SimError(400, 20001, "ServiceSid is required and must be a GA… SID");
      const owner = state.intelligenceServices.get(service);
      if (!owner || owner.account_sid !== req.account.sid)
        throw new SimError(404, 20404, `The requested resource Service ${service} was not found`);
      if (!channelRaw) throw new SimError(400, 20001, "Channel is required");
      let channel: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(channelRaw);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          throw new Error("not an object");
        channel = parsed as Record<string, unknown>;
      } catch {
        throw new SimError(400, 20001, "Channel must be a JSON object");
      }
      const media = channel.media_properties as Record<string, unknown> | undefined;
      const sourceSid = typeof media?.source_sid === "string" ? media.source_sid : undefined;
      const mediaUrl = typeof media?.media_url === "string" ? media.media_url : undefined;
      if (!sourceSid && !mediaUrl)
        throw new SimError(400, 20001, "Channel.media_properties needs source_sid or media_url");
      let recordingSid: string | null = null;
      if (sourceSid) {
        const recording = state.recordings.get(sourceSid);
        if (!recording || recording.account_sid !== req.account.sid)
          throw new SimError(400, 20001, `Recording ${sourceSid} not found`);
        recordingSid = recording.sid;
      } else if (mediaUrl) {
        const m = /\/Recordings\/(RE[0-9a-f]{32})/.exec(mediaUrl);
        recordingSid = m?.[1] && state.recordings.has(m[1]) ? m[1] : null;
      }
      const twilioText = [...state.transcriptions.values()].find(
        (t) => t.recording_sid === recordingSid && t.transcription_text,
      )?.transcription_text;
      const text =
        (recordingSid ? state.intelligenceTexts.get(recordingSid) : undefined) ??
        twilioText ??
        DEFAULT_INTELLIGENCE_TEXT;
      const now = iso8601(new Date());
      const duration = recordingSid ? Number(state.recordings.get(recordingSid)?.duration ?? 0) : 0;
      const t: IntelligenceTranscriptResource = {
        sid: newSid("GT"),
        account_sid: req.account.sid,
        service_sid: service,
        status: "queued",
        channel,
        data_logging: false,
        language_code: "en-US",
        customer_key: req.form.get("CustomerKey") ?? null,
        media_start_time: req.form.get("MediaStartTime") ?? null,
        duration,
        redaction: true,
        date_created: now,
        date_updated: now,
        recordingSid,
        text,
      };
      state.intelligenceTranscripts.set(t.sid, t);
      return ok(render(t, state.baseUrl), 202);
    })
    .get("/v2/Transcripts", (req) => {
      const items = [...state.intelligenceTranscripts.values()].filter(
        (t) => t.account_sid === req.account.sid,
      );
      return listMeta(req, "transcripts", items, (t) => render(t, state.baseUrl));
    })
    .get("/v2/Transcripts/:Sid", (req) => {
      const t = own(req, req.params.Sid ?? "");
      if (t.status === "queued" || t.status === "in-progress") {
        // Transcribing takes one poll here: the caller's polling loop is exercised without waiting.
        t.status = "completed";
        t.date_updated = iso8601(new Date());
        return ok({ ...render(t, state.baseUrl), status: "in-progress" });
      }
      return ok(render(t, state.baseUrl));
    })
    .delete("/v2/Transcripts/:Sid", (req) => {
      const t = own(req, req.params.Sid ?? "");
      state.intelligenceTranscripts.delete(t.sid);
      return noContent();
    })
    .get("/v2/Transcripts/:TranscriptSid/Sentences", (req) => {
      const t = own(req, req.params.TranscriptSid ?? "");
      if (t.status !== "completed") throw new SimError(400, 20001, "Transcript is not completed yet");
      return listMeta(req, "sentences", sentences(t.text), (s) => s, 5000);
    });
}
