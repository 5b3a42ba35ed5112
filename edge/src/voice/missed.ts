/**
 * The missed-call notification (SPEC §9): an inbound call nobody answered and that did
 * not go to voicemail. Sent to the call's owner (the user whose devices it was for),
 * or to the admins for a shared number; once per call (the notification's idempotency
 * key is the CDR), however many of dial-result and call-status report the miss.
 */

import { notify } from "../notifications/notify.ts";
import type { EdgeDeps } from "../platform/types.ts";
import type { CdrRow } from "./cdr.ts";

type MissedDeps = Pick<EdgeDeps, "db" | "clock" | "jobs" | "logger">;

export async function notifyMissedCall(
  deps: MissedDeps,
  cdr: Pick<CdrRow, "id" | "direction" | "disposition" | "fromNumber" | "toNumber" | "userId" | "startedAt">,
): Promise<void> {
  if (cdr.direction !== "inbound" || cdr.disposition !== "missed") return;
  const caller = cdr.fromNumber === "anonymous" ? "a withheld number" : cdr.fromNumber;
  try {
    await notify(deps, {
      type: "missed_call",
      ...(cdr.userId ? { userIds: [cdr.userId] } : {}),
      subject: `Missed call from ${caller}`,
      text: `You missed a call from ${caller} to ${cdr.toNumber} at ${cdr.startedAt.toISOString()}.`,
      link: `/calls/${cdr.id}`,
      idempotencyKey: `missed_call:${cdr.id}`,
    });
  } catch (err) {
    // The call is recorded either way; a notification that cannot be queued is logged, not fatal.
    deps.logger.error(
      { err: err instanceof Error ? err.message : String(err), cdrId: cdr.id },
      "missed-call notification failed",
    );
  }
}
