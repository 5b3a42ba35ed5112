/**
 * api.twilio.com 2010-04-01 Messages: send (validated the way Twilio validates:
 * 21604/21211 To, 21603/21212/21606 From, 21602 no body, 21610 opted out,
 * 21617 too long), list with To/From/DateSent filters, fetch, redact (update
 * Body to ""), delete, and the media of a message (list, JSON, content, delete).
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
import { API_VERSION, isE164, type MediaResource, type MessageResource, rfc2822 } from "../state.ts";

const A = `/${API_VERSION}/Accounts`;

export function renderMessage(m: MessageResource) {
  const base = `${A}/${m.account_sid}/Messages/${m.sid}`;
  return {
    ...m,
    uri: `${base}.json`,
    subresource_uris: { media: `${base}/Media.json`, feedback: `${base}/Feedback.json` },
  };
}

export function renderMedia(m: MediaResource) {
  return { ...m, uri: `${A}/${m.account_sid}/Messages/${m.parent_sid}/Media/${m.sid}.json` };
}

function ownMessage(req: SimRequest, sid = req.params.Sid ?? ""): MessageResource {
  const m = req.state.messages.get(sid);
  if (!m || m.account_sid !== req.account.sid) throw notFound(req.path);
  return m;
}

function ownMedia(req: SimRequest): MediaResource {
  const message = ownMessage(req, req.params.MessageSid);
  const media = req.state.media.get(req.params.Sid ?? "");
  if (!media || media.parent_sid !== message.sid) throw notFound(req.path);
  return media;
}

function createMessage(req: SimRequest, ctx: SimContext) {
  const { state } = req;
  const f = req.form;
  const to = f.get("To");
  const from = f.get("From");
  const service = f.get("MessagingServiceSid");
  const body = f.get("Body") ?? "";
  const mediaUrls = f.all("MediaUrl");
  if (!to) throw new SimError(400, 21604, "A 'To' phone number is required.");
  if (!isE164(to)) throw new SimError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
  if (!from && !service) throw new SimError(400, 21603, "A 'From' phone number is required.");
  if (from !== undefined && !isE164(from))
    throw new SimError(
      400,
      21212,
      `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`,
    );
  if (!body && mediaUrls.length === 0) throw new SimError(400, 21602, "Message body is required.");
  if ([...body].length > 1600)
    throw new SimError(400, 21617, "The concatenated message body exceeds the 1600 character limit.");
  if (mediaUrls.length > 10)
    throw new SimError(400, 21623, "Number of media files exceeds allowed limit (10).");
  for (const url of mediaUrls)
    if (!/^https?:\/\/\S+$/i.test(url)) throw new SimError(400, 21620, `Invalid media URL(s): ${url}`);
  const owned = from === undefined ? undefined : state.incomingNumberByPhone(from, req.account.sid);
  if (from !== undefined && (!owned?.capabilities.sms || (mediaUrls.length > 0 && !owned.capabilities.mms)))
    throw new SimError(
      400,
      21606,
      `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`,
    );
  if (from !== undefined && state.unsubscribed.get(from)?.has(to))
    throw new SimError(400, 21610, "Attempt to send to unsubscribed recipient");
  if (from === to) throw new SimError(400, 21266, "'To' and 'From' number cannot be the same");
  if (state.lookups.get(to)?.lineType === "landline")
    throw new SimError(400, 21614, `'To' number ${to} is not a valid mobile number`);
  // Non-US numbers cannot text US numbers (TWILIO.md, Messaging).
  if (from !== undefined && !from.startsWith("+1") && to.startsWith("+1"))
    throw new SimError(
      400,
      21612,
      `The 'To' phone number: ${to}, is not currently reachable using the 'From' phone number: ${from} via SMS.`,
    );
  const statusCallback = f.urlOr("StatusCallback", null) ?? undefined;
  const message = state.createMessage({
    accountSid: req.account.sid,
    from: from ?? "",
    to,
    body,
    direction: "outbound-api",
    status: service ? "accepted" : "queued",
    mediaCount: mediaUrls.length,
    messagingServiceSid: service ?? null,
    send: { mediaUrls, ...(statusCallback ? { statusCallback } : {}) },
  });
  ctx.deliveries.schedule(message.sid);
  return ok(renderMessage(message), 201);
}

function listMessages(req: SimRequest) {
  const q = req.query;
  const to = q.get("To");
  const from = q.get("From");
  const sent = dateFilter(q, "DateSent");
  // Twilio lists messages by DateSent, most recent first (unsent ones by creation).
  const sentAt = (m: MessageResource) => Date.parse(m.date_sent ?? m.date_created);
  const items = newestFirst(req.state.messages.values())
    .sort((a, b) => sentAt(b) - sentAt(a))
    .filter(
      (m) =>
        m.account_sid === req.account.sid &&
        (to === undefined || m.to === to) &&
        (from === undefined || m.from === from) &&
        sent(m.date_sent),
    );
  return listV2010(req, "messages", items, renderMessage);
}

export function registerMessageRoutes(router: Router, ctx: SimContext): void {
  const { state } = ctx;
  router
    .get(`${A}/:AccountSid/Messages.json`, listMessages)
    .post(`${A}/:AccountSid/Messages.json`, (req) => createMessage(req, ctx))
    .get(`${A}/:AccountSid/Messages/:Sid.json`, (req) => ok(renderMessage(ownMessage(req))))
    .post(`${A}/:AccountSid/Messages/:Sid.json`, (req) => {
      const m = ownMessage(req);
      const body = req.form.get("Body");
      const status = req.form.get("Status");
      if (body !== undefined) {
        if (body !== "")
          throw new SimError(400, 20001, "Body can only be set to an empty string (redaction)");
        m.body = "";
      }
      if (status !== undefined) {
        if (status !== "canceled" || m.status !== "scheduled")
          throw new SimError(400, 30409, "Only a scheduled message can be canceled");
        m.status = "canceled";
      }
      m.date_updated = rfc2822(new Date());
      return ok(renderMessage(m));
    })
    .delete(`${A}/:AccountSid/Messages/:Sid.json`, (req) => {
      const m = ownMessage(req);
      if (m.status === "queued" || m.status === "sending" || m.status === "accepted")
        throw new SimError(400, 20009, "Cannot delete a message that is still being sent");
      state.deleteMessage(m.sid);
      return noContent();
    })
    .get(`${A}/:AccountSid/Messages/:MessageSid/Media.json`, (req) => {
      const message = ownMessage(req, req.params.MessageSid);
      const created = dateFilter(req.query, "DateCreated");
      const items = state.mediaOf(message.sid).filter((m) => created(m.date_created));
      return listV2010(req, "media_list", items, renderMedia);
    })
    .get(`${A}/:AccountSid/Messages/:MessageSid/Media/:Sid.json`, (req) => ok(renderMedia(ownMedia(req))))
    .get(`${A}/:AccountSid/Messages/:MessageSid/Media/:Sid`, (req) => {
      const media = ownMedia(req);
      const content = state.mediaContent.get(media.sid);
      if (!content) throw notFound(req.path);
      return { status: 200, bytes: content, contentType: media.content_type };
    })
    .delete(`${A}/:AccountSid/Messages/:MessageSid/Media/:Sid.json`, (req) => {
      const media = ownMedia(req);
      state.media.delete(media.sid);
      state.mediaContent.delete(media.sid);
      return noContent();
    });
}
