/**
 * The seams between the PBX application's features. Each feature folder
 * (registrar, defence, auth, calls, media, mwi, recording, sync) implements or
 * uses these interfaces; `pbx/app.ts` builds one `PbxContext` and installs the
 * features on a drachtio-srf instance as a middleware chain:
 *
 *   rate limit → scanner filter → identify + digest challenge → REGISTER / INVITE / SUBSCRIBE handlers
 *
 * Nothing here knows whether the engine is the built-in one or drachtio-server.
 */
import type {
  Db,
  MailboxCount,
  RelayCommand,
  RelayEvent,
  SyncContact,
  SyncDevice,
  SyncSettings,
} from "@gosip/drizzle";
import type { Logger } from "pino";

/** The relay's copy of the edge's configuration (devices and settings), kept in its libSQL file. */
export interface DeviceDirectory {
  byId(id: string): SyncDevice | undefined;
  /** The digest username and AOR user of a phone. */
  bySipUsername(username: string): SyncDevice | undefined;
  /** What people dial. */
  byExtension(extension: string): SyncDevice | undefined;
  all(): readonly SyncDevice[];
  /** Settings, or undefined before the first snapshot ever arrived (then no inbound or outbound trunk). */
  settings(): SyncSettings | undefined;
  /** Last known voicemail counts per device (for MWI). */
  mailbox(deviceId: string): MailboxCount | undefined;
  /** Called after every applied config change (devices removed → their registrations dropped, …). */
  onChange(listener: (change: DirectoryChange) => void): void;
}

export interface DirectoryChange {
  upserted: readonly SyncDevice[];
  removed: readonly string[];
  settingsChanged: boolean;
}

/** One live contact of a device (a row of relay_registrations, as the registrar keeps it). */
export interface Contact extends SyncContact {
  deviceId: string;
}

/** Where a device can be reached now: the registrar's location service. */
export interface LocationService {
  /** Live (unexpired, not offline) contacts of a device, newest first. */
  contactsOf(deviceId: string): readonly Contact[];
  /** Every live contact (metrics, the dashboard). */
  all(): readonly Contact[];
}

/**
 * Events for the edge, through the relay's durable outbox: `emit` resolves once the
 * event is stored in the libSQL file (it then survives a crash and is delivered once).
 */
export interface EventSink {
  emit(event: RelayEvent): Promise<void>;
}

export type RelayCommandKind = RelayCommand["kind"];

/** Handlers of the edge's commands, registered by the feature that owns each kind. */
export interface CommandBus {
  /** The handler throws `CommandError` (or any error) to report a failed command to the edge. */
  handle<K extends RelayCommandKind>(
    kind: K,
    handler: (command: Extract<RelayCommand, { kind: K }>) => Promise<void>,
  ): void;
}

/** A command the relay could not carry out (the message goes back to the edge). */
export class CommandError extends Error {
  override readonly name = "CommandError";
}

/** The engine's own SIP addresses, as srf's `connect` event reports them. */
export interface LocalSip {
  /** Address other parties reach the relay on (SIP_EXTERNAL_ADDRESS, or the bound address). */
  host: string;
  port: number;
  /** Raw host-ports, e.g. ["udp/192.0.2.10:5060", "tcp/192.0.2.10:5060"]. */
  hostports: readonly string[];
}

/** Relay configuration that the features read (validated once in relay/src/config.ts). */
export interface PbxOptions {
  /** Twilio SIP Domain next hop override (host:port), TWILIO_SIP_PROXY. */
  twilioSipProxy?: string;
  /** Expiry granted to UDP phones behind NAT (seconds), and whether to send OPTIONS keepalives. */
  natExpires: number;
  keepaliveIntervalMs: number;
  /** Where rtpengine writes recordings and GoSIP keeps finished WAV files until the edge confirms. */
  recordingDir: string;
  /** Ring time for internal calls and inbound calls without a timeout from the edge, seconds. */
  ringTimeoutSeconds: number;
}

export interface PbxContext {
  log: Logger;
  /** The relay's own libSQL database (migrations applied). */
  db: Db;
  directory: DeviceDirectory;
  location: LocationService;
  events: EventSink;
  commands: CommandBus;
  local: LocalSip;
  options: PbxOptions;
  /** Injectable wall clock (ms). */
  now(): number;
}
