/**
 * The relay link's messages, as far as this issue goes: the relay says `hello`,
 * the edge answers `hello-ack`. Anything else closes the socket with a reason
 * (the sync protocol of the relay PBX issue replaces this). Pure, so the Node
 * socket and the Workers Durable Object answer alike.
 */

export const RELAY_PROTOCOL_VERSION = 1;

/** Close codes (RFC 6455 §7.4.1). */
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TOO_BIG = 1009;

/** Close code for a socket whose relay token was revoked. */
export const CLOSE_TOKEN_REVOKED = 4001;
/** Close code for an older socket when the installation's relay connects again (one live link). */
export const CLOSE_REPLACED = 4000;

/** Largest message accepted before the sync protocol defines its own limits. */
export const MAX_RELAY_MESSAGE_BYTES = 64 * 1024;

export type RelayReply = { kind: "send"; data: string } | { kind: "close"; code: number; reason: string };

/** What to do with one message from an authenticated relay. */
export function answerRelayMessage(data: unknown, relay: { id: string }, now: number): RelayReply {
  if (typeof data !== "string") {
    return { kind: "close", code: CLOSE_UNSUPPORTED_DATA, reason: "text frames only" };
  }
  if (data.length > MAX_RELAY_MESSAGE_BYTES) {
    return { kind: "close", code: CLOSE_TOO_BIG, reason: "message too big" };
  }
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return { kind: "close", code: CLOSE_INVALID_PAYLOAD, reason: "invalid JSON" };
  }
  const type = typeof msg === "object" && msg !== null ? (msg as { type?: unknown }).type : undefined;
  if (type === "hello") {
    return {
      kind: "send",
      data: JSON.stringify({
        type: "hello-ack",
        v: RELAY_PROTOCOL_VERSION,
        relayId: relay.id,
        serverTime: now,
      }),
    };
  }
  return { kind: "close", code: CLOSE_POLICY_VIOLATION, reason: "unsupported message type" };
}
