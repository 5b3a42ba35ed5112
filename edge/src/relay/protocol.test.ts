// The placeholder relay protocol both runtimes answer with.
import { expect, it } from "vitest";
import { answerRelayMessage, MAX_RELAY_MESSAGE_BYTES } from "./protocol.ts";

const relay = { id: "r1" };

it("answers hello with hello-ack carrying the relay id and server time", () => {
  const reply = answerRelayMessage(JSON.stringify({ type: "hello", v: 1 }), relay, 1234);
  expect(reply.kind).toBe("send");
  if (reply.kind === "send")
    expect(JSON.parse(reply.data)).toEqual({ type: "hello-ack", v: 1, relayId: "r1", serverTime: 1234 });
});

it("closes with a reason on anything else", () => {
  expect(answerRelayMessage(new ArrayBuffer(4), relay, 0)).toEqual({
    kind: "close",
    code: 1003,
    reason: "text frames only",
  });
  expect(answerRelayMessage("{", relay, 0)).toMatchObject({ kind: "close", code: 1007 });
  expect(answerRelayMessage("null", relay, 0)).toMatchObject({ kind: "close", code: 1008 });
  expect(answerRelayMessage('{"type":"bye"}', relay, 0)).toMatchObject({ kind: "close", code: 1008 });
  expect(answerRelayMessage(" ".repeat(MAX_RELAY_MESSAGE_BYTES + 1), relay, 0)).toMatchObject({
    kind: "close",
    code: 1009,
  });
});
