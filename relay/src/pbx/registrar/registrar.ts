// The registrar (RFC 3261 §10.3) and the location service built on it. Install after the auth middleware:
//
//   srf.use("register", registrar.middleware());     // req.locals.caller is set by authChain
//
// - The AOR user (To) must be the digest username, i.e. the device's sipUsername: else 403.
// - Several contacts per device (at most MAX_CONTACTS; the oldest goes). Expires from the contact's
//   `expires` parameter, else the Expires header, else 3600; clamped to [60, 3600]; 0 removes the contact,
//   `Contact: *` with Expires 0 removes all. UDP phones behind NAT (see target.ts) get at most
//   `options.natExpires` and, when `options.keepaliveIntervalMs` > 0, an OPTIONS every interval to their
//   source address; KEEPALIVE_MISSES unanswered in a row → the contact is offline: removed, registration.down.
// - The 200 lists every current contact of the device with its remaining expiry (and a Date header).
// - registration.up for a new contact or a changed one (source, transport, user agent, instance), and again
//   when a refresh moved its expiry by more than half the granted interval (so the edge's expiresAt and
//   lastSeenAt stay current at a bounded rate); registration.down on unregister, expiry, keepalive failure
//   ("offline") and when the device is removed or disabled in the edge ("removed").
// The hot path is synchronous and in memory; relay_registrations is written behind (store.ts), loaded at
// start (expired rows dropped), so registrations survive a restart.

import type { Db, RelayEvent, SipTransport, SyncDevice } from "@gosip/drizzle";
import type Srf from "drachtio-srf";
import type { Logger } from "pino";
import { callerOf, type SrfMiddleware, type SrfRequest, type SrfResponse } from "../auth/middleware.ts";
import type { Contact, DeviceDirectory, EventSink, LocationService, PbxOptions } from "../context.ts";
import { RegistrationStore } from "./store.ts";
import { isBehindNat, sourceHop } from "./target.ts";

export const MIN_EXPIRES = 60;
export const MAX_EXPIRES = 3600;
export const DEFAULT_EXPIRES = 3600;
/** Contacts one device may hold; a phone with more is misbehaving (or something is pretending to be it). */
export const MAX_CONTACTS = 10;
export const KEEPALIVE_MISSES = 3;

export interface RegistrarDeps {
  log: Logger;
  db: Db;
  directory: DeviceDirectory;
  events: EventSink;
  options: Pick<PbxOptions, "natExpires" | "keepaliveIntervalMs">;
  now(): number;
}

export interface RegistrarOptions {
  /** How long to wait for an answer to a keepalive OPTIONS, ms (default: the interval, at most 8 s). */
  keepaliveTimeoutMs?: number;
  /** How often expiries and keepalives are checked, ms (default 1000). */
  tickMs?: number;
  /** Write-behind delay of relay_registrations, ms (default 100). */
  flushMs?: number;
}

interface Binding {
  deviceId: string;
  contactUri: string;
  sourceAddress: string;
  sourcePort: number;
  transport: SipTransport;
  userAgent: string | null;
  instanceId: string | null;
  callId: string | null;
  cseq: number | null;
  expiresAt: number;
  lastSeenAt: number;
  grantedSeconds: number;
  natted: boolean;
  /** expiresAt last reported to the edge. */
  reportedExpiresAt: number;
  misses: number;
  nextKeepaliveAt: number;
  keepaliveInFlight: boolean;
  /** Set when the binding went away, so late keepalive answers are ignored. */
  gone: boolean;
}

type RequestFn = (
  uri: string,
  opts: { method: string; proxy?: string; headers?: Record<string, string> },
  callback: (
    err: unknown,
    req: { on(event: "response", cb: (res: { status: number }) => void): void },
  ) => void,
) => void;

const TRANSPORTS: ReadonlySet<string> = new Set(["udp", "tcp", "tls", "ws", "wss"]);

function transportOf(req: SrfRequest): SipTransport {
  const t = (req.protocol ?? "udp").toLowerCase();
  return (TRANSPORTS.has(t) ? t : "udp") as SipTransport;
}

