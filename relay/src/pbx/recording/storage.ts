// Free space of the recording directory: measured before every recording starts (under the edge's
// `minFreeBytes` the call goes on unrecorded) and every few minutes, reported to the edge as storage.status so
// the dashboard shows it and the admin is alerted when it runs low.
import { statfs } from "node:fs/promises";
import type { Logger } from "pino";
import type { EventSink } from "../context.ts";

export interface StorageSample {
  freeBytes: number;
  totalBytes: number;
}

/** Measures the file system holding `dir` (injectable: tests play a full disk). */
export type FreeSpaceProbe = (dir: string) => Promise<StorageSample>;

/** The real probe: statfs(2) on the directory, space available to this (unprivileged) process. */
export const statfsProbe: FreeSpaceProbe = async (dir) => {
  const s = await statfs(dir);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
};

export interface StorageMonitorOptions {
  dir: string;
  probe: FreeSpaceProbe;
  events: EventSink;
  /** The threshold now (the edge's settings can change it at any time). */
  minFreeBytes: () => number;
  log: Logger;
  /** Period of the regular report (default 5 minutes). */
  intervalMs?: number;
}

export interface StorageStatus extends StorageSample {
  low: boolean;
}

/** Reports the recording directory's free space: periodically, when `low` flips, and when asked to. */
export class StorageMonitor {
  #timer: NodeJS.Timeout | undefined;
  #low: boolean | undefined;
  #checking: Promise<StorageStatus | undefined> | undefined;

  constructor(private readonly opts: StorageMonitorOptions) {}

  /** Reports once now, then every interval. */
  start(): void {
    void this.check({ report: true });
    this.#timer = setInterval(() => void this.check({ report: true }), this.opts.intervalMs ?? 300_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Whether free space was under the threshold at the last measurement (undefined before the first). */
  get low(): boolean | undefined {
    return this.#low;
  }

  /**
   * Measures now. The status goes to the edge when `report` is set, when `low` changed since the last
   * measurement, or when it is low and `reportIfLow` is set (once either way); undefined when the directory
   * cannot be measured (logged; a recording then is not refused, rtpengine's own failure would tell).
   */
  async check(opts: { report?: boolean; reportIfLow?: boolean } = {}): Promise<StorageStatus | undefined> {
    // Concurrent checks (many calls starting at once) share one statfs.
    if (!this.#checking) {
      this.#checking = this.#measure().finally(() => {
        this.#checking = undefined;
      });
    }
    const status = await this.#checking;
    if (!status) return undefined;
    const changed = this.#low !== status.low;
    this.#low = status.low;
    if (opts.report || changed || (opts.reportIfLow && status.low)) {
      if (changed && status.low)
        this.opts.log.warn({ freeBytes: status.freeBytes }, "recording storage low: calls go on unrecorded");
      await this.opts.events.emit({ kind: "storage.status", ...status });
    }
    return status;
  }

  async #measure(): Promise<StorageStatus | undefined> {
    try {
      const s = await this.opts.probe(this.opts.dir);
      const freeBytes = Math.max(0, Math.floor(s.freeBytes));
      const totalBytes = Math.max(0, Math.floor(s.totalBytes));
      return { freeBytes, totalBytes, low: freeBytes < this.opts.minFreeBytes() };
    } catch (err) {
      this.opts.log.error({ err }, "cannot measure the recording directory's free space");
      return undefined;
    }
  }
}
