// Small in-memory implementations of the PBX seams (DeviceDirectory, EventSink, CommandBus) for feature
// tests: the real ones sit in the sync client; these behave the same way at the interface (onChange after
// every change, emit resolves once "stored", commands dispatched to the one handler of their kind).
import {
  computeDeviceHa1,
  type Db,
  defaultOutboundPolicy,
  type MailboxCount,
  type RelayCommand,
  type RelayEvent,
  relayDevices,
  type SyncDevice,
  type SyncSettings,
} from "@gosip/drizzle";
import type {
  CommandBus,
  DeviceDirectory,
  DirectoryChange,
  EventSink,
  RelayCommandKind,
} from "../context.ts";

export const TEST_REALM = "gosip.test";

/** Settings as the edge would send them, with overrides. */
export function testSettings(overrides: Partial<SyncSettings> = {}): SyncSettings {
  return {
    realm: TEST_REALM,
    defaultCountry: "US",
    twilioDomain: null,
    inbound: null,
    trustedNetworks: [],
    minFreeBytes: 0,
    ...overrides,
  };
}

/** A device whose HA1 values come from `password` in `realm` (the edge stores only these). */
export function testDevice(
  sipUsername: string,
  password: string,
  overrides: Partial<SyncDevice> = {},
  realm = TEST_REALM,
): SyncDevice {
  return {
    id: `dev-${sipUsername}`,
    userId: null,
    name: sipUsername,
    extension: String(100 + (sipUsername.length % 10)),
    sipUsername,
    ...computeDeviceHa1(sipUsername, realm, password),
    enabled: true,
    dnd: false,
    recordAlways: false,
    outboundPolicy: defaultOutboundPolicy,
    callerIdE164: null,
    ...overrides,
  };
}

export class FakeDirectory implements DeviceDirectory {
  private readonly devices = new Map<string, SyncDevice>();
  private current: SyncSettings | undefined;
  private readonly mailboxes = new Map<string, MailboxCount>();
  private readonly listeners: ((change: DirectoryChange) => void)[] = [];

  constructor(devices: readonly SyncDevice[] = [], settings: SyncSettings | undefined = testSettings()) {
    for (const d of devices) this.devices.set(d.id, d);
    this.current = settings;
  }

  byId(id: string): SyncDevice | undefined {
    return this.devices.get(id);
  }
  bySipUsername(username: string): SyncDevice | undefined {
    for (const d of this.devices.values()) if (d.sipUsername === username) return d;
    return undefined;
  }
  byExtension(extension: string): SyncDevice | undefined {
    for (const d of this.devices.values()) if (d.extension === extension) return d;
    return undefined;
  }
  all(): readonly SyncDevice[] {
    return [...this.devices.values()];
  }
  settings(): SyncSettings | undefined {
    return this.current;
  }
  mailbox(deviceId: string): MailboxCount | undefined {
    return this.mailboxes.get(deviceId);
  }
  onChange(listener: (change: DirectoryChange) => void): void {
    this.listeners.push(listener);
  }

  /** Applies a config delta the way the sync client does, then tells the listeners. */
  apply(change: { upsert?: SyncDevice[]; remove?: string[]; settings?: SyncSettings }): void {
    for (const d of change.upsert ?? []) this.devices.set(d.id, d);
    for (const id of change.remove ?? []) this.devices.delete(id);
    if (change.settings) this.current = change.settings;
    const event: DirectoryChange = {
      upserted: change.upsert ?? [],
      removed: change.remove ?? [],
      settingsChanged: change.settings !== undefined,
    };
    for (const l of this.listeners) l(event);
  }

  setMailbox(count: MailboxCount): void {
    this.mailboxes.set(count.deviceId, count);
  }
}

/**
 * The relay_devices rows the sync client keeps for these devices (relay_registrations references them), so a
 * test database looks like a relay's.
 */
export async function seedDevices(db: Db, devices: readonly SyncDevice[]): Promise<void> {
  for (const d of devices) {
    await db
      .insert(relayDevices)
      .values({
        id: d.id,
        userId: d.userId,
        name: d.name,
        extension: d.extension,
        sipUsername: d.sipUsername,
        ha1Md5: d.ha1Md5,
        ha1Sha256: d.ha1Sha256,
        enabled: d.enabled,
        dnd: d.dnd,
        recordAlways: d.recordAlways,
        outboundPolicy: d.outboundPolicy,
      })
      .onConflictDoNothing();
  }
}

/** Records every event; `waitFor` lets a test wait for one that matches. */
export class MemoryEventSink implements EventSink {
  readonly events: RelayEvent[] = [];
  private waiters: { match: (e: RelayEvent) => boolean; resolve: (e: RelayEvent) => void }[] = [];

  emit(event: RelayEvent): Promise<void> {
    this.events.push(event);
    const ready = this.waiters.filter((w) => w.match(event));
    this.waiters = this.waiters.filter((w) => !w.match(event));
    for (const w of ready) w.resolve(event);
    return Promise.resolve();
  }

  of<K extends RelayEvent["kind"]>(kind: K): Extract<RelayEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<RelayEvent, { kind: K }> => e.kind === kind);
  }

  /** The first event (already emitted or still to come) of `kind` matching `match`. */
  waitFor<K extends RelayEvent["kind"]>(
    kind: K,
    match: (e: Extract<RelayEvent, { kind: K }>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Extract<RelayEvent, { kind: K }>> {
    const is = (e: RelayEvent): e is Extract<RelayEvent, { kind: K }> => e.kind === kind && match(e as never);
    const seen = this.events.find(is);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${kind} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        match: (e: RelayEvent) => is(e),
        resolve: (e: RelayEvent) => {
          clearTimeout(timer);
          resolve(e as Extract<RelayEvent, { kind: K }>);
        },
      };
      this.waiters.push(waiter);
    });
  }
}

type AnyHandler = (command: RelayCommand) => Promise<void>;

/** Holds the features' command handlers; `dispatch` plays the edge sending a command. */
export class MemoryCommandBus implements CommandBus {
  private readonly handlers = new Map<RelayCommandKind, AnyHandler>();

  handle<K extends RelayCommandKind>(
    kind: K,
    handler: (command: Extract<RelayCommand, { kind: K }>) => Promise<void>,
  ): void {
    this.handlers.set(kind, handler as AnyHandler);
  }

  /** Runs the handler of the command's kind; rejects like the handler (or when nobody handles the kind). */
  async dispatch(command: RelayCommand): Promise<void> {
    const handler = this.handlers.get(command.kind);
    if (!handler) throw new Error(`no handler for ${command.kind}`);
    await handler(command);
  }
}
