/**
 * Voicemails the fallback function took while the edge was down. The fallback
 * records with `<Record>` and tells nobody (it has no database, and the edge
 * was unreachable), so the recordings wait in Twilio. Reconciling lists the
 * account's recordings since a moment, and each completed `<Record>` recording
 * without a voicemail becomes one through the voicemail feature's own intake
 * (acceptRecording: discards under 3 s, creates the row, enqueues the download,
 * the email and the removal from Twilio), after a CDR for the missed call is
 * written from Twilio's Call resource (From, To, start) when the edge has none.
 *
 * Safe to run again: recordings that have a voicemail are skipped, and the
 * intake and the CDR are keyed by RecordingSid and CallSid.
 */
import { cdrs, devices, dids, parseDidTargets, voicemails } from "@gosip/drizzle";
import { and, eq, inArray } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { pushMailboxes } from "../relay/push.ts";
import type { TwilioRest } from "../twilio/rest.ts";
import { acceptRecording, CALL_SID, RECORDING_SID, voicemailByRecording } from "../voicemail/store.ts";
import { callTwilio, listAll, requireTwilio, type TwilioCall, type TwilioRecording } from "./twilio-api.ts";

type ReconcileDeps = Pick<EdgeDeps, "db" | "clock" | "config" | "relayChannel" | "logger" | "jobs">;

/** How far back a reconcile looks when not told. */
export const DEFAULT_RECONCILE_WINDOW_MS = 7 * 24 * 3_600_000;
/**
 * A recording of a call the edge saw, younger than this, is left to its status
 * callback (it may be on its way); the fallback's calls have no callback at all.
 */
export const CALLBACK_GRACE_MS = 10 * 60_000;

export interface ReconciledVoicemail {
  recordingSid: string;
  callSid: string | null;
  voicemailId: string;
  from: string;
  durationSeconds: number;
}

export interface ReconcileResult {
  since: string;
  /** Recordings Twilio listed in the window. */
  checked: number;
  created: ReconciledVoicemail[];
  skipped: { recordingSid: string; reason: string }[];
}

function parseTwilioDate(value: string | null | undefined): number | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** The recording's URL as a recording callback gives it (media without extension). */
function recordingUrl(rest: TwilioRest, rec: TwilioRecording): string | null {
  if (rec.media_url && rest.isTwilioUrl(rec.media_url)) return rec.media_url;
  if (rec.uri) return `${rest.baseUrl("api")}${rec.uri.replace(/\.json$/, "")}`;
  return null;
}

/** The one user whose devices the DID rings by default, when there is exactly one. */
async function mailboxOwner(deps: Pick<EdgeDeps, "db">, targets: unknown): Promise<string | null> {
  let deviceIds: string[];
  try {
    deviceIds = parseDidTargets(targets).deviceIds;
  } catch {
    return null;
  }
  if (deviceIds.length === 0) return null;
  const rows = await deps.db
    .selectDistinct({ userId: devices.userId })
    .from(devices)
    .where(inArray(devices.id, deviceIds));
  const owners = rows.flatMap((r) => (r.userId ? [r.userId] : []));
  return owners.length === 1 ? (owners[0] ?? null) : null;
}

/** The CDR of a call the edge never saw, written from Twilio's Call resource. */
async function ensureCdr(
  deps: ReconcileDeps,
  call: TwilioCall,
  did: { id: string; userId: string | null } | null,
  at: Date,
): Promise<void> {
  const started = parseTwilioDate(call.start_time);
  await deps.db
    .insert(cdrs)
    .values({
      direction: "inbound",
      fromNumber: call.from || "anonymous",
      toNumber: call.to,
      didId: did?.id ?? null,
      userId: did?.userId ?? null,
      status: "ended",
      // Missed until a voicemail is stored for it (the intake then sets "voicemail").
      disposition: "missed",
      reason: "fallback",
      startedAt: started === null ? at : new Date(started),
      endedAt: at,
      twilioCallSid: call.sid,
    })
    .onConflictDoNothing({ target: cdrs.twilioCallSid });
}

