// relay_registrations as the registrar's write-behind store: the registrar answers from memory and queues
// each change here; changes to the same contact coalesce and are written in one batch (one transaction)
// every `flushMs`, so a REGISTER never waits for the disk. `close()` writes what is queued (clean shutdown
// loses nothing); after a crash at most the last `flushMs` of refreshes are lost, and phones re-register.

import { randomUUID } from "node:crypto";
import { type Db, relayRegistrations } from "@gosip/drizzle";
import type { InStatement } from "@libsql/client";
import type { Logger } from "pino";
import type { Contact } from "../context.ts";

/** A contact as the registrar holds it (times in ms). Queued by reference: the flush writes its latest state. */
export type StoredContact = Omit<Contact, "expiresAt" | "lastSeenAt"> & {
  expiresAt: number;
  lastSeenAt: number;
};

type Pending =
  | { op: "upsert"; contact: StoredContact }
  | { op: "delete"; deviceId: string; contactUri: string };

const key = (deviceId: string, contactUri: string): string => `${deviceId}\u0000${contactUri}`;

export class RegistrationStore {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly flushMs = 100,
  ) {}

  /** Every stored contact (expired ones included: the registrar decides). */
  async load(): Promise<Contact[]> {
    const rows = await this.db.select().from(relayRegistrations);
    return rows.map((r) => ({
      deviceId: r.deviceId,
      contactUri: r.contactUri,
      sourceAddress: r.sourceAddress,
      sourcePort: r.sourcePort,
      transport: r.transport,
      userAgent: r.userAgent,
      instanceId: r.instanceId,
      callId: r.callId,
      cseq: r.cseq,
      expiresAt: r.expiresAt.toISOString(),
      lastSeenAt: r.lastSeenAt.toISOString(),
    }));
  }

  upsert(contact: StoredContact): void {
    this.queue(key(contact.deviceId, contact.contactUri), { op: "upsert", contact });
  }

  remove(deviceId: string, contactUri: string): void {
    this.queue(key(deviceId, contactUri), { op: "delete", deviceId, contactUri });
  }

  /** Writes everything queued so far; resolves when it is in the database. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    if (batch.length > 0) this.flushing = this.flushing.then(() => this.write(batch));
    return this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private queue(k: string, p: Pending): void {
    this.pending.delete(k); // keep insertion order = order of the last change
    this.pending.set(k, p);
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  /** Raw SQL (the relay's hot writes; the table is defined in @gosip/drizzle's relay-local.ts). */
  private statement(p: Pending): InStatement {
    if (p.op === "delete")
      return {
        sql: "DELETE FROM relay_registrations WHERE device_id = ? AND contact_uri = ?",
        args: [p.deviceId, p.contactUri],
      };
    const c = p.contact;
    return {
      sql:
        "INSERT INTO relay_registrations (id, device_id, contact_uri, source_address, source_port, transport, " +
        "user_agent, instance_id, call_id, cseq, expires_at, last_seen_at, created_at) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (device_id, contact_uri) DO UPDATE SET source_address = excluded.source_address, " +
        "source_port = excluded.source_port, transport = excluded.transport, user_agent = excluded.user_agent, " +
        "instance_id = excluded.instance_id, call_id = excluded.call_id, cseq = excluded.cseq, " +
        "expires_at = excluded.expires_at, last_seen_at = excluded.last_seen_at",
      args: [
        randomUUID(),
        c.deviceId,
        c.contactUri,
        c.sourceAddress,
        c.sourcePort,
        c.transport,
        c.userAgent,
        c.instanceId,
        c.callId,
        c.cseq,
        c.expiresAt,
        c.lastSeenAt,
        Date.now(),
      ],
    };
  }

  private async write(batch: Pending[]): Promise<void> {
    const client = this.db.$client;
    try {
      await client.batch(
        batch.map((p) => this.statement(p)),
        "write",
      );
      return;
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message, size: batch.length },
        "registration batch failed, writing one by one",
      );
    }
    // one bad row (e.g. its device was deleted meanwhile) must not lose the others
    for (const p of batch) {
      try {
        await client.execute(this.statement(p));
      } catch (err) {
        this.log.error({ err: (err as Error).message, op: p.op }, "registration not stored");
      }
    }
  }
}
