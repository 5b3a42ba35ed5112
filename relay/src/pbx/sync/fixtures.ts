/**
 * Test support: sync payloads that validate (devices with real HA1 values,
 * settings, snapshots and deltas), a pino logger whose lines a test can read, and
 * a relay database in a temp file opened as production opens it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type ConfigDelta,
  type ConfigSnapshot,
  computeDeviceHa1,
  type Db,
  defaultOutboundPolicy,
  type SyncDevice,
  type SyncSettings,
} from "@gosip/drizzle";
import type { Client } from "@libsql/client";
import pino, { type Logger } from "pino";
import { openRelayDatabase } from "./local-db.ts";

export const REALM = "gosip.test";

export function device(n: number, overrides: Partial<SyncDevice> = {}): SyncDevice {
  const sipUsername = overrides.sipUsername ?? `phone${n}`;
  return {
    id: `dev-${n}`,
    userId: null,
    name: `Phone ${n}`,
    extension: String(100 + n),
    sipUsername,
    ...computeDeviceHa1(sipUsername, REALM, `secret-${n}`),
    enabled: true,
    dnd: false,
    recordAlways: false,
    outboundPolicy: defaultOutboundPolicy,
    callerIdE164: null,
    ...overrides,
  };
}

export const settings: SyncSettings = {
  realm: REALM,
  defaultCountry: "US",
  twilioDomain: { name: "gosip-test.sip.twilio.com", username: "relay", password: "domain-secret" },
  inbound: { username: "twilio", password: "inbound-secret" },
  trustedNetworks: ["192.168.1.0/24"],
  minFreeBytes: 100_000_000,
};

export function snapshot(
  version: number,
  devices: SyncDevice[],
  extra: Partial<ConfigSnapshot> = {},
): ConfigSnapshot {
  return { type: "config", full: true, version, devices, settings, mailboxes: [], ...extra };
}

export function delta(version: number, extra: Partial<ConfigDelta> = {}): ConfigDelta {
  return { type: "config", full: false, version, upsertDevices: [], removeDevices: [], ...extra };
}

export interface CapturedLog {
  log: Logger;
  lines: { level: number; msg: string }[];
  text(): string;
}

/** A debug-level logger that keeps its lines in memory. */
export function captureLog(): CapturedLog {
  const lines: { level: number; msg: string }[] = [];
  const log = pino(
    { level: "debug" },
    {
      write(s: string) {
        const j = JSON.parse(s) as { level: number; msg?: string; error?: string };
        lines.push({ level: j.level, msg: `${j.msg ?? ""}${j.error ? ` ${j.error}` : ""}` });
      },
    },
  );
  return { log, lines, text: () => lines.map((l) => l.msg).join("\n") };
}

export interface TempRelayDb {
  client: Client;
  db: Db;
  /** Another client on the same file: what the relay sees after a restart. */
  openClient(): Promise<Client>;
  reopen(): Promise<Db>;
  close(): Promise<void>;
}

/** A migrated relay database in a fresh temp file (real libSQL, as `openRelayDatabase` opens it). */
export async function tempRelayDb(): Promise<TempRelayDb> {
  const dir = await mkdtemp(join(tmpdir(), "gosip-relay-sync-"));
  const url = pathToFileURL(join(dir, "relay.db")).href;
  const clients: Client[] = [];
  const open = async () => {
    const opened = await openRelayDatabase(url);
    clients.push(opened.client);
    return opened;
  };
  const first = await open();
  return {
    client: first.client,
    db: first.db,
    openClient: async () => (await open()).client,
    reopen: async () => (await open()).db,
    async close() {
      for (const c of clients) c.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
