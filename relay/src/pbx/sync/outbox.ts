/**
 * The relay's durable outbox of events for the edge (relay_outbox). `emit` stores
 * the event with a fresh idempotency key and resolves once it is on disk; emits
 * that arrive while a write is running are stored together in the next write
 * (group commit), so many emits a second cost a few transactions, not one each.
 *
 * While the link is up, the sender sends unacknowledged rows in `seq` order with a
 * bounded number in flight; the edge's `ack` deletes them, its `nack` drops them
 * (the event can never be stored) with a log line. A row is deleted only on ack or
 * nack, so a crash or a cut link loses nothing: after a reconnect every row still
 * there is sent again (the edge stores by key, so a repeat changes nothing).
 *
 * Rows emitted by this process are also kept in memory with their encoded frame
 * (the tail), so the sender reads the table only for rows older than the process
 * (or when the tail grew past its bound while the edge was away).
 */

import { type Db, type RelayEvent, relayOutboxEventSchema } from "@gosip/drizzle";
import type { InStatement } from "@libsql/client";
import type { Logger } from "pino";
import type { EventSink } from "../context.ts";

export interface OutboxOptions {
  db: Db;
  log: Logger;
  now?: () => number;
  /** Events sent and not yet acknowledged, at most (default 100). */
  window?: number;
  /** Rows per insert statement (SQLite's bound-parameter limit; default 500). */
  insertChunk?: number;
  /** Events stored per write transaction, at most (default 1,000). */
  maxBatch?: number;
  /** Unacknowledged events kept in memory beyond which the sender reads the table instead (default 20,000). */
  maxTail?: number;
}
/** Sends one frame on the live link; false when the link is gone. */
export type SendFrame = (frame: string) => boolean;

interface PendingEmit {
  key: string;
  /** The event's JSON, encoded once for the row and the frame. */
  eventJson: string;
  at: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface TailEntry {
  seq: number;
  key: string;
  /** The encoded `event` frame. */
  frame: string;
  /** Acked or nacked. */
  done: boolean;
}

/** The `event` frame of the sync protocol, encoded around an already encoded event. */
function eventFrame(seq: number, key: string, at: number, eventJson: string): string {
  return `{"type":"event","seq":${seq},"key":${JSON.stringify(key)},"at":"${new Date(at).toISOString()}","event":${eventJson}}`;
}

export class Outbox implements EventSink {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #window: number;
  readonly #chunk: number;
  readonly #maxTail: number;
  readonly #maxBatch: number;

  #queue: PendingEmit[] = [];
  #writing: Promise<void> | undefined;
  #depth = 0;
  #loaded: Promise<void>;

  /** Rows stored by this process and not yet settled, in seq order from `#tailHead`. */
  #tail: TailEntry[] = [];
  #tailHead = 0;
  #tailByKey = new Map<string, TailEntry>();
  readonly #ackListeners: ((frame: string) => void)[] = [];
  /** Rows with seq up to here may be in the table only (older than the process, or the tail overflowed). */
  #tailBase = Number.POSITIVE_INFINITY;

  /** The live link's sender, or undefined while disconnected. */
  #send: SendFrame | undefined;
  /** Generation of the current connection: a read that finishes after a reconnect is discarded. */
  #generation = 0;
  /** Highest seq sent (or skipped) on this connection. */
  #cursor = 0;
  /** Sent on this connection and not yet acknowledged: key → seq. */
  #inFlight = new Map<string, number>();
  #pumping = false;
  #pumpAgain = false;
  /** Acked or nacked, their delete not yet written: key → seq (0 when unknown); never sent again meanwhile. */
  #settled = new Map<string, number>();
  #deleteQueue: string[] = [];
  #deleting: Promise<void> | undefined;

  #stats = { stored: 0, sent: 0, acked: 0, nacked: 0 };

