/**
 * The fallback functions as Twilio's runtime calls them: `(context, event,
 * callback)` with the SDK as the `Twilio` global, context holding the
 * environment variables the setup wizard deploys. Assertions are on the TwiML
 * Twilio would execute (golden strings: every attribute and its escaping).
 */
import { describe, expect, it } from "vitest";
import { invoke, loadFunction } from "./handlers.ts";

const XML = '<?xml version="1.0" encoding="UTF-8"?>';
const voicemail = loadFunction("voicemail-fallback");
const sms = loadFunction("sms-fallback");

const callEvent = {
  CallSid: "CA0123456789abcdef0123456789abcdef",
  From: "+15557654321",
  To: "+15550001111",
  CallStatus: "ringing",
  Direction: "inbound",
};

describe("voicemail-fallback", () => {
  it("greets the caller and records up to 180 s, ending on 10 s of silence", async () => {
    const twiml = await invoke(
      voicemail,
      { GREETING: "You have reached GoSIP.", MAX_RECORDING_SECONDS: "180" },
      callEvent,
    );
    expect(twiml).toBe(
      `${XML}<Response><Say>You have reached GoSIP.</Say>` +
        '<Record action="voicemail-fallback?recorded=1" method="POST" maxLength="180" timeout="10" playBeep="true" finishOnKey="#" transcribe="false"/>' +
        "<Hangup/></Response>",
    );
  });

  it("hangs up after the recording instead of greeting again", async () => {
    const twiml = await invoke(
      voicemail,
      { GREETING: "Hello" },
      { ...callEvent, recorded: "1", RecordingSid: "RE1" },
    );
    expect(twiml).toBe(`${XML}<Response><Hangup/></Response>`);
  });

  it("escapes the greeting and falls back to defaults for missing or bad settings", async () => {
    const odd = await invoke(
      voicemail,
      { GREETING: 'Tom & Jerry <"home">', MAX_RECORDING_SECONDS: "-5" },
      callEvent,
    );
    expect(odd).toContain('<Say>Tom &amp; Jerry &lt;"home"&gt;</Say>');
    expect(odd).toContain('maxLength="180"');
    const none = await invoke(voicemail, {}, callEvent);
    expect(none).toContain(
      "<Say>Nobody can take your call right now. Please leave a message after the tone.</Say>",
    );
    const huge = await invoke(voicemail, { MAX_RECORDING_SECONDS: "99999" }, callEvent);
    expect(huge).toContain('maxLength="3600"');
  });
});

describe("sms-fallback", () => {
  const message = {
    MessageSid: "SM0123456789abcdef0123456789abcdef",
    From: "+15557654321",
    To: "+15550001111",
    Body: "Are you there? <3 & more",
    NumMedia: "0",
  };

  it("forwards the message from the number it was sent to", async () => {
    const twiml = await invoke(sms, { FORWARD_SMS_TO: "+15559998888" }, message);
    expect(twiml).toBe(
      `${XML}<Response><Message to="+15559998888" from="+15550001111">` +
        "<Body>From +15557654321: Are you there? &lt;3 &amp; more</Body></Message></Response>",
    );
  });

  it("forwards MMS media (https only, at most 10)", async () => {
    const media: Record<string, string> = { NumMedia: "12" };
    for (let i = 0; i < 12; i++) media[`MediaUrl${i}`] = `https://api.twilio.com/2010-04-01/media/ME${i}`;
    media.MediaUrl1 = "http://insecure.example/x";
    const twiml = await invoke(sms, { FORWARD_SMS_TO: "+15559998888" }, { ...message, ...media });
    const urls = [...twiml.matchAll(/<Media>([^<]*)<\/Media>/g)].map((m) => m[1]);
    expect(urls).toHaveLength(9);
    expect(urls).not.toContain("http://insecure.example/x");
    expect(urls[0]).toBe("https://api.twilio.com/2010-04-01/media/ME0");
  });

  it("answers nothing without a forwarding number, or with an invalid one", async () => {
    expect(await invoke(sms, {}, message)).toBe(`${XML}<Response/>`);
    expect(await invoke(sms, { FORWARD_SMS_TO: "555-1234" }, message)).toBe(`${XML}<Response/>`);
    // What the wizard deploys when the admin chose no forwarding.
    expect(await invoke(sms, { FORWARD_SMS_TO: "none" }, message)).toBe(`${XML}<Response/>`);
  });

  it("does not forward a reply from the forwarding number back to it", async () => {
    const twiml = await invoke(sms, { FORWARD_SMS_TO: "+15557654321" }, message);
    expect(twiml).toBe(`${XML}<Response/>`);
  });

  it("cuts a long body to Twilio's 1,600 characters", async () => {
    const twiml = await invoke(
      sms,
      { FORWARD_SMS_TO: "+15559998888" },
      { ...message, Body: "x".repeat(2000) },
    );
    const body = /<Body>([^<]*)<\/Body>/.exec(twiml)?.[1] ?? "";
    expect(body).toHaveLength(1600);
    expect(body.startsWith("From +15557654321: x")).toBe(true);
  });
});