export async function reconcileFallbackVoicemails(
  deps: ReconcileDeps,
  options: { since?: Date | undefined } = {},
): Promise<ReconcileResult> {
  const rest = await requireTwilio(deps);
  const now = deps.clock.now();
  const since = options.since ?? new Date(now - DEFAULT_RECONCILE_WINDOW_MS);
  const recordings = await callTwilio("listing recordings", () =>
    listAll<TwilioRecording>(rest, rest.accountPath("/Recordings.json"), "recordings", {
      // ISO 8601 in whole seconds, as Twilio's own SDKs send date-time filters.
      "DateCreated>": since.toISOString().replace(/\.\d{3}Z$/, "Z"),
    }),
  );
  const result: ReconcileResult = {
    since: since.toISOString(),
    checked: recordings.length,
    created: [],
    skipped: [],
  };
  const skip = (recordingSid: string, reason: string) => result.skipped.push({ recordingSid, reason });
  const owners = new Set<string>();

  for (const rec of recordings) {
    const createdAt = parseTwilioDate(rec.date_created);
    if (!RECORDING_SID.test(rec.sid)) continue;
    if (createdAt !== null && createdAt < since.getTime()) continue;
    if (rec.status !== "completed") {
      skip(rec.sid, `recording ${rec.status}`);
      continue;
    }
    if (rec.source && rec.source !== "RecordVerb") {
      skip(rec.sid, "not a voicemail (call recording)");
      continue;
    }
    if (await voicemailByRecording(deps.db, rec.sid)) {
      skip(rec.sid, "already a voicemail");
      continue;
    }
    const callSid = rec.call_sid && CALL_SID.test(rec.call_sid) ? rec.call_sid : null;
    const [knownCdr] = callSid
      ? await deps.db.select({ id: cdrs.id }).from(cdrs).where(eq(cdrs.twilioCallSid, callSid))
      : [];
    if (knownCdr && createdAt !== null && now - createdAt < CALLBACK_GRACE_MS) {
      skip(rec.sid, "recent recording of a call the edge handled: left to its callback");
      continue;
    }
    const url = recordingUrl(rest, rec);
    if (!url) {
      skip(rec.sid, "no media URL");
      continue;
    }

    let did: { id: string; userId: string | null } | null = null;
    if (callSid) {
      const call = await callTwilio("reading the call of a recording", () =>
        rest.request<TwilioCall>("GET", "api", rest.accountPath(`/Calls/${callSid}.json`)),
      );
      const [row] = await deps.db
        .select({ id: dids.id, defaultTargets: dids.defaultTargets })
        .from(dids)
        .where(eq(dids.e164, call.to));
      if (row) did = { id: row.id, userId: await mailboxOwner(deps, row.defaultTargets) };
      if (!knownCdr) await ensureCdr(deps, call, did, new Date(createdAt ?? now));
    }

    const durationSeconds = Math.max(0, Math.round(Number(rec.duration ?? 0)) || 0);
    const outcome = await acceptRecording(deps, {
      recordingSid: rec.sid,
      status: "completed",
      recordingUrl: url,
      durationSeconds,
      callSid: callSid ?? undefined,
      didId: did?.id,
      userId: did?.userId ?? undefined,
      cdrId: undefined,
    });
    if (outcome.kind !== "stored") {
      skip(rec.sid, outcome.kind === "discarded" ? "shorter than 3 s: discarded" : "not recorded");
      continue;
    }
    // The fallback asked Twilio for no transcription: none will come (a long one keeps "too_long").
    await deps.db
      .update(voicemails)
      .set({ transcriptStatus: "none" })
      .where(and(eq(voicemails.id, outcome.voicemailId), eq(voicemails.transcriptStatus, "pending")));
    const [vm] = await deps.db
      .select({ fromNumber: voicemails.fromNumber, userId: voicemails.userId })
      .from(voicemails)
      .where(eq(voicemails.id, outcome.voicemailId));
    if (vm?.userId) owners.add(vm.userId);
    result.created.push({
      recordingSid: rec.sid,
      callSid,
      voicemailId: outcome.voicemailId,
      from: vm?.fromNumber ?? "unknown",
      durationSeconds,
    });
  }
  for (const userId of owners) await pushMailboxes(deps, userId);
  deps.logger.info(
    { checked: result.checked, created: result.created.length, skipped: result.skipped.length },
    "setup: fallback voicemails reconciled",
  );
  return result;
}
