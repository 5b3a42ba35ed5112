/**
 * The embedded relay of `npm start` (DESIGN "Two ways to run", 1): after the edge
 * listens, it starts the relay (SIP engine + PBX app + rtpengine) as a second
 * process that links back over the same WebSocket protocol as in the cloud, so
 * the README's one command gives a working PBX with nothing to provision by hand.
 *
 * - Relay token: kept in `<data>/relay/token` (mode 0600) and reused while its hash
 *   is still live in the database; otherwise a new token "embedded relay" is created.
 * - Twilio's inbound credentials towards the relay (`relay` setting) are generated
 *   once when missing, so only Twilio can push calls in once numbers are wired.
 * - The child is restarted with backoff when it dies, and stopped with the edge.
 *
 * GOSIP_EMBEDDED_RELAY=off runs the API alone (an on-prem relay connects instead).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseSetting, relayTokens, settings } from "@gosip/drizzle";
import { and, eq, isNull } from "drizzle-orm";
import { newRelayToken, relayTokenHash } from "../../relay/tokens.ts";
import type { EdgeDeps } from "../types.ts";
import { prepareRelayBundle, relaySourceMain, relayWorkingDir } from "./relay-bundle.ts";

const EMBEDDED_TOKEN_NAME = "embedded relay";
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** A child that ran this long counts as healthy: the next crash restarts after the minimum backoff. */
const STABLE_MS = 60_000;

export interface EmbeddedRelay {
  /** The running child's pid (undefined between restarts). */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

/** The token file's token when its hash is still a live token; otherwise a new token, saved. */
async function ensureRelayToken(deps: EdgeDeps, dir: string): Promise<string> {
  const file = join(dir, "token");
  const saved = (await readFile(file, "utf8").catch(() => "")).trim();
  if (saved) {
    const [row] = await deps.db
      .select({ id: relayTokens.id })
      .from(relayTokens)
      .where(and(eq(relayTokens.tokenHash, relayTokenHash(saved)), isNull(relayTokens.revokedAt)));
    if (row) return saved;
  }
  const token = newRelayToken();
  await deps.db.insert(relayTokens).values({ name: EMBEDDED_TOKEN_NAME, tokenHash: relayTokenHash(token) });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return token;
}

/** Generates the inbound trunk credentials (Twilio → relay) once, keeping every other relay setting. */
async function ensureInboundCredentials(deps: EdgeDeps): Promise<void> {
  const [row] = await deps.db.select().from(settings).where(eq(settings.key, "relay"));
  const current = (row?.value ?? { v: 1 }) as Record<string, unknown>;
  if (current.inboundUsername && current.inboundPassword) return;
  const value = parseSetting("relay", {
    ...current,
    inboundUsername: `twilio-${randomBytes(4).toString("hex")}`,
    inboundPassword: randomBytes(18).toString("base64url"),
  });
  await deps.db
    .insert(settings)
    .values({ key: "relay", value })
    .onConflictDoUpdate({ target: settings.key, set: { value } });
}

/**
 * Starts the relay child against the edge at `edgeUrl` (loopback). Resolves once
 * it is spawned; its output goes to this process's stdout/stderr.
 */
export async function startEmbeddedRelay(
  deps: EdgeDeps,
  edgeUrl: string,
  env: Record<string, string | undefined>,
): Promise<EmbeddedRelay> {
  const dataDir = resolve(deps.config.dataDir, "relay");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = await ensureRelayToken(deps, dataDir);
  await ensureInboundCredentials(deps);

  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  Object.assign(childEnv, {
    EDGE_URL: edgeUrl,
    RELAY_TOKEN: token,
    RELAY_DATA_DIR: env.RELAY_DATA_DIR ?? dataDir,
    // The engine's admin port only serves the relay's own application: any free loopback port, a fresh secret.
    ENGINE_HOST: "127.0.0.1",
    ENGINE_PORT: env.ENGINE_PORT ?? "0",
    ENGINE_SECRET: env.ENGINE_SECRET ?? randomBytes(24).toString("base64url"),
    LOG_LEVEL: env.RELAY_LOG_LEVEL ?? env.LOG_LEVEL ?? "info",
    // The engine's JIT warm-up (~2 s before SIP listens) pays off only for bursts of hundreds of REGISTERs per
    // second; a home PBX's few phones should be answered at once.
    ENGINE_WARM_UP: env.ENGINE_WARM_UP ?? "0",
  });
  const bundle = await prepareRelayBundle();
  const relayArgs = bundle ? ["--enable-source-maps", bundle] : ["--import", "tsx", relaySourceMain];

  let child: ChildProcess | undefined;
  let stopping = false;
  let backoff = BACKOFF_MIN_MS;
  let restartTimer: NodeJS.Timeout | undefined;

  const launch = (): void => {
    const startedAt = Date.now();
    const proc = spawn(process.execPath, relayArgs, {
      cwd: relayWorkingDir,
      env: childEnv,
      stdio: ["ignore", "inherit", "inherit"],
    });
    child = proc;
    deps.logger.info({ pid: proc.pid, bundled: bundle !== undefined }, "embedded relay started");
    proc.once("exit", (code, signal) => {
      if (child === proc) child = undefined;
      if (stopping) return;
      if (Date.now() - startedAt > STABLE_MS) backoff = BACKOFF_MIN_MS;
      deps.logger.error({ code, signal, restartInMs: backoff }, "embedded relay exited; restarting");
      restartTimer = setTimeout(launch, backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    });
    proc.once("error", (err) => deps.logger.error({ err: err.message }, "embedded relay could not start"));
  };
  launch();

  return {
    get pid() {
      return child?.pid;
    },
    async stop(): Promise<void> {
      stopping = true;
      clearTimeout(restartTimer);
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((done) => proc.once("exit", () => done()));
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
