// Scanner defence: the first srf middleware in front of every handler, and the sink of the auth step's
// failure reports.
//
// Per request (in this order, all synchronous and in memory):
//   1. trusted networks (settings().trustedNetworks plus the relay's own list) skip everything below except
//      the scanner filter, and are never banned or rate limited;
//   2. a banned source is dropped silently;
//   3. a known scanner User-Agent is dropped silently and its source banned (reason "scanner");
//   4. a token bucket per source address (default 20 requests/s, burst 40): over it, dropped silently; a
//      source that keeps hammering (default 400 drops within a minute) is banned (reason "rate_limit").
// "Dropped silently" means the app never answers. The engine (like drachtio-server) keeps the server
// transaction and absorbs retransmissions, then forgets it (non-INVITE after 32 s, INVITE after 300 s);
// srf itself tracks an unanswered INVITE until a final response, so for a dropped INVITE we remove srf's
// entry here (otherwise every scanner INVITE's Call-ID would stay in memory for good).
//
// Auth failures (reported by the auth middleware):
//   - per source: N failures within the window (default 10 in 60 s) → ban; escalating per repeat offence
//     (5 min, ×4 each time, at most 24 h; the level is remembered for a day after a ban ends);
//   - per device (extension): failures from all sources within 10 min; at 20 the extension counts as under
//     attack for an hour: sources failing on it are banned after 3 failures, and a `security.alert` goes to
//     the edge (at most one per extension per 15 min). The device itself is never locked: a correct
//     answer always authenticates, and clears that source's failure count.
// Bans are rows of relay_bans (survive a restart), emitted as ban.added / ban.lifted events, listed with
// `listBans()`, and lifted by the edge's `ban.lift` command.
import { type Db, relayBans, type SyncDevice } from "@gosip/drizzle";
import type { Logger } from "pino";
import type { AuthReporter, Caller, SrfMiddleware, SrfRequest } from "../auth/middleware.ts";
import type { CommandBus, DeviceDirectory, EventSink } from "../context.ts";
import { CommandError } from "../context.ts";
import { NetworkSet, unmapped } from "./networks.ts";
import { isScannerAgent } from "./scanners.ts";

export type BanReason = "auth_failures" | "rate_limit" | "scanner";

export interface Ban {
  address: string;
  level: number;
  reason: BanReason;
  failures: number;
  bannedAt: Date;
  until: Date;
}

export interface DefenceOptions {
  /** Networks (CIDR) trusted in addition to the edge's settings().trustedNetworks (relay configuration). */
  trustedNetworks?: readonly string[];
  rate?: { perSecond: number; burst: number; banAfterDrops?: number };
  failures?: { threshold: number; windowMs: number; underAttackThreshold: number };
  ban?: { baseMs: number; factor: number; maxMs: number; rememberMs: number };
  extension?: { threshold: number; windowMs: number; attackMs: number; alertIntervalMs: number };
  /** How often expired bans are lifted and idle counters dropped, ms. */
  sweepIntervalMs?: number;
}

export interface DefenceDeps {
  log: Logger;
  db: Db;
  directory: DeviceDirectory;
  events: EventSink;
  commands: CommandBus;
  now(): number;
}

interface Bucket {
  tokens: number;
  at: number;
  drops: number;
  dropsSince: number;
}

interface BanState extends Ban {
  /** ban.lifted was emitted for this ban's end (or it is still active). */
  liftNotified: boolean;
}

interface ExtensionState {
  failures: number[];
  sources: Set<string>;
  underAttackUntil: number;
  lastAlertAt: number;
}

/** Most per-source entries kept (rate buckets, failure lists); beyond it the oldest are forgotten. */
const MAX_TRACKED_SOURCES = 50_000;
/**
 * Most bans kept. A flood with spoofed UDP source addresses (a scanner User-Agent needs no round trip) must
 * not turn into one database write per packet: beyond this the requests are still dropped, just not banned.
 */
const MAX_BANS = 10_000;

