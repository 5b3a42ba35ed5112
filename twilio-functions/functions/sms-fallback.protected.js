// @ts-check
/**
 * GoSIP SMS fallback (a Twilio Function, the numbers' SMS Fallback URL).
 *
 * Twilio calls it when the edge's SMS webhook fails: the message is then only in
 * Twilio's message log. With FORWARD_SMS_TO an E.164 number (chosen in the setup
 * wizard; "none" otherwise) the message is forwarded there from the number it was sent to,
 * as "From +1555…: text", with its media (up to 10). Without it the answer is an
 * empty <Response/>: nothing is sent back to the sender and nothing is
 * forwarded (there is no email from here: the function has no mail account and
 * no database).
 *
 * A message that comes from the forwarding number itself (someone replying to a
 * forward) is not forwarded back to it: that would loop.
 */

const E164 = /^\+[1-9]\d{1,14}$/;
/** A Twilio message body holds at most 1,600 characters. */
const MAX_BODY = 1600;
/** Twilio accepts at most 10 media per message. */
const MAX_MEDIA = 10;

/**
 * @param {Record<string, unknown>} event
 * @returns {string[]}
 */
function mediaUrls(event) {
  const count = Math.min(Number(event.NumMedia) || 0, MAX_MEDIA);
  const urls = [];
  for (let i = 0; i < count; i++) {
    const url = event[`MediaUrl${i}`];
    if (typeof url === "string" && url.startsWith("https://")) urls.push(url);
  }
  return urls;
}

/**
 * @param {{ FORWARD_SMS_TO?: string }} context
 * @param {Record<string, unknown>} event
 * @param {(error: Error | null, response?: unknown) => void} callback
 */
exports.handler = (context, event, callback) => {
  try {
    const twiml = new Twilio.twiml.MessagingResponse();
    const forwardTo = (context.FORWARD_SMS_TO ?? "").trim();
    const from = typeof event.From === "string" ? event.From : "";
    const to = typeof event.To === "string" ? event.To : "";
    if (E164.test(forwardTo) && E164.test(to) && from !== forwardTo) {
      const text = typeof event.Body === "string" ? event.Body : "";
      const body = `From ${from || "unknown"}: ${text}`.slice(0, MAX_BODY);
      // Empty text, then <Body> and <Media> nouns: plain text cannot be mixed with <Media>.
      const message = twiml.message({ to: forwardTo, from: to }, "");
      message.body(body);
      for (const url of mediaUrls(event)) message.media(url);
    }
    callback(null, twiml);
  } catch (err) {
    callback(err instanceof Error ? err : new Error(String(err)));
  }
};
