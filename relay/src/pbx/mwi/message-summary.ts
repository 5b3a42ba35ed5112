// The message-summary event package (RFC 3842): the body a phone's MWI lamp reads, and the few SUBSCRIBE
// header values the notifier has to interpret (Event, Expires, Accept).

export const MESSAGE_SUMMARY_EVENT = "message-summary";
export const MESSAGE_SUMMARY_TYPE = "application/simple-message-summary";

export interface VoiceCounts {
  newMessages: number;
  oldMessages: number;
}

/**
 * The application/simple-message-summary body: the lamp (Messages-Waiting), the mailbox it is about
 * (Message-Account) and the voice message counts as "new/old (urgent new/urgent old)". GoSIP has no urgent
 * voicemail, so the parenthesised counts are always 0/0.
 */
export function messageSummaryBody(counts: VoiceCounts, account: string): string {
  const waiting = counts.newMessages > 0 ? "yes" : "no";
  return [
    `Messages-Waiting: ${waiting}`,
    `Message-Account: ${account}`,
    `Voice-Message: ${counts.newMessages}/${counts.oldMessages} (0/0)`,
    "",
  ].join("\r\n");
}

/** The event type of an Event header ("message-summary;id=3" → "message-summary"), lowercased. */
export function eventType(header: string | undefined): string | undefined {
  const type = header?.split(";")[0]?.trim().toLowerCase();
  return type ? type : undefined;
}

/**
 * The subscription duration to grant: the requested Expires (RFC 3842's default of 3600 s when absent or
 * unreadable) clamped into [min, max]; 0 stays 0 (an unsubscribe, or a one-off fetch of the state).
 */
export function grantedExpires(header: string | undefined, min: number, max: number): number {
  const requested = header !== undefined && /^\s*\d+\s*$/.test(header) ? Number.parseInt(header, 10) : 3600;
  if (requested === 0) return 0;
  return Math.min(max, Math.max(min, requested));
}

/** Whether an Accept header (absent = the package default) allows the simple-message-summary body. */
export function acceptsMessageSummary(header: string | undefined): boolean {
  if (header === undefined || header.trim() === "") return true;
  return header.split(",").some((range) => {
    const type = range.split(";")[0]?.trim().toLowerCase();
    return type === MESSAGE_SUMMARY_TYPE || type === "application/*" || type === "*/*";
  });
}
