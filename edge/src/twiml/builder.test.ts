import { describe, expect, it } from "vitest";
import { el, escapeXml, twiml } from "./builder.ts";

describe("TwiML builder", () => {
  it("renders verbs with attributes and text", () => {
    const doc = twiml([
      el("Dial", { timeout: 30, answerOnBridge: true }, [el("Sip", {}, ["sip:101@relay"])]),
    ]);
    expect(doc).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="30" answerOnBridge="true"><Sip>sip:101@relay</Sip></Dial></Response>',
    );
  });

  it("escapes text and attributes so input cannot inject markup", () => {
    const doc = twiml([el("Say", { voice: 'x" onload="y' }, ["</Say><Dial>+15550100</Dial>&"])]);
    expect(doc).toContain('voice="x&quot; onload=&quot;y"');
    expect(doc).toContain("&lt;/Say&gt;&lt;Dial&gt;+15550100&lt;/Dial&gt;&amp;");
    expect(doc).not.toContain("<Dial>");
  });

  it("drops control characters XML cannot carry and omits undefined attributes", () => {
    expect(escapeXml("a\u0000b\u0007c\nd")).toBe("abc\nd");
    expect(twiml([el("Hangup", { action: undefined })])).toContain("<Hangup/>");
  });

  it("refuses element and attribute names that are not names", () => {
    expect(() => el("Say><x")).toThrow(TypeError);
    expect(() => el("Say", { "a=b": 1 })).toThrow(TypeError);
  });
});
