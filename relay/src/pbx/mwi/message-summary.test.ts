// The message-summary body and the SUBSCRIBE header values the notifier interprets.
import { describe, expect, it } from "vitest";
import { acceptsMessageSummary, eventType, grantedExpires, messageSummaryBody } from "./message-summary.ts";

describe("message-summary", () => {
  it("lamp on with new messages, off without; counts new/old with zero urgent", () => {
    expect(messageSummaryBody({ newMessages: 2, oldMessages: 5 }, "sip:201@192.0.2.1")).toBe(
      "Messages-Waiting: yes\r\nMessage-Account: sip:201@192.0.2.1\r\nVoice-Message: 2/5 (0/0)\r\n",
    );
    expect(messageSummaryBody({ newMessages: 0, oldMessages: 3 }, "sip:201@h")).toMatch(
      /^Messages-Waiting: no\r\n/,
    );
  });

  it("reads the event type without parameters, case-insensitively", () => {
    expect(eventType("message-summary")).toBe("message-summary");
    expect(eventType("Message-Summary;id=7")).toBe("message-summary");
    expect(eventType(" presence ")).toBe("presence");
    expect(eventType(undefined)).toBeUndefined();
    expect(eventType("")).toBeUndefined();
  });

  it("grants Expires clamped to the range, 3600 when absent or unreadable, 0 as 0", () => {
    expect(grantedExpires("600", 60, 3600)).toBe(600);
    expect(grantedExpires("10", 60, 3600)).toBe(60);
    expect(grantedExpires("86400", 60, 3600)).toBe(3600);
    expect(grantedExpires(undefined, 60, 3600)).toBe(3600);
    expect(grantedExpires("soon", 60, 1800)).toBe(1800);
    expect(grantedExpires("-5", 60, 3600)).toBe(3600);
    expect(grantedExpires("0", 60, 3600)).toBe(0);
  });

  it("accepts the package's body type, wildcards, or no Accept at all", () => {
    expect(acceptsMessageSummary(undefined)).toBe(true);
    expect(acceptsMessageSummary("application/simple-message-summary")).toBe(true);
    expect(acceptsMessageSummary("application/pidf+xml, application/simple-message-summary;q=0.5")).toBe(
      true,
    );
    expect(acceptsMessageSummary("*/*")).toBe(true);
    expect(acceptsMessageSummary("application/pidf+xml")).toBe(false);
  });
});