  constructor(options: OutboxOptions) {
    this.#db = options.db;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#window = options.window ?? 100;
    this.#chunk = options.insertChunk ?? 500;
    this.#maxTail = options.maxTail ?? 20_000;
    this.#maxBatch = options.maxBatch ?? 1_000;
    this.#loaded = this.#load().catch((err: unknown) => {
      // Rows stored before this start then wait for the next start; new ones still go out.
      this.#tailBase = 0;
      this.#log.error({ err }, "relay outbox: could not read the stored events");
    });
  }

  async #load(): Promise<void> {
    const rs = await this.#db.$client.execute(
      "SELECT count(*) AS n, coalesce(max(seq), 0) AS last FROM relay_outbox WHERE acked_at IS NULL",
    );
    this.#depth += Number(rs.rows[0]?.n ?? 0);
    // AUTOINCREMENT: every row this process stores gets a larger seq than these.
    this.#tailBase = Number(rs.rows[0]?.last ?? 0);
  }

  /** Stores an event for the edge; resolves once it is in the libSQL file. */
  emit(event: RelayEvent): Promise<void> {
    // Validated here, where the bug is, rather than nacked by the edge later.
    const checked = relayOutboxEventSchema.safeParse({ v: 1, event });
    if (!checked.success) {
      return Promise.reject(
        new Error(`invalid relay event ${event.kind}: ${checked.error.issues[0]?.message}`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({
        key: crypto.randomUUID(),
        eventJson: JSON.stringify(checked.data.event),
        at: this.#now(),
        resolve,
        reject,
      });
      this.#startWrite();
    });
  }

  #startWrite(): void {
    if (this.#writing || this.#queue.length === 0) return;
    this.#writing = (async () => {
      // The startup count must not include rows this write adds.
      await this.#loaded;
      // Let the emits of this turn of the event loop join the write.
      await new Promise<void>((r) => setImmediate(r));
      while (this.#queue.length > 0) {
        // Bounded transactions, each after a turn of the event loop: a burst of emits must not
        // hold up the SIP engine in the same process for the whole burst.
        const batch = this.#queue.splice(0, this.#maxBatch);
        try {
          const seqs = await this.#insert(batch);
          this.#depth += batch.length;
          this.#stats.stored += batch.length;
          this.#remember(batch, seqs);
          for (const p of batch) p.resolve();
        } catch (err) {
          this.#log.error({ err, events: batch.length }, "relay outbox write failed");
          for (const p of batch) p.reject(err);
        }
        this.#pump();
        if (this.#queue.length > 0) await new Promise<void>((r) => setImmediate(r));
      }
    })().finally(() => {
      this.#writing = undefined;
      this.#startWrite();
    });
  }

  /** Inserts in one transaction; returns each key's seq. */
  async #insert(batch: readonly PendingEmit[]): Promise<Map<string, number>> {
    const statements: InStatement[] = [];
    for (let i = 0; i < batch.length; i += this.#chunk) {
      const part = batch.slice(i, i + this.#chunk);
      const args: (string | number)[] = [];
      for (const p of part) args.push(p.key, `{"v":1,"event":${p.eventJson}}`, p.at);
      statements.push({
        sql: `INSERT INTO relay_outbox (idempotency_key, event, created_at) VALUES ${part.map(() => "(?, ?, ?)").join(", ")} RETURNING seq, idempotency_key`,
        args,
      });
    }
    const results = await this.#db.$client.batch(statements, "write");
    const seqs = new Map<string, number>();
    for (const rs of results)
      for (const row of rs.rows) seqs.set(String(row.idempotency_key), Number(row.seq));
    return seqs;
  }

  #remember(batch: readonly PendingEmit[], seqs: Map<string, number>): void {
    const entries: TailEntry[] = [];
    for (const p of batch) {
      const seq = seqs.get(p.key);
      if (seq !== undefined)
        entries.push({ seq, key: p.key, frame: eventFrame(seq, p.key, p.at, p.eventJson), done: false });
    }
    entries.sort((a, b) => a.seq - b.seq);
    for (const e of entries) {
      this.#tail.push(e);
      this.#tailByKey.set(e.key, e);
    }
    if (this.#tailByKey.size > this.#maxTail) {
      // The edge is away for long: forget the frames, the sender reads them from the table.
      const last = this.#tail.at(-1);
      this.#tailBase = Math.max(this.#tailBase, last?.seq ?? 0);
      this.#tail = [];
      this.#tailHead = 0;
      this.#tailByKey.clear();
    }
  }

  /** Events stored and not yet acknowledged by the edge (for metrics). */
  depth(): number {
    return this.#depth;
  }

  /** Counters since start (for metrics and the benchmark). */
  stats(): Readonly<{ stored: number; sent: number; acked: number; nacked: number; inFlight: number }> {
    return { ...this.#stats, inFlight: this.#inFlight.size };
  }

  /** Waits until every emit so far is stored and every ack so far is written. */
  async flush(): Promise<void> {
    await this.#loaded;
    while (this.#writing || this.#deleting || this.#queue.length > 0 || this.#deleteQueue.length > 0) {
      await this.#writing;
      await this.#deleting;
      if (!this.#writing && this.#queue.length > 0) this.#startWrite();
      if (!this.#deleting && this.#deleteQueue.length > 0) this.#startDelete(0);
    }
  }

  /** The link is up (hello-ack): send everything not acknowledged, from the start. */
  start(send: SendFrame): void {
    this.#generation++;
    this.#send = send;
    this.#cursor = 0;
    this.#inFlight.clear();
    this.#pump();
  }

  /** The link is down: stop sending; what was in flight is sent again on the next start. */
  stop(): void {
    this.#generation++;
    this.#send = undefined;
    this.#inFlight.clear();
  }

  /** The edge stored these events (a duplicate is acknowledged too). */
  acked(keys: readonly string[]): void {
    for (const key of keys) {
      const frame = this.#tailByKey.get(key)?.frame;
      if (this.#settle(key)) {
        this.#stats.acked++;
        if (frame !== undefined) for (const listener of this.#ackListeners) this.#notifyAck(listener, frame);
      }
    }
    this.#startDelete();
    this.#pump();
  }

  /**
   * Calls `listener` with the encoded `event` frame of each event the edge acknowledged (stored), for
   * features that keep something until the edge has it (a recording's local file). Events resent from an
   * earlier process are reported too when they are acknowledged from this one's memory.
   */
  onAcked(listener: (frame: string) => void): void {
    this.#ackListeners.push(listener);
  }

  #notifyAck(listener: (frame: string) => void, frame: string): void {
    try {
      listener(frame);
    } catch (err) {
      this.#log.error({ err: String(err) }, "outbox ack listener failed");
    }
  }

  /** The edge can never store this event: drop it, loudly. */
  nacked(key: string, error: string): void {
    if (!this.#settle(key)) return;
    this.#log.error({ key, error }, "edge refused a relay event (nack); dropped from the outbox");
    this.#stats.nacked++;
    this.#startDelete();
    this.#pump();
  }

  /** Marks a row acked or nacked and queues its delete; false when it already was. */
  #settle(key: string, knownSeq?: number): boolean {
    if (this.#settled.has(key)) return false;
    const entry = this.#tailByKey.get(key);
    this.#settled.set(key, knownSeq ?? this.#inFlight.get(key) ?? entry?.seq ?? 0);
    this.#inFlight.delete(key);
    this.#deleteQueue.push(key);
    if (entry) {
      entry.done = true;
      this.#tailByKey.delete(key);
      this.#compactTail();
    }
    return true;
  }

  #compactTail(): void {
    while (this.#tailHead < this.#tail.length && this.#tail[this.#tailHead]?.done) this.#tailHead++;
    if (this.#tailHead >= this.#tail.length) {
      this.#tail = [];
      this.#tailHead = 0;
    } else if (this.#tailHead > 1024 && this.#tailHead * 2 > this.#tail.length) {
      this.#tail = this.#tail.slice(this.#tailHead);
      this.#tailHead = 0;
    }
  }

  /** Deletes settled rows in batches: a short delay gathers the acks of a burst into one write. */
  #startDelete(delayMs = 10): void {
    if (this.#deleting || this.#deleteQueue.length === 0) return;
    this.#deleting = (async () => {
      await new Promise<void>((r) => setTimeout(r, delayMs));
      while (this.#deleteQueue.length > 0) {
        const keys = this.#deleteQueue.splice(0, this.#chunk);
        // By primary key where the seq is known (cheaper than the key's index), by key otherwise.
        const seqs: number[] = [];
        const bare: string[] = [];
        for (const k of keys) {
          const seq = this.#settled.get(k) ?? 0;
          if (seq > 0) seqs.push(seq);
          else bare.push(k);
        }
        const statements: InStatement[] = [];
        if (seqs.length > 0) {
          statements.push({
            sql: `DELETE FROM relay_outbox WHERE seq IN (${seqs.map(() => "?").join(", ")})`,
            args: seqs,
          });
        }
        if (bare.length > 0) {
          statements.push({
            sql: `DELETE FROM relay_outbox WHERE idempotency_key IN (${bare.map(() => "?").join(", ")})`,
            args: bare,
          });
        }
        try {
          const results = await this.#db.$client.batch(statements, "write");
          for (const rs of results) this.#depth -= rs.rowsAffected;
        } catch (err) {
          // The rows stay; they are sent again after the next reconnect and acked again.
          this.#log.error({ err, keys: keys.length }, "relay outbox delete failed");
        }
        for (const k of keys) this.#settled.delete(k);
      }
    })().finally(() => {
      this.#deleting = undefined;
      this.#startDelete();
    });
  }

  /**
   * Fills the in-flight window in seq order: rows older than the tail from the table,
   * then the tail. One fill at a time, and at most one per turn of the event loop, so
   * a burst of acks costs one pass.
   */
  #pump(): void {
    if (!this.#send) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void new Promise<void>((r) => setImmediate(r))
      .then(() => this.#fill())
      .catch((err: unknown) => this.#log.error({ err }, "relay outbox read failed"))
      .finally(() => {
        this.#pumping = false;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.#pump();
        }
      });
  }

  async #fill(): Promise<void> {
    await this.#loaded;
    while (this.#send && this.#inFlight.size < this.#window && this.#cursor < this.#tailBase) {
      if (!(await this.#fillFromTable())) return;
    }
    this.#fillFromTail();
  }

  /** One read of rows older than the tail; false when the connection changed meanwhile. */
  async #fillFromTable(): Promise<boolean> {
    const generation = this.#generation;
    const room = this.#window - this.#inFlight.size;
    // Settled rows not yet deleted come back from the read: read that many more so they do not starve the window.
    let ahead = 0;
    for (const seq of this.#settled.values()) if (seq === 0 || seq > this.#cursor) ahead++;
    const limit = room + ahead;
    const rs = await this.#db.$client.execute({
      sql: "SELECT seq, idempotency_key, event, created_at FROM relay_outbox WHERE acked_at IS NULL AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      args: [this.#cursor, this.#tailBase, limit],
    });
    const send = this.#send;
    if (generation !== this.#generation || !send) return false;
    for (const row of rs.rows) {
      if (this.#inFlight.size >= this.#window) return true;
      const seq = Number(row.seq);
      const key = String(row.idempotency_key);
      this.#cursor = seq;
      if (this.#settled.has(key)) continue;
      const frame = this.#storedFrame(seq, key, row.event, Number(row.created_at));
      if (!frame) {
        // Unreadable row (written by something else, or corrupted): drop it rather than block the outbox.
        this.#log.error({ seq, key }, "relay outbox row is not a v1 event; dropped");
        this.#settle(key, seq);
        this.#startDelete();
        continue;
      }
      if (!send(frame)) return false;
      this.#inFlight.set(key, seq);
      this.#stats.sent++;
    }
    // Fewer rows than asked for: nothing older than the tail is left.
    if (rs.rows.length < limit) this.#cursor = Math.max(this.#cursor, this.#tailBase);
    return true;
  }

  #fillFromTail(): void {
    const send = this.#send;
    if (!send) return;
    // First live entry past the cursor: binary search (seqs increase along the tail).
    let lo = this.#tailHead;
    let hi = this.#tail.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#tail[mid]?.seq ?? 0) <= this.#cursor) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#tail.length && this.#inFlight.size < this.#window; i++) {
      const entry = this.#tail[i];
      if (!entry) break;
      this.#cursor = entry.seq;
      if (entry.done || this.#settled.has(entry.key)) continue;
      if (!send(entry.frame)) return;
      this.#inFlight.set(entry.key, entry.seq);
      this.#stats.sent++;
    }
  }

  /** The frame of a row read from the table; undefined when it is not a v1 outbox event. */
  #storedFrame(seq: number, key: string, stored: unknown, at: number): string | undefined {
    if (typeof stored !== "string") return undefined;
    let doc: unknown;
    try {
      doc = JSON.parse(stored);
    } catch {
      return undefined;
    }
    // The edge validates the event itself (and nacks what it cannot store); here only the envelope.
    if (typeof doc !== "object" || doc === null || !("v" in doc) || doc.v !== 1 || !("event" in doc))
      return undefined;
    if (typeof doc.event !== "object" || doc.event === null) return undefined;
    return eventFrame(seq, key, at, JSON.stringify(doc.event));
  }
}
