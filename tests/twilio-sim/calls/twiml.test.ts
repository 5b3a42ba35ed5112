/**
 * The simulator's TwiML reader: good and bad documents, Twilio's defaults, escaping, relative URLs,
 * SIP URI headers; and every golden TwiML the edge's voice webhooks produce is a document the
 * simulator accepts (so the system tests exercise what the edge really answers).
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseTwiml, splitSipUri, TwimlError } from "./twiml.ts";

const DOC = "https://edge.example.net/api/webhooks/twilio/voice";
const goldenDir = fileURLToPath(new URL("../../../edge/src/voice/fixtures/good/", import.meta.url));

describe("parseTwiml", () => {
  it("reads verbs in order with Twilio's defaults", () => {
    const verbs = parseTwiml(
      `<?xml version="1.0"?><Response><Say>Hi</Say><Pause/><Dial><Number>+12025550100</Number></Dial><Record/><Gather/><Hangup/></Response>`,
      DOC,
    );
    expect(verbs.map((v) => v.verb)).toEqual(["Say", "Pause", "Dial", "Record", "Gather", "Hangup"]);
    expect(verbs[1]).toMatchObject({ length: 1 });
    expect(verbs[2]).toMatchObject({ timeout: 30, answerOnBridge: false, method: "POST", timeLimit: 14400 });
    expect(verbs[3]).toMatchObject({ maxLength: 3600, timeout: 5, playBeep: true, transcribe: false });
    expect(verbs[4]).toMatchObject({ timeout: 5, finishOnKey: "#", input: "dtmf" });
  });

  it("unescapes text and attributes, resolves relative URLs against the document", () => {
    const [say, dial, redirect] = parseTwiml(
      `<Response><Say>Smith &amp; Sons&apos; &lt;line&gt;</Say><Dial action="/next?a=1&amp;b=2"><Sip username="u" password="p&lt;&amp;&gt;">sip:101@relay:5060?X-GoSIP-CallSid=CA1</Sip></Dial><Redirect method="GET">other</Redirect></Response>`,
      DOC,
    );
    expect(say).toMatchObject({ verb: "Say", text: "Smith & Sons' <line>" });
    expect(dial).toMatchObject({ verb: "Dial", action: "https://edge.example.net/next?a=1&b=2" });
    expect(dial?.verb === "Dial" && dial.nouns[0]).toMatchObject({ kind: "sip", password: "p<&>" });
    expect(redirect).toMatchObject({
      url: "https://edge.example.net/api/webhooks/twilio/other",
      method: "GET",
    });
  });

  it("a number as <Dial>'s text is a <Number>; malformed numeric attributes fall back to defaults", () => {
    const [dial] = parseTwiml(`<Response><Dial timeout="soon">+12025550100</Dial></Response>`, DOC);
    expect(dial).toMatchObject({ timeout: 30, nouns: [{ kind: "number", number: "+12025550100" }] });
  });

  it.each([
    ["not XML at all", "hello", 12100],
    ["unclosed element", "<Response><Say>hi</Response>", 12100],
    ["wrong root", "<Document><Say>hi</Say></Document>", 12100],
    ["two roots", "<Response/><Response/>", 12100],
    ["unknown verb", "<Response><Sms>hi</Sms></Response>", 12200],
    ["verb nested in Say's place", "<Response><Gather><Dial>+1202</Dial></Gather></Response>", 12200],
    ["Dial with nothing to dial", "<Response><Dial></Dial></Response>", 12200],
    ["Sip without a sip: URI", "<Response><Dial><Sip>101@relay</Sip></Dial></Response>", 12200],
    ["Redirect without a URL", "<Response><Redirect/></Response>", 12200],
  ])("refuses %s (error %i)", (_name, xml, code) => {
    try {
      parseTwiml(xml, DOC);
      expect.unreachable("parsed");
    } catch (err) {
      expect(err).toBeInstanceOf(TwimlError);
      expect((err as TwimlError).code).toBe(code);
    }
  });

  it("accepts every golden TwiML the edge's voice webhooks answer", async () => {
    const files = (await readdir(goldenDir)).filter((f) => f.endsWith(".xml"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const verbs = parseTwiml(
        await readFile(`${goldenDir}${f}`, "utf8"),
        "http://localhost:8080/api/webhooks/twilio/voice",
      );
      expect(verbs.length, f).toBeGreaterThan(0);
    }
  });
});

describe("splitSipUri", () => {
  it("turns URI headers into SIP headers, keeping only the ones Twilio passes", () => {
    expect(splitSipUri("sip:101@relay:5060;transport=udp?X-GoSIP-CallSid=CA%201&X-Two=2&Subject=no")).toEqual(
      {
        uri: "sip:101@relay:5060;transport=udp",
        headers: { "X-GoSIP-CallSid": "CA 1", "X-Two": "2" },
      },
    );
    expect(splitSipUri("sip:101@relay")).toEqual({ uri: "sip:101@relay", headers: {} });
  });
});
