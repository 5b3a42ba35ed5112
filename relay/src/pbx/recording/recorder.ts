// Call recording on the relay. rtpengine records a call into a pcap; when the recording stops (on demand, by
// the feature code, or because the call ended) the pcap becomes a WAV with its SHA-256 and duration, is
// uploaded to the edge (PUT /api/relay/recordings/{id}, retried with backoff while the edge is unreachable),
// then announced with a recording.ready event. The WAV stays on disk until the edge confirms that event; a
// relay restart resumes every upload not yet confirmed.
//
// A row of relay_recordings follows each recording:
//   recording  rtpengine is writing the pcap (path = the pcap, relative to the recording directory)
//   ready      WAV written (path = the WAV, size, sha256, duration, endedAt); being uploaded
//   uploaded   the edge has the bytes, recording.ready is in the outbox; confirmedAt set (and the local
//              file deleted, path null) once the edge acknowledged it
//   failed     the pcap was unusable or the edge refused the upload for good (recording.skipped 'failed')
// Free space is checked before each recording: under the edge's minFreeBytes the call goes on unrecorded
// (recording.skipped 'storage_low' and a storage.status with low: true, which alerts the admin).
import { randomUUID } from "node:crypto";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";
import type { RelayEvent } from "@gosip/drizzle";
import type { Logger } from "pino";
import type { EventSink, PbxContext } from "../context.ts";
import type { CallStats } from "../media/media.ts";
import {
  pcapToWav,
  recordingComplete,
  recordingMetadataPath,
  type WavOptions,
  type WavResult,
} from "../media/recording-file.ts";
import { type DtmfDigit, FeatureCodes } from "./dtmf.ts";
import { type FreeSpaceProbe, StorageMonitor, statfsProbe } from "./storage.ts";
import { type BackoffOptions, retryDelay, UploadError, type Uploader } from "./uploader.ts";

export type RecordingTrigger = "on_demand" | "device" | "rule";

/** The part of MediaService recording needs. */
export interface RecordingMedia {
  startRecording(callId: string): Promise<{ pcapPath?: string; callerPorts?: number[] }>;
  stopRecording(callId: string): Promise<void>;
  pcapsOf(callId: string): Promise<string[]>;
  /** Used to tell the caller's packets from the callee's (stereo channels); optional. */
  stats?(callId: string): Promise<CallStats>;
}

/** A live call as the recorder needs to know it (the calls feature's table). */
export type CallLookup = (callId: string) => { deviceId: string | null } | undefined;

export type PcapConverter = (pcapPath: string, wavPath: string, opts: WavOptions) => Promise<WavResult>;

export type RecorderContext = Pick<PbxContext, "log" | "db" | "directory" | "events" | "options" | "now">;

export interface RecorderOptions {
  /** Free-space measurement of the recording directory (default statfs). */
  probe?: FreeSpaceProbe;
  /** Threshold used before the edge's settings arrived (default 100 MB). */
  defaultMinFreeBytes?: number;
  /** Period of storage.status reports (default 5 minutes). */
  storageIntervalMs?: number;
  /** The live-call table: start refuses unknown calls, rows get the call's device. */
  lookup?: CallLookup;
  /** pcap → WAV (default the media module's pcapToWav, stereo caller/callee). */
  convert?: PcapConverter;
  /** Upload retry backoff (default 1 s doubling up to 5 min). */
  backoff?: BackoffOptions;
  /** How long to wait for rtpengine to finish a pcap after the recording stopped (default 10 s). */
  completeTimeoutMs?: number;
  /** The in-call DTMF code that starts/stops the call's recording (default "*1"). */
  featureCode?: string;
}

export type StartResult =
  | { status: "recording"; recordingId: string }
  | { status: "already"; recordingId: string }
  | { status: "skipped"; recordingId: string; reason: "storage_low" | "media_error" };

export type StopResult = { status: "stopped"; recordingId: string } | { status: "not-recording" };