export class ScannerDefence implements AuthReporter {
  private readonly opts: Required<Omit<DefenceOptions, "trustedNetworks">>;
  private readonly buckets = new Map<string, Bucket>();
  private readonly failures = new Map<string, number[]>();
  private readonly extensions = new Map<string, ExtensionState>();
  private readonly bans = new Map<string, BanState>();
  private trusted = new NetworkSet([]);
  private trustedKey = "\u0000";
  private writes: Promise<void> = Promise.resolve();
  private sweeper: NodeJS.Timeout | undefined;
  private banTableFull = false;

  constructor(
    private readonly deps: DefenceDeps,
    private readonly options: DefenceOptions = {},
  ) {
    this.opts = {
      rate: { banAfterDrops: 400, ...(options.rate ?? { perSecond: 20, burst: 40 }) },
      failures: options.failures ?? { threshold: 10, windowMs: 60_000, underAttackThreshold: 3 },
      ban: options.ban ?? {
        baseMs: 5 * 60_000,
        factor: 4,
        maxMs: 24 * 3_600_000,
        rememberMs: 24 * 3_600_000,
      },
      extension: options.extension ?? {
        threshold: 20,
        windowMs: 10 * 60_000,
        attackMs: 3_600_000,
        alertIntervalMs: 15 * 60_000,
      },
      sweepIntervalMs: options.sweepIntervalMs ?? 5_000,
    };
    this.refreshTrusted();
    deps.directory.onChange((c) => {
      if (c.settingsChanged) this.refreshTrusted();
    });
  }

  /** Loads the persisted bans, registers the `ban.lift` command, starts the sweeper. */
  async start(): Promise<void> {
    const rows = await this.deps.db.select().from(relayBans);
    const now = this.deps.now();
    for (const r of rows) {
      const until = r.until.getTime();
      // a ban that ended while the relay was down has not been reported as lifted yet
      const liftNotified = until > now || r.updatedAt.getTime() >= until;
      this.bans.set(r.address, {
        address: r.address,
        level: r.level,
        reason: r.reason,
        failures: r.failures,
        bannedAt: r.bannedAt,
        until: r.until,
        liftNotified,
      });
    }
    this.deps.commands.handle("ban.lift", async (command) => {
      if (!(await this.lift(command.address))) throw new CommandError(`no active ban for ${command.address}`);
    });
    this.sweep();
    this.sweeper = setInterval(() => this.sweep(), this.opts.sweepIntervalMs);
    this.sweeper.unref();
  }

  /** Stops the sweeper and waits until every ban change is written. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.writes;
  }

  /** The middleware to install first (`srf.use(defence.middleware())`). */
  middleware(): SrfMiddleware[] {
    const filter: SrfMiddleware = (req, _res, next) => {
      if (this.admit(req)) next();
      else forgetDroppedInvite(req);
    };
    return [filter];
  }

  /** Decides whether a request goes on (true) or is dropped without an answer (false). */
  admit(req: SrfRequest): boolean {
    const source = unmapped(req.source_address);
    const trusted = this.trusted.has(source);
    if (!trusted && this.isBanned(source)) return false;
    if (isScannerAgent(req.get("User-Agent"))) {
      if (!trusted) this.ban(source, "scanner", 0);
      return false;
    }
    if (trusted) return true;
    return this.take(source);
  }

  isTrusted(address: string): boolean {
    return this.trusted.has(unmapped(address));
  }

  isBanned(address: string): boolean {
    const ban = this.bans.get(unmapped(address));
    return ban !== undefined && ban.until.getTime() > this.deps.now();
  }

  /** Active bans, newest first. */
  listBans(): Ban[] {
    const now = this.deps.now();
    return [...this.bans.values()]
      .filter((b) => b.until.getTime() > now)
      .sort((a, b) => b.bannedAt.getTime() - a.bannedAt.getTime())
      .map(({ liftNotified: _, ...ban }) => ban);
  }

  /** Lifts an active ban (admin); forgets its escalation level too. False when the address is not banned. */
  async lift(address: string): Promise<boolean> {
    const key = unmapped(address.trim());
    const ban = this.bans.get(key);
    if (ban === undefined || ban.until.getTime() <= this.deps.now()) return false;
    this.bans.delete(key);
    this.failures.delete(key);
    this.buckets.delete(key);
    this.write(async () => {
      await this.deps.db.$client.execute({ sql: "DELETE FROM relay_bans WHERE address = ?", args: [key] });
    });
    this.emit({ kind: "ban.lifted", address: key, by: "admin" });
    await this.writes;
    return true;
  }

