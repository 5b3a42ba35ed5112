/**
 * Delivery status of outbound messages. Twilio's status callbacks arrive in any
 * order (a late "sent" after "delivered" is common), so a status only ever moves
 * forward: queued → sending → sent → delivered | undelivered | failed. Failed and
 * undelivered messages carry Twilio's error code and a sentence a user can act on.
 */
import type { MessageStatus } from "@gosip/drizzle";

/** Order of the statuses an outbound message goes through; final ones share the top rank. */
const RANK: Readonly<Record<MessageStatus, number>> = {
  received: 0,
  queued: 1,
  sending: 2,
  sent: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
};

/** Statuses a message in `status` may not leave any more. */
export function isFinalStatus(status: MessageStatus): boolean {
  return RANK[status] === 4;
}

/** The statuses a message may be in for `next` to replace it (strictly earlier ones). */
export function statusesBefore(next: MessageStatus): MessageStatus[] {
  const rank = RANK[next];
  return (Object.keys(RANK) as MessageStatus[]).filter((s) => s !== "received" && RANK[s] < rank);
}

/**
 * GoSIP's status for one of Twilio's MessageStatus values, or undefined for one
 * that says nothing about delivery (inbound "receiving"/"received") or is unknown.
 * "read" (WhatsApp/RCS) is a delivered message; "canceled" a scheduled one that never went.
 */
export function statusFromTwilio(value: string | undefined): MessageStatus | undefined {
  switch (value) {
    case "accepted":
    case "scheduled":
    case "queued":
      return "queued";
    case "sending":
      return "sending";
    case "sent":
      return "sent";
    case "delivered":
    case "read":
      return "delivered";
    case "undelivered":
      return "undelivered";
    case "failed":
    case "canceled":
      return "failed";
    default:
      return undefined;
  }
}

/** What common Twilio messaging error codes mean, in words a user understands. */
const ERROR_MESSAGES: Readonly<Record<number, string>> = {
  21211: "The number is not a valid phone number",
  21408: "Sending to this region is not enabled on the Twilio account",
  21606: "The sending number cannot send SMS",
  21610: "The recipient has unsubscribed (replied STOP); they must text START to receive messages again",
  21612: "Twilio cannot route a message to this number",
  21614: "The number is not a mobile number",
  21617: "The message is too long (at most 1600 characters)",
  21620: "The attached media is not a supported type or is too large",
  30001: "Twilio's queue for this number overflowed; try again later",
  30002: "The Twilio account is suspended",
  30003: "The phone is switched off or out of coverage",
  30004: "The message was blocked by the recipient or their carrier",
  30005: "The number does not exist or is no longer in service",
  30006: "The number is a landline or its carrier does not accept SMS",
  30007: "The carrier filtered the message as spam",
  30008: "The carrier could not deliver the message (unknown error)",
  30010: "The message price exceeded the account's maximum price",
  30019: "The media could not be delivered (too large or unsupported)",
  30022: "The number's A2P 10DLC sending rate limit was exceeded",
  30023: "The daily message cap of the number's A2P 10DLC campaign was reached",
  30032: "The toll-free sending number is not verified",
  30034: "The sending number is not registered for US A2P 10DLC messaging",
};

/** A human message for a Twilio error code (the code itself when it is not a common one). */
export function errorMessageFor(code: number | undefined, fallback?: string): string {
  if (code !== undefined) {
    const known = ERROR_MESSAGES[code];
    if (known) return known;
    return fallback ? `${fallback} (Twilio error ${code})` : `Twilio error ${code}`;
  }
  return fallback ?? "The message could not be delivered";
}
