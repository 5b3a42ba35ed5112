/**
 * Edge sync for the PBX: the device directory (local cache of the edge's config),
 * the durable event outbox, the command bus, and the WebSocket link that feeds
 * them. `startSync` builds all four; without an edge URL the relay runs
 * standalone: directory from the local cache only, events kept in the outbox
 * until a relay with an edge URL sends them.
 */
import type { Db } from "@gosip/drizzle";
import type { Logger } from "pino";
import { CommandRouter } from "./commands.ts";
import { LocalDirectory } from "./directory.ts";
import { EdgeLink, type EdgeLinkStatus, type EdgeLinkTimings } from "./edge-link.ts";
import { tuneRelayDatabase } from "./local-db.ts";
import { Outbox, type OutboxOptions } from "./outbox.ts";

export { type CommandHook, type CommandResult, CommandRouter } from "./commands.ts";
export { LocalDirectory } from "./directory.ts";
export {
  defaultEdgeLinkTimings,
  EdgeLink,
  type EdgeLinkOptions,
  type EdgeLinkStatus,
  type EdgeLinkTimings,
  RELAY_CONNECT_PATH,
  relayConnectUrl,
} from "./edge-link.ts";
export { openRelayDatabase, type RelayDatabase, tuneRelayDatabase } from "./local-db.ts";
export { Outbox, type OutboxOptions, type SendFrame } from "./outbox.ts";

export interface SyncOptions {
  /** The relay's own libSQL database, migrations applied. */
  db: Db;
  log: Logger;
  /** EDGE_URL; absent: standalone (no link). */
  edgeUrl?: string;
  /** RELAY_TOKEN; required with `edgeUrl`. */
  relayToken?: string;
  /** Relay software version, sent in hello. */
  software: string;
  /** The SIP engine's host-ports for hello; a function when they are known only after start. */
  hostports: readonly string[] | (() => readonly string[]);
  now?: () => number;
  /** Link timings (tests shorten them). */
  timings?: Partial<EdgeLinkTimings>;
  /** Outbox tuning: in-flight window (default 100), events kept in memory (default 20,000). */
  outbox?: Pick<OutboxOptions, "window" | "maxTail">;
  /**
   * Switch the file to WAL + synchronous=NORMAL first (default true; see local-db.ts):
   * without it every outbox write blocks the event loop for the fsyncs. Open the
   * database with `openRelayDatabase` so it holds for every statement.
   */
  tuneDatabase?: boolean;
}

export interface Sync {
  directory: LocalDirectory;
  events: Outbox;
  commands: CommandRouter;
  /** Undefined when standalone. */
  link: EdgeLink | undefined;
  /** For metrics and health: the link (a standalone relay reports never connected) and the outbox depth. */
  status(): EdgeLinkStatus & { outboxDepth: number; standalone: boolean };
  /** Closes the link cleanly, then waits until every emitted event is stored. Leaves the db open. */
  close(): Promise<void>;
}

/** Loads the local cache and, with an edge URL, starts the link. */
export async function startSync(options: SyncOptions): Promise<Sync> {
  const { db, log } = options;
  const now = options.now ?? Date.now;
  if (options.edgeUrl && !options.relayToken) {
    throw new Error("RELAY_TOKEN is required with EDGE_URL: create a relay token in the edge's admin UI");
  }
  const syncLog = log.child({ feature: "sync" });
  if (options.tuneDatabase !== false) await tuneRelayDatabase(db.$client, syncLog);
  const directory = await LocalDirectory.load(db, syncLog, now);
  const events = new Outbox({ ...options.outbox, db, log: syncLog, now });
  const commands = new CommandRouter(syncLog, {
    // The counts are part of the directory (MWI for a phone that subscribes later), so they are
    // stored before the MWI feature's handler sends NOTIFYs.
    before: async (command) => {
      if (command.kind !== "mwi") return false;
      await directory.applyMailboxes(command.mailboxes);
      return true;
    },
  });
  const hostports = options.hostports;
  const started = now();
  let link: EdgeLink | undefined;
  if (options.edgeUrl && options.relayToken) {
    link = new EdgeLink({
      edgeUrl: options.edgeUrl,
      relayToken: options.relayToken,
      software: options.software,
      hostports: typeof hostports === "function" ? hostports : () => hostports,
      directory,
      outbox: events,
      commands,
      log: syncLog,
      now,
      ...(options.timings ? { timings: options.timings } : {}),
    });
    link.start();
  } else {
    syncLog.info("no EDGE_URL: running standalone from the local configuration cache");
  }
  return {
    directory,
    events,
    commands,
    link,
    status() {
      const s = link?.status() ?? {
        connected: false,
        since: started,
        reconnects: 0,
        lastError: null,
        invalidFrames: 0,
      };
      return { ...s, outboxDepth: events.depth(), standalone: link === undefined };
    },
    async close() {
      await link?.close();
      await events.flush();
    },
  };
}