  authFailed(
    source: string,
    attempt: { username: string | undefined; device: SyncDevice | undefined },
  ): void {
    const address = unmapped(source);
    if (this.trusted.has(address)) return;
    const now = this.deps.now();
    const { threshold, windowMs, underAttackThreshold } = this.opts.failures;
    let limit = threshold;
    if (attempt.device !== undefined && this.extensionFailed(attempt.device, address, now))
      limit = underAttackThreshold;
    const list = this.failures.get(address) ?? [];
    while (list.length > 0 && (list[0] ?? 0) <= now - windowMs) list.shift();
    list.push(now);
    this.failures.delete(address); // re-insert: the map stays ordered by last activity
    this.failures.set(address, list);
    this.bound(this.failures);
    if (list.length >= limit) {
      this.failures.delete(address);
      this.ban(address, "auth_failures", list.length);
    }
  }

  authSucceeded(source: string, _caller: Caller): void {
    this.failures.delete(unmapped(source));
  }

  /** Counts a failure on a device; true while the device is under attack (the source gets the tight limit). */
  private extensionFailed(device: SyncDevice, source: string, now: number): boolean {
    const { threshold, windowMs, attackMs, alertIntervalMs } = this.opts.extension;
    let st = this.extensions.get(device.id);
    if (st === undefined) {
      st = { failures: [], sources: new Set(), underAttackUntil: 0, lastAlertAt: Number.NEGATIVE_INFINITY };
      this.extensions.set(device.id, st);
    }
    while (st.failures.length > 0 && (st.failures[0] ?? 0) <= now - windowMs) st.failures.shift();
    st.failures.push(now);
    if (st.sources.size < 20) st.sources.add(source);
    if (st.failures.length >= threshold) {
      st.underAttackUntil = now + attackMs;
      if (now - st.lastAlertAt >= alertIntervalMs) {
        st.lastAlertAt = now;
        this.emit({
          kind: "security.alert",
          alert: "extension_under_attack",
          deviceId: device.id,
          failures: st.failures.length,
          sources: [...st.sources],
        });
        this.deps.log.warn({ deviceId: device.id, failures: st.failures.length }, "extension under attack");
      }
    }
    // keep at most `threshold` timestamps: enough to know the window is full
    if (st.failures.length > threshold) st.failures.splice(0, st.failures.length - threshold);
    return st.underAttackUntil > now;
  }

