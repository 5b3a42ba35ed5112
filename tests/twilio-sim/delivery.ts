/**
 * What happens to a message after the REST answer: an outbound one is queued,
 * its MediaUrls are fetched (Twilio downloads them itself; a failure ends the
 * message failed with 11200), then it goes sent → delivered (or the failure set
 * for that recipient in `state.deliveryFailures`), and each step is POSTed,
 * signed, to its StatusCallback. Inbound messages are stored and POSTed to the
 * receiving number's SMS URL with Twilio's parameters.
 */
import type { InboundMessageInput, MessageResource, MessageStatus, SimState } from "./state.ts";
import { API_VERSION } from "./state.ts";
import { postSignedWebhook, type WebhookResult } from "./webhooks.ts";

export class Deliveries {
  private readonly pending = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly state: SimState,
    private readonly stepMs: number,
  ) {}

  /** Starts a queued outbound message on its way. */
  schedule(sid: string): void {
    this.track(this.run(sid));
  }

  private track(task: Promise<void>): void {
    this.pending.add(task);
    task
      .catch((err: unknown) => console.error("twilio-sim: delivery failed", err))
      .finally(() => this.pending.delete(task));
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, this.stepMs);
      this.timers.add(t);
    });
  }

  private async run(sid: string): Promise<void> {
    await this.wait();
    if (this.closed) return;
    const message = this.state.messages.get(sid);
    const send = this.state.messageSend.get(sid);
    if (!message || !send) return;
    for (const url of send.mediaUrls) {
      const fetched = await fetchMedia(url);
      if (this.closed) return;
      if (!fetched.ok) {
        await this.step(message, "failed", fetched.errorCode);
        return;
      }
      this.state.addMedia(message, { contentType: fetched.contentType, content: fetched.content });
    }
    await this.step(message, "sent");
    await this.wait();
    if (this.closed || !this.state.messages.has(sid)) return;
    // US long codes need A2P 10DLC registration to reach US handsets; carriers drop the rest.
    const unregistered =
      !this.state.a2pRegistered &&
      message.to.startsWith("+1") &&
      this.state.incomingNumberByPhone(message.from)?.type === "local";
    const failure = unregistered
      ? { status: "undelivered" as const, errorCode: 30034 }
      : this.state.deliveryFailures.get(message.to);
    if (failure) await this.step(message, failure.status, failure.errorCode);
    else await this.step(message, "delivered");
  }

  private async step(message: MessageResource, status: MessageStatus, errorCode?: number): Promise<void> {
    this.state.setMessageStatus(message.sid, status, errorCode ?? null);
    const callback = this.state.messageSend.get(message.sid)?.statusCallback;
    if (!callback) return;
    const params: Record<string, string> = {
      AccountSid: message.account_sid,
      ApiVersion: API_VERSION,
      From: message.from,
      To: message.to,
      MessageSid: message.sid,
      SmsSid: message.sid,
      MessageStatus: status,
      SmsStatus: status,
    };
    if (errorCode !== undefined) params.ErrorCode = String(errorCode);
    if (status === "delivered") params.RawDlrDoneDate = rawDlrDate(new Date());
    const token = this.state.tokenOf(message.account_sid) ?? this.state.authToken;
    try {
      await postSignedWebhook(callback, params, token, { state: this.state });
    } catch {
      // Twilio does not retry a status callback that fails; the attempt is logged in state.webhooks.
    }
  }

  /** Resolves when nothing is scheduled any more (steps started meanwhile included). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** RawDlrDoneDate as carriers report it: YYMMDDhhmm. */
function rawDlrDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

const MEDIA_TYPES =
  /^(image\/(jpeg|png|gif|bmp|webp)|audio\/|video\/|text\/(plain|vcard|x-vcard|calendar)|application\/(pdf|vcard))/;

async function fetchMedia(
  url: string,
): Promise<{ ok: true; contentType: string; content: Uint8Array } | { ok: false; errorCode: number }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return { ok: false, errorCode: 11200 };
    const contentType = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    if (!MEDIA_TYPES.test(contentType)) return { ok: false, errorCode: 12300 };
    return { ok: true, contentType, content: new Uint8Array(await res.arrayBuffer()) };
  } catch {
    return { ok: false, errorCode: 11200 };
  }
}

export interface InboundDelivery {
  message: MessageResource;
  /** The SMS URL's answer (TwiML), or undefined when the number has no SMS URL. */
  webhook: WebhookResult | undefined;
}

/**
 * Stores an inbound SMS/MMS and POSTs Twilio's webhook parameters (MessageSid,
 * From, To, Body, NumMedia, NumSegments, MediaUrl{N}, MediaContentType{N},
 * geo fields) to the number's SMS URL, falling back to its SMS fallback URL
 * when the first answers an error or cannot be reached.
 */
export async function deliverInboundMessage(
  state: SimState,
  input: InboundMessageInput,
): Promise<InboundDelivery> {
  const number = state.incomingNumberByPhone(input.to);
  const message = state.addInboundMessage(input);
  if (!number?.sms_url) return { message, webhook: undefined };
  const params: Record<string, string> = {
    ToCountry: "US",
    ToState: "",
    SmsMessageSid: message.sid,
    NumMedia: message.num_media,
    ToCity: "",
    FromZip: "",
    SmsSid: message.sid,
    FromState: "",
    SmsStatus: "received",
    FromCity: "",
    Body: message.body,
    FromCountry: "US",
    To: message.to,
    ToZip: "",
    NumSegments: message.num_segments,
    MessageSid: message.sid,
    AccountSid: message.account_sid,
    From: message.from,
    ApiVersion: API_VERSION,
  };
  state.mediaOf(message.sid).forEach((m, i) => {
    params[`MediaUrl${i}`] = state.mediaUrl(m);
    params[`MediaContentType${i}`] = m.content_type;
  });
  const token = state.tokenOf(message.account_sid) ?? state.authToken;
  const method = number.sms_method === "GET" ? "GET" : "POST";
  try {
    const webhook = await postSignedWebhook(number.sms_url, params, token, { method, state });
    if (webhook.status < 400 || !number.sms_fallback_url) return { message, webhook };
  } catch (err) {
    if (!number.sms_fallback_url) throw err;
  }
  const fallbackMethod = number.sms_fallback_method === "GET" ? "GET" : "POST";
  const webhook = await postSignedWebhook(number.sms_fallback_url, params, token, {
    method: fallbackMethod,
    state,
  });
  return { message, webhook };
}
