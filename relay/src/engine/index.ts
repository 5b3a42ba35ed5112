// The SIP engine: a TypeScript drachtio-server. startEngine() binds the SIP stack (UDP + TCP) and the drachtio
// admin port, and relays between them, so unmodified drachtio-srf applications can connect and work.
import { networkInterfaces } from "node:os";
import pino from "pino";
import { SipStack, type StackStats } from "./stack/index.ts";
import { hostForUri } from "./stack/network.ts";
import { warmUp } from "./warm-up.ts";
import { AppBridge } from "./wire/bridge/app-bridge.ts";
import { AdminServer } from "./wire/server.ts";

/** drachtio-server version we present to apps; srf enables pings for >= v0.8.2. */
export const ENGINE_VERSION = "v0.9.5-gosip";

export interface EngineOptions {
  /** Admin (drachtio protocol) bind address; default 127.0.0.1. */
  adminHost?: string;
  /** Admin port; 0 = ephemeral. */
  adminPort: number;
  /** Shared secret apps authenticate with. */
  secret: string;
  sipHost: string;
  /** SIP port for UDP and TCP; 0 = ephemeral. */
  sipPort: number;
  externalAddress?: string;
  localNetworks?: string[];
  timers?: { T1?: number; T2?: number; T4?: number };
  logLevel?: string;
  /**
   * Run a private warm-up (./warm-up.ts, once per process, at most ~2.5 s) before listening, so the first
   * requests are answered as fast as later ones. Default true.
   */
  warmUp?: boolean;
}

export interface Engine {
  /** Resolved admin port (when 0 was given). */
  adminPort: number;
  /** Resolved SIP port (when 0 was given). */
  sipPort: number;
  /**
   * Where others reach our SIP listeners, `udp/<addr>:<port>,tcp/<addr>:<port>` (externalAddress when set): what
   * srf apps get as the 2nd argument of their 'connect' event.
   */
  hostports: string;
  /** The same for the bound addresses (a wildcard bind names this host's address): srf's 4th 'connect' argument. */
  localHostports: string;
  /** What the engine is tracking right now (leak checks, health): relay transactions/dialogs, apps, stack counts. */
  stats(): EngineStats;
  close(): Promise<void>;
}

export interface EngineStats {
  apps: number;
  /** Requests delivered to apps still waiting for their final response. */
  netTransactions: number;
  /** Requests sent for apps still waiting for a final response. */
  appTransactions: number;
  dialogs: number;
  stack: StackStats;
}

/**
 * The address to tell apps for a listener: a wildcard bind (0.0.0.0 / ::) is not an address anyone can send to,
 * so use this host's first non-internal interface address (IPv4 preferred), as drachtio-server reports it.
 */
function reachableAddress(bound: string): string {
  if (bound !== "0.0.0.0" && bound !== "::") return bound;
  const all = Object.values(networkInterfaces()).flatMap((l) => l ?? []);
  const pick =
    all.find((i) => !i.internal && i.family === "IPv4") ??
    (bound === "::" ? all.find((i) => !i.internal) : undefined);
  return pick?.address ?? (bound === "::" ? "::1" : "127.0.0.1");
}

/** Start the engine; resolves once both the SIP and the admin listeners are bound. */
export async function startEngine(opts: EngineOptions): Promise<Engine> {
  const log = pino({ name: "engine", level: opts.logLevel ?? "info" });
  if (opts.warmUp !== false) {
    const started = performance.now();
    const transactions = await warmUp();
    if (transactions > 0)
      log.debug({ transactions, ms: Math.round(performance.now() - started) }, "warmed up");
  }
  const stack = await SipStack.listen({
    host: opts.sipHost,
    port: opts.sipPort,
    externalAddress: opts.externalAddress,
    localNetworks: opts.localNetworks,
    timers: opts.timers,
  });
  const bridge = new AppBridge(stack, log);
  // exceptions the stack caught at its socket/timer boundaries: log them, at most 10 a minute
  let errWindow = 0;
  let errCount = 0;
  stack.on("internal-error", (err: unknown) => {
    const now = Date.now();
    if (now - errWindow > 60_000) {
      errWindow = now;
      errCount = 0;
    }
    if (++errCount <= 10)
      log.error({ err: err instanceof Error ? err.stack : String(err) }, "SIP stack internal error");
  });
  const hostportsFor = (external: string | undefined): string =>
    stack.hostports
      .map((h) => `${h.transport}/${hostForUri(external ?? reachableAddress(h.address))}:${h.port}`)
      .join(",");
  const hostports = hostportsFor(opts.externalAddress || undefined);
  const localHostports = hostportsFor(undefined);
  let admin: AdminServer;
  try {
    admin = await AdminServer.listen({
      host: opts.adminHost ?? "127.0.0.1",
      port: opts.adminPort,
      secret: opts.secret,
      hostports,
      localHostports,
      version: ENGINE_VERSION,
      handler: bridge,
      onError: (err) => log.warn({ err: err.message }, "admin connection error"),
    });
  } catch (err) {
    bridge.close();
    await stack.close();
    throw err;
  }
  bridge.attach(admin);
  const sipPort = stack.hostports[0]?.port ?? opts.sipPort;
  log.info({ adminPort: admin.port, sipPort, hostports }, "engine started");
  let closed = false;
  return {
    adminPort: admin.port,
    sipPort,
    hostports,
    localHostports,
    stats(): EngineStats {
      const r = bridge.stats();
      return {
        apps: admin.apps.length,
        netTransactions: r.netTxns,
        appTransactions: r.appTxns,
        dialogs: r.dialogs,
        stack: stack.stats(),
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      bridge.close();
      await admin.close();
      await stack.close();
    },
  };
}