  private take(source: string): boolean {
    const { perSecond, burst, banAfterDrops = 400 } = this.opts.rate;
    const now = this.deps.now();
    let b = this.buckets.get(source);
    if (b === undefined) {
      b = { tokens: burst, at: now, drops: 0, dropsSince: now };
      this.buckets.set(source, b);
      this.bound(this.buckets);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) * perSecond) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    if (now - b.dropsSince > 60_000) {
      b.drops = 0;
      b.dropsSince = now;
    }
    if (++b.drops >= banAfterDrops) this.ban(source, "rate_limit", 0);
    return false;
  }

  private ban(address: string, reason: BanReason, failures: number): void {
    const now = this.deps.now();
    const prev = this.bans.get(address);
    if (prev !== undefined && prev.until.getTime() > now) return;
    if (prev === undefined && this.bans.size >= MAX_BANS) {
      if (!this.banTableFull)
        this.deps.log.warn({ bans: this.bans.size }, "ban table full: dropping without banning");
      this.banTableFull = true;
      return;
    }
    this.banTableFull = false;
    const { baseMs, factor, maxMs, rememberMs } = this.opts.ban;
    const level = prev !== undefined && now - prev.until.getTime() < rememberMs ? prev.level + 1 : 1;
    const duration = Math.min(maxMs, baseMs * factor ** (level - 1));
    const ban: BanState = {
      address,
      level: Math.min(level, 100),
      reason,
      failures,
      bannedAt: new Date(now),
      until: new Date(now + duration),
      liftNotified: false,
    };
    this.bans.set(address, ban);
    this.buckets.delete(address);
    this.deps.log.warn(
      { address, reason, level: ban.level, until: ban.until.toISOString() },
      "source banned",
    );
    const row = {
      address,
      level: ban.level,
      reason,
      failures,
      bannedAt: ban.bannedAt,
      until: ban.until,
      updatedAt: new Date(now),
    };
    this.write(async () => {
      await this.deps.db
        .insert(relayBans)
        .values(row)
        .onConflictDoUpdate({ target: relayBans.address, set: row });
    });
    this.emit({
      kind: "ban.added",
      address,
      until: ban.until.toISOString(),
      level: ban.level,
      reason,
      failures,
    });
  }

  /** Lifts bans that ran out, forgets old escalation levels and idle counters. */
  private sweep(): void {
    const now = this.deps.now();
    for (const ban of [...this.bans.values()]) {
      const until = ban.until.getTime();
      if (until > now) continue;
      if (!ban.liftNotified) {
        ban.liftNotified = true;
        this.emit({ kind: "ban.lifted", address: ban.address, by: "expired" });
        const stamp = new Date(Math.max(now, until));
        this.write(async () => {
          await this.deps.db.$client.execute({
            sql: "UPDATE relay_bans SET updated_at = ? WHERE address = ?",
            args: [stamp.getTime(), ban.address],
          });
        });
      }
      if (now - until >= this.opts.ban.rememberMs) {
        this.bans.delete(ban.address);
        this.write(async () => {
          await this.deps.db.$client.execute({
            sql: "DELETE FROM relay_bans WHERE address = ?",
            args: [ban.address],
          });
        });
      }
    }
    const { perSecond, burst } = this.opts.rate;
    for (const [k, b] of this.buckets)
      if (b.tokens + ((now - b.at) * perSecond) / 1000 >= burst) this.buckets.delete(k);
    const windowMs = this.opts.failures.windowMs;
    for (const [k, list] of this.failures)
      if ((list[list.length - 1] ?? 0) <= now - windowMs) this.failures.delete(k);
    for (const [k, st] of this.extensions)
      if (
        st.underAttackUntil <= now &&
        (st.failures[st.failures.length - 1] ?? 0) <= now - this.opts.extension.windowMs
      )
        this.extensions.delete(k);
  }

  private refreshTrusted(): void {
    const list = [
      ...(this.options.trustedNetworks ?? []),
      ...(this.deps.directory.settings()?.trustedNetworks ?? []),
    ];
    const key = list.join(",");
    if (key === this.trustedKey) return;
    this.trustedKey = key;
    this.trusted = new NetworkSet(list);
  }

  private bound<V>(map: Map<string, V>): void {
    if (map.size <= MAX_TRACKED_SOURCES) return;
    for (const k of map.keys()) {
      map.delete(k);
      if (map.size <= MAX_TRACKED_SOURCES) break;
    }
  }

  private write(op: () => Promise<void>): void {
    this.writes = this.writes.then(op).catch((err: unknown) => {
      this.deps.log.error({ err: (err as Error).message }, "writing relay_bans failed");
    });
  }

  private emit(event: Parameters<EventSink["emit"]>[0]): void {
    this.deps.events.emit(event).catch((err: unknown) => {
      this.deps.log.error({ err: (err as Error).message, kind: event.kind }, "event not stored");
    });
  }
}

/**
 * srf keeps every incoming INVITE in its agent's `pendingNetworkInvites` (by Call-ID) until a final response
 * or a CANCEL; a dropped INVITE gets neither, so remove it there. These are drachtio-srf internals (v5):
 * when they are not found nothing happens.
 */
function forgetDroppedInvite(req: SrfRequest): void {
  if (req.method !== "INVITE") return;
  const r = req as unknown as {
    agent?: { mapServer?: Map<unknown, { pendingNetworkInvites?: Map<string, unknown> }> };
    socket?: unknown;
  };
  r.agent?.mapServer?.get(r.socket)?.pendingNetworkInvites?.delete(req.get("Call-ID"));
}