function parseExpires(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = Number.parseInt(value.trim(), 10);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function unquote(v: string): string {
  const t = v.trim();
  return t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

function userOf(uri: string): string | undefined {
  const m = /^sips?:([^@;?]+)@/i.exec(uri.trim());
  if (!m?.[1]) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

export class Registrar implements LocationService {
  private readonly byDevice = new Map<string, Map<string, Binding>>();
  private readonly snapshots = new Map<string, readonly Contact[]>();
  private readonly dirty = new Set<string>();
  private readonly store: RegistrationStore;
  private readonly keepaliveTimeoutMs: number;
  private timer: NodeJS.Timeout | undefined;
  private srf: Srf | undefined;

  constructor(
    private readonly deps: RegistrarDeps,
    private readonly opts: RegistrarOptions = {},
  ) {
    this.store = new RegistrationStore(deps.db, deps.log, opts.flushMs ?? 100);
    const interval = deps.options.keepaliveIntervalMs;
    this.keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? Math.max(100, Math.min(interval, 8000));
    deps.directory.onChange((c) => {
      for (const id of c.removed) this.dropDevice(id, "removed");
      for (const d of c.upserted) if (!d.enabled) this.dropDevice(d.id, "removed");
    });
  }

  /** Loads stored registrations (drops expired ones and those of devices the edge removed), starts timers. */
  async start(srf?: Srf): Promise<void> {
    if (srf) this.srf = srf;
    const now = this.deps.now();
    const haveConfig = this.deps.directory.settings() !== undefined;
    for (const c of await this.store.load()) {
      const expiresAt = Date.parse(c.expiresAt);
      const device = this.deps.directory.byId(c.deviceId);
      if (expiresAt <= now || (haveConfig && (device === undefined || !device.enabled))) {
        this.store.remove(c.deviceId, c.contactUri);
        this.emit({
          kind: "registration.down",
          deviceId: c.deviceId,
          contactUri: c.contactUri,
          reason: expiresAt <= now ? "expired" : "removed",
        });
        continue;
      }
      const natted = c.transport === "udp" && isBehindNat(c);
      const b: Binding = {
        ...c,
        expiresAt,
        lastSeenAt: Date.parse(c.lastSeenAt),
        grantedSeconds: Math.max(MIN_EXPIRES, Math.round((expiresAt - now) / 1000)),
        natted,
        reportedExpiresAt: expiresAt,
        misses: 0,
        nextKeepaliveAt: now + this.deps.options.keepaliveIntervalMs,
        keepaliveInFlight: false,
        gone: false,
      };
      this.bindings(c.deviceId).set(c.contactUri, b);
      this.changed(c.deviceId);
    }
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 1000);
    this.timer.unref();
  }

  /** The srf instance keepalive OPTIONS are sent with (when not given to start()). */
  useSrf(srf: Srf): void {
    this.srf = srf;
  }

  /** Stops timers and writes every pending change (registrations stay stored for the next start). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.store.close();
  }

  /** Waits until every change so far is in the database. */
  flush(): Promise<void> {
    return this.store.flush();
  }

  // ————————————————————————————— LocationService —————————————————————————————

  contactsOf(deviceId: string): readonly Contact[] {
    if (this.dirty.has(deviceId)) this.rebuild(deviceId);
    return this.snapshots.get(deviceId) ?? [];
  }

  all(): readonly Contact[] {
    for (const id of [...this.dirty]) this.rebuild(id);
    return [...this.snapshots.values()].flat();
  }

  // ————————————————————————————— REGISTER —————————————————————————————

  middleware(): SrfMiddleware {
    return (req, res, next) => {
      if (req.method !== "REGISTER") {
        next();
        return;
      }
      try {
        this.handle(req, res);
      } catch (err) {
        this.deps.log.error({ err: (err as Error).message }, "REGISTER failed");
        if (!res.finalResponseSent) res.send(500);
      }
    };
  }

  /** Answers an authenticated REGISTER. */
  handle(req: SrfRequest, res: SrfResponse): void {
    const caller = callerOf(req);
    if (caller?.kind !== "device") {
      res.send(403);
      return;
    }
    const device = caller.device;
    let aorUser: string | undefined;
    try {
      aorUser = userOf(req.getParsedHeader("To").uri);
    } catch {
      aorUser = undefined;
    }
    if (aorUser !== device.sipUsername) {
      res.send(403);
      return;
    }
    const now = this.deps.now();
    const contactHeader = req.get("Contact");
    const headerExpires = parseExpires(req.get("Expires"));
    if (contactHeader !== undefined && contactHeader.trim() === "*") {
      // the engine already refused `*` with a non-zero Expires (400)
      this.dropDevice(device.id, "unregistered");
    } else if (contactHeader !== undefined && contactHeader.trim() !== "") {
      const source = {
        address: req.source_address,
        port: Number(req.source_port),
        transport: transportOf(req),
      };
      const callId = req.get("Call-ID") ?? null;
      const cseq = Number.parseInt(req.get("CSeq") ?? "", 10);
      const userAgent = req.get("User-Agent")?.slice(0, 512) ?? null;
      for (const c of req.getParsedHeader("Contact")) {
        const requested = parseExpires(c.params?.expires) ?? headerExpires ?? DEFAULT_EXPIRES;
        const instance = c.params?.["+sip.instance"];
        this.bind(device, {
          contactUri: c.uri.slice(0, 1024),
          requested,
          source,
          callId,
          cseq: Number.isFinite(cseq) ? cseq : null,
          userAgent,
          instanceId: typeof instance === "string" ? unquote(instance).slice(0, 256) : null,
          now,
        });
      }
    }
    const contacts = [...(this.byDevice.get(device.id)?.values() ?? [])].map((b) => {
      const left = Math.max(0, Math.round((b.expiresAt - now) / 1000));
      const inst = b.instanceId !== null ? `;+sip.instance="${b.instanceId}"` : "";
      return `<${b.contactUri}>;expires=${left}${inst}`;
    });
    const headers: Record<string, string> = { Date: new Date(now).toUTCString() };
    if (contacts.length > 0) headers.Contact = contacts.join(", ");
    res.send(200, { headers });
  }

  private bind(
    device: SyncDevice,
    c: {
      contactUri: string;
      requested: number;
      source: { address: string; port: number; transport: SipTransport };
      callId: string | null;
      cseq: number | null;
      userAgent: string | null;
      instanceId: string | null;
      now: number;
    },
  ): void {
    const map = this.bindings(device.id);
    const existing = map.get(c.contactUri);
    // RFC 3261 §10.3 step 7: an older request of the same Call-ID arriving late changes nothing
    if (
      existing &&
      c.callId !== null &&
      existing.callId === c.callId &&
      c.cseq !== null &&
      (existing.cseq ?? -1) >= c.cseq
    )
      return;
    if (c.requested === 0) {
      if (existing) this.unbind(existing, "unregistered");
      else if (map.size === 0) this.byDevice.delete(device.id);
      return;
    }
    const natted =
      c.source.transport === "udp" &&
      isBehindNat({
        contactUri: c.contactUri,
        sourceAddress: c.source.address,
        sourcePort: c.source.port,
        transport: c.source.transport,
      });
    let granted = Math.min(MAX_EXPIRES, Math.max(MIN_EXPIRES, c.requested));
    if (natted) granted = Math.min(granted, Math.max(MIN_EXPIRES, this.deps.options.natExpires));
    const expiresAt = c.now + granted * 1000;
    const changed =
      existing === undefined ||
      existing.sourceAddress !== c.source.address ||
      existing.sourcePort !== c.source.port ||
      existing.transport !== c.source.transport ||
      existing.userAgent !== c.userAgent ||
      existing.instanceId !== c.instanceId;
    // the same phone (RFC 5626 instance) with a new Contact URI replaces its old binding
    if (c.instanceId !== null)
      for (const other of [...map.values()])
        if (other.instanceId === c.instanceId && other.contactUri !== c.contactUri)
          this.unbind(other, "unregistered");
    const b: Binding = existing ?? {
      deviceId: device.id,
      contactUri: c.contactUri,
      sourceAddress: c.source.address,
      sourcePort: c.source.port,
      transport: c.source.transport,
      userAgent: c.userAgent,
      instanceId: c.instanceId,
      callId: c.callId,
      cseq: c.cseq,
      expiresAt,
      lastSeenAt: c.now,
      grantedSeconds: granted,
      natted,
      reportedExpiresAt: 0,
      misses: 0,
      nextKeepaliveAt: 0,
      keepaliveInFlight: false,
      gone: false,
    };
    Object.assign(b, {
      sourceAddress: c.source.address,
      sourcePort: c.source.port,
      transport: c.source.transport,
      userAgent: c.userAgent,
      instanceId: c.instanceId,
      callId: c.callId,
      cseq: c.cseq,
      expiresAt,
      lastSeenAt: c.now,
      grantedSeconds: granted,
      natted,
      misses: 0,
    });
    if (changed) b.nextKeepaliveAt = c.now + this.deps.options.keepaliveIntervalMs;
    if (existing === undefined) {
      map.set(c.contactUri, b);
      if (map.size > MAX_CONTACTS) {
        const oldest = [...map.values()].sort((x, y) => x.lastSeenAt - y.lastSeenAt)[0];
        if (oldest && oldest !== b) this.unbind(oldest, "unregistered");
      }
    }
    this.store.upsert(b);
    this.changed(device.id);
    if (changed || Math.abs(expiresAt - b.reportedExpiresAt) > (granted * 1000) / 2) {
      b.reportedExpiresAt = expiresAt;
      this.emit({ kind: "registration.up", deviceId: device.id, contact: this.toSync(b) });
    }
  }

  private unbind(b: Binding, reason: "unregistered" | "expired" | "offline" | "removed"): void {
    const map = this.byDevice.get(b.deviceId);
    if (map?.get(b.contactUri) !== b) return;
    map.delete(b.contactUri);
    if (map.size === 0) this.byDevice.delete(b.deviceId);
    b.gone = true;
    this.store.remove(b.deviceId, b.contactUri);
    this.changed(b.deviceId);
    this.emit({ kind: "registration.down", deviceId: b.deviceId, contactUri: b.contactUri, reason });
  }

  private dropDevice(deviceId: string, reason: "unregistered" | "removed"): void {
    for (const b of [...(this.byDevice.get(deviceId)?.values() ?? [])]) this.unbind(b, reason);
  }

  // ————————————————————————————— expiry and keepalives —————————————————————————————

  private tick(): void {
    const now = this.deps.now();
    const interval = this.deps.options.keepaliveIntervalMs;
    for (const map of [...this.byDevice.values()]) {
      for (const b of [...map.values()]) {
        if (b.expiresAt <= now) this.unbind(b, "expired");
        else if (interval > 0 && b.natted && !b.keepaliveInFlight && now >= b.nextKeepaliveAt)
          this.keepalive(b, now);
      }
    }
  }

  private keepalive(b: Binding, now: number): void {
    const srf = this.srf;
    if (srf === undefined) return;
    b.keepaliveInFlight = true;
    b.nextKeepaliveAt = now + this.deps.options.keepaliveIntervalMs;
    let settled = false;
    const settle = (answered: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      b.keepaliveInFlight = false;
      if (b.gone) return;
      if (answered) {
        b.misses = 0;
        b.lastSeenAt = this.deps.now();
        this.store.upsert(b);
        this.changed(b.deviceId);
        return;
      }
      if (++b.misses >= KEEPALIVE_MISSES) {
        this.deps.log.info({ deviceId: b.deviceId }, "contact stopped answering keepalives: offline");
        this.unbind(b, "offline");
      }
    };
    const timer = setTimeout(() => settle(false), this.keepaliveTimeoutMs);
    timer.unref();
    const request = srf.request.bind(srf) as unknown as RequestFn;
    try {
      request(
        b.contactUri,
        { method: "OPTIONS", proxy: sourceHop(b), headers: { "Max-Forwards": "70" } },
        (err, sent) => {
          if (err) {
            settle(false);
            return;
          }
          // any answer (even 404/405/501) proves the phone and its NAT binding are there; the engine's own
          // 408 for a request nobody answered does not
          sent.on("response", (res) => settle(res.status !== 408 && res.status !== 503));
        },
      );
    } catch {
      settle(false); // not connected to the engine right now
    }
  }

  // ————————————————————————————— helpers —————————————————————————————

  private bindings(deviceId: string): Map<string, Binding> {
    let map = this.byDevice.get(deviceId);
    if (map === undefined) {
      map = new Map();
      this.byDevice.set(deviceId, map);
    }
    return map;
  }

  /** The device's contacts changed: contactsOf() rebuilds its list on the next read (refreshes stay cheap). */
  private changed(deviceId: string): void {
    this.dirty.add(deviceId);
  }

  /** Rebuilds the device's contact list for contactsOf() (newest first). */
  private rebuild(deviceId: string): void {
    this.dirty.delete(deviceId);
    const map = this.byDevice.get(deviceId);
    if (map === undefined || map.size === 0) {
      this.snapshots.delete(deviceId);
      if (map !== undefined) this.byDevice.delete(deviceId);
      return;
    }
    const list = [...map.values()]
      .sort((a, b) => b.lastSeenAt - a.lastSeenAt)
      .map((b) => Object.freeze(this.toContact(b)));
    this.snapshots.set(deviceId, Object.freeze(list));
  }

  private toSync(b: Binding): Extract<RelayEvent, { kind: "registration.up" }>["contact"] {
    return {
      contactUri: b.contactUri,
      sourceAddress: b.sourceAddress,
      sourcePort: b.sourcePort,
      transport: b.transport,
      userAgent: b.userAgent,
      instanceId: b.instanceId,
      callId: b.callId === null ? null : b.callId.slice(0, 256),
      cseq: b.cseq,
      expiresAt: new Date(b.expiresAt).toISOString(),
      lastSeenAt: new Date(b.lastSeenAt).toISOString(),
    };
  }

  private toContact(b: Binding): Contact {
    return { deviceId: b.deviceId, ...this.toSync(b) };
  }

  private emit(event: RelayEvent): void {
    this.deps.events.emit(event).catch((err: unknown) => {
      this.deps.log.error({ err: (err as Error).message, kind: event.kind }, "event not stored");
    });
  }
}