interface Active {
  recordingId: string;
  callId: string;
  deviceId: string | null;
  trigger: RecordingTrigger;
  startedAt: number;
  pcapPath: string | undefined;
  callerPorts: number[] | undefined;
}

export interface RecordingRow {
  id: string;
  callId: string;
  deviceId: string | null;
  trigger: RecordingTrigger;
  status: "recording" | "ready" | "uploaded" | "failed";
  path: string | null;
  contentType: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  durationSeconds: number | null;
  startedAt: number;
  endedAt: number | null;
  confirmedAt: number | null;
}

type Row = Record<string, unknown>;
const num = (v: unknown): number | null =>
  typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : null;
const text = (v: unknown): string | null => (typeof v === "string" ? v : null);

function toRow(r: Row): RecordingRow {
  return {
    id: String(r.id),
    callId: String(r.call_id),
    deviceId: text(r.device_id),
    trigger: String(r.trigger) as RecordingTrigger,
    status: String(r.status) as RecordingRow["status"],
    path: text(r.path),
    contentType: text(r.content_type),
    sizeBytes: num(r.size_bytes),
    sha256: text(r.sha256),
    durationSeconds: num(r.duration_seconds),
    startedAt: num(r.started_at) ?? 0,
    endedAt: num(r.ended_at),
    confirmedAt: num(r.confirmed_at),
  };
}

const WAV_TYPE = "audio/wav";
const WAV_DIR = "wav";

export class Recorder {
  readonly #ctx: RecorderContext;
  readonly #media: RecordingMedia;
  readonly #uploader: Uploader;
  readonly #opts: RecorderOptions;
  readonly #log: Logger;
  readonly #dir: string;
  readonly #storage: StorageMonitor;
  readonly #convert: PcapConverter;
  /** Calls being recorded (or whose recording is being started), by call id. */
  readonly #active = new Map<string, Active | "starting">();
  /** Scheduled upload retries by recording id. */
  readonly #retries = new Map<string, NodeJS.Timeout>();
  /** Conversions and uploads in flight (close and tests wait for them). */
  readonly #work = new Set<Promise<unknown>>();
  readonly #codes: FeatureCodes;
  #closed = false;

