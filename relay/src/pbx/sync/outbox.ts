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
 */

import {
  type Db,
  encodeMessage,
  type RelayEvent,
  type RelayMessage,
  relayOutboxEventSchema,
} from "@gosip/drizzle";
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
}

type EventFrame = Extract<RelayMessage, { type: "event" }>;
/** Sends one frame on the live link; false when the link is gone. */
export type SendFrame = (frame: string) => boolean;

interface PendingEmit {
  key: string;
  event: RelayEvent;
  at: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Outbox implements EventSink {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #window: number;
  readonly #chunk: number;

  #queue: PendingEmit[] = [];
  #writing: Promise<void> | undefined;
  #depth = 0;
  #depthLoaded: Promise<void>;

  /** The live link's sender, or undefined while disconnected. */
  #send: SendFrame | undefined;
  /** Generation of the current connection: a read that finishes after a reconnect is discarded. */
  #generation = 0;
  /** Highest seq sent on this connection. */
  #cursor = 0;
  /** Sent on this connection and not yet acknowledged: key → seq. */
  #inFlight = new Map<string, number>();
  #pumping = false;
  #pumpAgain = false;
  /** Acked or nacked, their delete not yet written: never sent again meanwhile. */
  #settled = new Set<string>();
  #deleteQueue: string[] = [];
  #deleting: Promise<void> | undefined;

  #stats = { stored: 0, sent: 0, acked: 0, nacked: 0 };

  constructor(options: OutboxOptions) {
    this.#db = options.db;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#window = options.window ?? 100;
    this.#chunk = options.insertChunk ?? 500;
    this.#depthLoaded = this.#loadDepth().catch((err: unknown) => {
      this.#log.error({ err }, "relay outbox: could not count stored events");
    });
  }

  async #loadDepth(): Promise<void> {
    const rs = await this.#db.$client.execute(
      "SELECT count(*) AS n FROM relay_outbox WHERE acked_at IS NULL",
    );
    this.#depth += Number(rs.rows[0]?.n ?? 0);
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
        event: checked.data.event,
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
      await this.#depthLoaded;
      // Let the emits of this turn of the event loop join the write.
      await new Promise<void>((r) => setImmediate(r));
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          await this.#insert(batch);
          this.#depth += batch.length;
          this.#stats.stored += batch.length;
          for (const p of batch) p.resolve();
        } catch (err) {
          this.#log.error({ err, events: batch.length }, "relay outbox write failed");
          for (const p of batch) p.reject(err);
        }
        this.#pump();
      }
    })().finally(() => {
      this.#writing = undefined;
      this.#startWrite();
    });
  }

  async #insert(batch: readonly PendingEmit[]): Promise<void> {
    const statements: InStatement[] = [];
    for (let i = 0; i < batch.length; i += this.#chunk) {
      const part = batch.slice(i, i + this.#chunk);
      const args: (string | number)[] = [];
      for (const p of part) args.push(p.key, JSON.stringify({ v: 1, event: p.event }), p.at);
      statements.push({
        sql: `INSERT INTO relay_outbox (idempotency_key, event, created_at) VALUES ${part.map(() => "(?, ?, ?)").join(", ")}`,
        args,
      });
    }
    await this.#db.$client.batch(statements, "write");
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
    await this.#depthLoaded;
    while (this.#writing || this.#deleting || this.#queue.length > 0 || this.#deleteQueue.length > 0) {
      await this.#writing;
      await this.#deleting;
      if (!this.#writing && this.#queue.length > 0) this.#startWrite();
      if (!this.#deleting && this.#deleteQueue.length > 0) this.#startDelete();
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
      if (this.#settled.has(key)) continue;
      this.#inFlight.delete(key);
      this.#settled.add(key);
      this.#deleteQueue.push(key);
      this.#stats.acked++;
    }
    this.#startDelete();
    this.#pump();
  }

  /** The edge can never store this event: drop it, loudly. */
  nacked(key: string, error: string): void {
    if (this.#settled.has(key)) return;
    this.#log.error({ key, error }, "edge refused a relay event (nack); dropped from the outbox");
    this.#inFlight.delete(key);
    this.#settled.add(key);
    this.#deleteQueue.push(key);
    this.#stats.nacked++;
    this.#startDelete();
    this.#pump();
  }

  #startDelete(): void {
    if (this.#deleting || this.#deleteQueue.length === 0) return;
    this.#deleting = (async () => {
      await new Promise<void>((r) => setImmediate(r));
      while (this.#deleteQueue.length > 0) {
        const keys = this.#deleteQueue.splice(0, this.#chunk);
        try {
          const rs = await this.#db.$client.execute({
            sql: `DELETE FROM relay_outbox WHERE idempotency_key IN (${keys.map(() => "?").join(", ")})`,
            args: keys,
          });
          this.#depth -= rs.rowsAffected;
          for (const k of keys) this.#settled.delete(k);
        } catch (err) {
          // The rows stay; they are sent again after the next reconnect and acked again.
          this.#log.error({ err, keys: keys.length }, "relay outbox delete failed");
          for (const k of keys) this.#settled.delete(k);
        }
      }
    })().finally(() => {
      this.#deleting = undefined;
      this.#startDelete();
    });
  }

  /** Fills the in-flight window from the table, in seq order. One read at a time. */
  #pump(): void {
    if (!this.#send) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void this.#fill()
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
    await this.#depthLoaded;
    for (;;) {
      const generation = this.#generation;
      const room = this.#window - this.#inFlight.size;
      if (!this.#send || room <= 0) return;
      const rs = await this.#db.$client.execute({
        sql: "SELECT seq, idempotency_key, event, created_at FROM relay_outbox WHERE acked_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
        // Settled rows not yet deleted come back from the read; over-read so they do not starve the window.
        args: [this.#cursor, room + this.#settled.size],
      });
      const send = this.#send;
      if (generation !== this.#generation || !send) return;
      let sent = 0;
      for (const row of rs.rows) {
        if (this.#inFlight.size >= this.#window) break;
        const seq = Number(row.seq);
        const key = String(row.idempotency_key);
        this.#cursor = seq;
        if (this.#settled.has(key)) continue;
        const frame = this.#frame(seq, key, row.event, Number(row.created_at));
        if (!frame) {
          // Unreadable row (should not happen: validated on emit): drop it rather than block the outbox.
          this.#log.error({ seq, key }, "relay outbox row does not validate; dropped");
          this.#settled.add(key);
          this.#deleteQueue.push(key);
          this.#startDelete();
          continue;
        }
        if (!send(encodeMessage<RelayMessage>(frame))) return;
        this.#inFlight.set(key, seq);
        this.#stats.sent++;
        sent++;
      }
      if (rs.rows.length === 0 || sent === 0) return;
    }
  }

  #frame(seq: number, key: string, stored: unknown, at: number): EventFrame | undefined {
    let json: unknown;
    try {
      json = typeof stored === "string" ? JSON.parse(stored) : undefined;
    } catch {
      return undefined;
    }
    const r = relayOutboxEventSchema.safeParse(json);
    if (!r.success) return undefined;
    return { type: "event", seq, key, at: new Date(at).toISOString(), event: r.data.event };
  }
}