  constructor(ctx: RecorderContext, media: RecordingMedia, uploader: Uploader, opts: RecorderOptions = {}) {
    this.#ctx = ctx;
    this.#media = media;
    this.#uploader = uploader;
    this.#opts = opts;
    this.#log = ctx.log.child({ feature: "recording" });
    this.#dir = ctx.options.recordingDir;
    this.#convert = opts.convert ?? pcapToWav;
    this.#codes = new FeatureCodes({ code: opts.featureCode ?? "*1" }, (callId) => {
      // Only calls the B2BUA knows (when it told us how to look them up): stray or late digits do nothing.
      if (this.#opts.lookup && !this.#opts.lookup(callId)) return;
      this.#track(this.toggle(callId, "on_demand"));
    });
    this.#storage = new StorageMonitor({
      dir: this.#dir,
      probe: opts.probe ?? statfsProbe,
      events: ctx.events,
      minFreeBytes: () => this.#minFreeBytes(),
      log: this.#log,
      ...(opts.storageIntervalMs ? { intervalMs: opts.storageIntervalMs } : {}),
    });
  }

  #minFreeBytes(): number {
    return (
      this.#ctx.directory.settings()?.minFreeBytes ?? this.#opts.defaultMinFreeBytes ?? 100 * 1024 * 1024
    );
  }

  /**
   * Resumes what a previous run left (pcaps of recordings cut by a restart, WAVs not yet uploaded, files the
   * edge already confirmed) and starts the storage reports.
   */
  async open(): Promise<void> {
    await mkdir(join(this.#dir, WAV_DIR), { recursive: true });
    const rs = await this.#ctx.db.$client.execute(
      `SELECT * FROM relay_recordings WHERE status IN ('recording', 'ready', 'uploaded')
         AND (confirmed_at IS NULL OR path IS NOT NULL)`,
    );
    for (const raw of rs.rows) {
      const row = toRow(raw as Row);
      if (row.confirmedAt !== null) {
        await this.#deleteLocal(row);
      } else if (row.status === "recording") {
        // The relay stopped while rtpengine wrote this pcap: keep what reached the disk.
        const pcap = row.path ? this.#abs(row.path) : undefined;
        this.#track(
          this.#finish({
            recordingId: row.id,
            callId: row.callId,
            deviceId: row.deviceId,
            trigger: row.trigger,
            startedAt: row.startedAt,
            pcapPath: pcap,
            callerPorts: undefined,
          }),
        );
      } else if (row.status === "uploaded") {
        // Announced, but the confirmation may have been lost with the previous run (acked while this row's
        // update was not yet written): announce again; the edge stores a recording once per id.
        await this.#announce(row);
      } else this.#scheduleUpload(row.id, 0);
    }
    this.#storage.start();
  }

  /** Whether the call is being recorded now. */
  isRecording(callId: string): boolean {
    return this.#active.has(callId);
  }

  /** The recording's row (tests, the health page). */
  async row(recordingId: string): Promise<RecordingRow | undefined> {
    const rs = await this.#ctx.db.$client.execute({
      sql: "SELECT * FROM relay_recordings WHERE id = ?",
      args: [recordingId],
    });
    const r = rs.rows[0];
    return r ? toRow(r as Row) : undefined;
  }

  /** Free space now, reported to the edge as storage.status. */
  storageStatus(): Promise<unknown> {
    return this.#storage.check({ report: true });
  }

  /**
   * Starts recording a call. Refused (skipped, with events) when storage is low or rtpengine cannot; a call
   * already being recorded keeps its recording.
   */
  async start(callId: string, trigger: RecordingTrigger, deviceId?: string | null): Promise<StartResult> {
    const current = this.#active.get(callId);
    if (current === "starting") return { status: "already", recordingId: "" };
    if (current) return { status: "already", recordingId: current.recordingId };
    const recordingId = randomUUID();
    const device = deviceId !== undefined ? deviceId : (this.#opts.lookup?.(callId)?.deviceId ?? null);
    this.#active.set(callId, "starting");
    try {
      // A refused call always reports storage.status (low: true): the admin is alerted each time it matters.
      const storage = await this.#storage.check({ reportIfLow: true });
      if (storage?.low) {
        await this.#skipped(recordingId, callId, device, "storage_low");
        this.#active.delete(callId);
        return { status: "skipped", recordingId, reason: "storage_low" };
      }
      let started: { pcapPath?: string; callerPorts?: number[] };
      try {
        started = await this.#media.startRecording(callId);
      } catch (err) {
        this.#log.warn(
          { callId, err: err instanceof Error ? err.message : String(err) },
          "rtpengine did not start recording",
        );
        await this.#skipped(recordingId, callId, device, "media_error");
        this.#active.delete(callId);
        return { status: "skipped", recordingId, reason: "media_error" };
      }
      const startedAt = this.#ctx.now();
      const active: Active = {
        recordingId,
        callId,
        deviceId: device,
        trigger,
        startedAt,
        pcapPath: started.pcapPath,
        callerPorts: started.callerPorts ?? (await this.#callerPorts(callId)),
      };
      await this.#ctx.db.$client.execute({
        sql: `INSERT INTO relay_recordings (id, call_id, device_id, trigger, status, path, started_at, created_at, updated_at)
              VALUES (?, ?, ?, ?, 'recording', ?, ?, ?, ?)`,
        args: [
          recordingId,
          callId,
          device,
          trigger,
          started.pcapPath ? this.#rel(started.pcapPath) : null,
          startedAt,
          startedAt,
          startedAt,
        ],
      });
      if (this.#active.get(callId) === "starting") this.#active.set(callId, active);
      else {
        // The call ended while the recording was being set up: finish it at once.
        this.#track(this.#finish(active));
      }
      this.#log.info({ callId, recordingId, trigger }, "recording started");
      return { status: "recording", recordingId };
    } catch (err) {
      if (this.#active.get(callId) === "starting") this.#active.delete(callId);
      throw err;
    }
  }

  /**
   * Stops a call's recording; resolves once the WAV is written and its row is `ready` (the upload goes on in
   * the background). Stopping a call that is not recorded is not an error.
   */
  async stop(callId: string): Promise<StopResult> {
    const active = this.#active.get(callId);
    if (!active || active === "starting") return { status: "not-recording" };
    this.#active.delete(callId);
    try {
      await this.#media.stopRecording(callId);
    } catch (err) {
      // The call is gone from rtpengine (ended, rtpengine restarted): its pcap was closed with it.
      this.#log.debug({ callId, err: err instanceof Error ? err.message : String(err) }, "stop recording");
    }
    await this.#track(this.#finish(active));
    return { status: "stopped", recordingId: active.recordingId };
  }

  /** Starts or stops (the in-call feature code). */
  async toggle(callId: string, trigger: RecordingTrigger = "on_demand"): Promise<StartResult | StopResult> {
    return this.#active.has(callId) ? this.stop(callId) : this.start(callId, trigger);
  }

  /** The calls feature reports an answered call: devices with recordAlways get it recorded. */
  async onCallAnswered(call: {
    callId: string;
    deviceId: string | null;
    deviceIds?: readonly string[];
  }): Promise<void> {
    const ids = new Set([...(call.deviceIds ?? []), ...(call.deviceId ? [call.deviceId] : [])]);
    const always = [...ids].find((id) => this.#ctx.directory.byId(id)?.recordAlways === true);
    if (always !== undefined) await this.start(call.callId, "device", always);
  }

  /** A DTMF digit of a live call (rtpengine's DTMF log, see dtmf.ts): the feature code toggles recording. */
  onDtmf(digit: DtmfDigit): void {
    this.#codes.digit(digit);
  }

  /** The call ended (rtpengine's session is deleted, which closes the pcap): finish its recording. */
  async onCallEnded(callId: string): Promise<void> {
    this.#codes.forget(callId);
    const active = this.#active.get(callId);
    if (active === "starting") {
      // start() sees this and finishes the recording once its row exists.
      this.#active.delete(callId);
      return;
    }
    if (active) await this.stop(callId);
  }

  /**
   * An EventSink that passes every event on to `sink` and tells the recorder about call.answered and
   * call.ended (the calls feature's events), so always-on recording needs no other hook.
   */
  observe(sink: EventSink): EventSink {
    return {
      emit: async (event: RelayEvent) => {
        await sink.emit(event);
        if (event.kind === "call.answered")
          this.#track(this.onCallAnswered({ callId: event.callId, deviceId: event.deviceId }));
        else if (event.kind === "call.ended") this.#track(this.onCallEnded(event.callId));
      },
    };
  }

  /** The edge acknowledged the recording.ready event: the local WAV is no longer needed. */
  async confirm(recordingId: string): Promise<void> {
    const row = await this.row(recordingId);
    if (!row || row.confirmedAt !== null) return;
    const now = this.#ctx.now();
    await this.#ctx.db.$client.execute({
      sql: "UPDATE relay_recordings SET confirmed_at = ?, updated_at = ? WHERE id = ?",
      args: [now, now, recordingId],
    });
    await this.#deleteLocal({ ...row, confirmedAt: now });
  }

  /** Resolves when no conversion or upload attempt is running (a scheduled retry is not waited for). */
  async idle(): Promise<void> {
    while (this.#work.size > 0) await Promise.allSettled([...this.#work]);
  }

  /** Recording ids whose upload waits for a retry. */
  pendingUploads(): string[] {
    return [...this.#retries.keys()];
  }

  /** Stops the storage reports and upload retries (a later open() resumes them); waits for running work. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#storage.stop();
    for (const t of this.#retries.values()) clearTimeout(t);
    this.#retries.clear();
    await this.idle();
  }

  #track<T>(p: Promise<T>): Promise<T> {
    const tracked = p.catch((err: unknown) => {
      this.#log.error({ err }, "recording work failed");
      return undefined as T;
    });
    this.#work.add(tracked);
    void tracked.finally(() => this.#work.delete(tracked));
    return tracked;
  }

  #rel(path: string): string {
    return isAbsolute(path) ? relative(this.#dir, path) : path;
  }

  #abs(path: string): string {
    return isAbsolute(path) ? path : join(this.#dir, path);
  }

  async #skipped(
    recordingId: string,
    callId: string,
    deviceId: string | null,
    reason: "storage_low" | "media_error" | "failed",
  ): Promise<void> {
    this.#log.warn({ callId, recordingId, reason }, "call not recorded");
    await this.#ctx.events.emit({ kind: "recording.skipped", recordingId, callId, deviceId, reason });
  }

  /** rtpengine's ports facing the caller (its offer's label), so the WAV's left channel is the caller. */
  async #callerPorts(callId: string): Promise<number[] | undefined> {
    if (!this.#media.stats) return undefined;
    try {
      const stats = await this.#media.stats(callId);
      const port = stats.legs.find((l) => l.label === "caller")?.localPort;
      return port ? [port] : undefined;
    } catch {
      return undefined;
    }
  }

  /** The recording's pcap once rtpengine has finished it (it may take a moment after stop or delete). */
  async #completePcap(a: Active): Promise<string | undefined> {
    const deadline = Date.now() + (this.#opts.completeTimeoutMs ?? 10_000);
    for (;;) {
      const pcap = a.pcapPath ?? (await this.#media.pcapsOf(a.callId)).at(-1);
      if (pcap && (await recordingComplete(pcap))) return pcap;
      if (Date.now() > deadline) {
        // Not announced as finished (rtpengine died with the relay?): use what reached the disk.
        return pcap && (await exists(pcap)) ? pcap : undefined;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** pcap → WAV, row `ready`, then the upload. */
  async #finish(a: Active): Promise<void> {
    const pcap = await this.#completePcap(a);
    const wavPath = join(this.#dir, WAV_DIR, `${a.recordingId}.wav`);
    let wav: WavResult;
    try {
      if (!pcap) throw new Error("rtpengine wrote no pcap for the recording");
      await mkdir(join(this.#dir, WAV_DIR), { recursive: true });
      wav = await this.#convert(pcap, wavPath, a.callerPorts ? { callerPorts: a.callerPorts } : {});
    } catch (err) {
      this.#log.error(
        { callId: a.callId, recordingId: a.recordingId, err },
        "recording could not be converted",
      );
      await this.#setFailed(a.recordingId);
      await this.#skipped(a.recordingId, a.callId, a.deviceId, "failed");
      return;
    }
    const endedAt = this.#ctx.now();
    await this.#ctx.db.$client.execute({
      sql: `UPDATE relay_recordings SET status = 'ready', path = ?, content_type = ?, size_bytes = ?, sha256 = ?,
              duration_seconds = ?, ended_at = ?, updated_at = ? WHERE id = ?`,
      args: [
        this.#rel(wavPath),
        WAV_TYPE,
        wav.bytes,
        wav.sha256,
        Math.round(wav.durationMs / 1000),
        endedAt,
        endedAt,
        a.recordingId,
      ],
    });
    // rtpengine's spool files are no longer needed once the WAV is on disk.
    if (pcap) {
      await rm(pcap, { force: true });
      await rm(recordingMetadataPath(pcap), { force: true });
    }
    this.#log.info(
      {
        callId: a.callId,
        recordingId: a.recordingId,
        durationMs: Math.round(wav.durationMs),
        bytes: wav.bytes,
      },
      "recording ready",
    );
    this.#scheduleUpload(a.recordingId, 0);
  }

  async #setFailed(recordingId: string): Promise<void> {
    const now = this.#ctx.now();
    await this.#ctx.db.$client.execute({
      sql: "UPDATE relay_recordings SET status = 'failed', ended_at = coalesce(ended_at, ?), updated_at = ? WHERE id = ?",
      args: [now, now, recordingId],
    });
  }

  #scheduleUpload(recordingId: string, attempt: number, afterMs = 0): void {
    if (this.#closed || this.#retries.has(recordingId)) return;
    const delay = attempt === 0 ? afterMs : Math.max(afterMs, retryDelay(attempt, this.#opts.backoff));
    if (delay === 0) {
      this.#track(this.#upload(recordingId, attempt));
      return;
    }
    const timer = setTimeout(() => {
      this.#retries.delete(recordingId);
      this.#track(this.#upload(recordingId, attempt));
    }, delay);
    timer.unref();
    this.#retries.set(recordingId, timer);
  }

  async #upload(recordingId: string, attempt: number): Promise<void> {
    if (this.#closed) return;
    const row = await this.row(recordingId);
    if (row?.status !== "ready" || !row.path || !row.sha256) return;
    try {
      await this.#uploader.upload({
        recordingId,
        path: this.#abs(row.path),
        contentType: row.contentType ?? WAV_TYPE,
        sizeBytes: row.sizeBytes ?? 0,
        sha256: row.sha256,
      });
    } catch (err) {
      const retryable = !(err instanceof UploadError) || err.retryable;
      const message = err instanceof Error ? err.message : String(err);
      if (!retryable) {
        this.#log.error(
          { recordingId, err: message },
          "edge refused the recording; kept locally, marked failed",
        );
        await this.#setFailed(recordingId);
        await this.#skipped(recordingId, row.callId, row.deviceId, "failed");
        return;
      }
      this.#log.warn(
        { recordingId, attempt: attempt + 1, err: message },
        "recording upload failed; will retry",
      );
      this.#scheduleUpload(
        recordingId,
        attempt + 1,
        err instanceof UploadError ? (err.retryAfterMs ?? 0) : 0,
      );
      return;
    }
    // recording.ready goes into the durable outbox before the row says so: a crash in between re-uploads
    // (the PUT is idempotent) and announces it again, never loses it.
    await this.#announce(row);
    const now = this.#ctx.now();
    await this.#ctx.db.$client.execute({
      sql: "UPDATE relay_recordings SET status = 'uploaded', updated_at = ? WHERE id = ? AND status = 'ready'",
      args: [now, recordingId],
    });
  }

  async #announce(row: RecordingRow): Promise<void> {
    await this.#ctx.events.emit({
      kind: "recording.ready",
      recordingId: row.id,
      callId: row.callId,
      deviceId: row.deviceId,
      trigger: row.trigger,
      contentType: row.contentType ?? WAV_TYPE,
      sizeBytes: row.sizeBytes ?? 0,
      sha256: row.sha256 ?? "",
      durationSeconds: row.durationSeconds ?? 0,
      startedAt: new Date(row.startedAt).toISOString(),
      endedAt: new Date(row.endedAt ?? row.startedAt).toISOString(),
    });
  }

  async #deleteLocal(row: RecordingRow): Promise<void> {
    if (row.path) await rm(this.#abs(row.path), { force: true });
    await this.#ctx.db.$client.execute({
      sql: "UPDATE relay_recordings SET path = NULL, updated_at = ? WHERE id = ?",
      args: [this.#ctx.now(), row.id],
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Files in the WAV directory (tests). */
export async function localRecordings(recordingDir: string): Promise<string[]> {
  try {
    return (await readdir(join(recordingDir, WAV_DIR))).sort();
  } catch {
    return [];
  }
}
