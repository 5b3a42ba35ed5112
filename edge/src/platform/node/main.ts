/**
 * `npm start`: the embedded edge on Node. Reads process.env once (a bad
 * variable prints which one and exits 1), serves on HOST:PORT, and shuts down
 * gracefully on SIGTERM/SIGINT.
 */
import { ConfigError } from "../../config.ts";
import { type EmbeddedRelay, startEmbeddedRelay } from "./embedded-relay.ts";
import { prepareRelayBundle } from "./relay-bundle.ts";
import { startNodeEdge } from "./server.ts";

async function main(): Promise<void> {
  // `npm start` at the repo root runs this in edge/ (npm workspaces). Relative paths (GOSIP_DATA_DIR
  // default ./data, file: DATABASE_URLs) mean the directory the user started npm in, which npm passes as INIT_CWD.
  if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
  // Build (or check) the relay bundle while the edge starts: esbuild runs in its own process.
  if (process.env.GOSIP_EMBEDDED_RELAY !== "off") void prepareRelayBundle();
  let edge: Awaited<ReturnType<typeof startNodeEdge>>;
  try {
    edge = await startNodeEdge(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const { deps, port, config } = edge;

  // The embedded default: the relay (SIP + media) as a second process linked over loopback. Started after
  // the signal handlers are in place, so a stop at any moment also stops the relay.
  let relay: Promise<EmbeddedRelay | undefined> = Promise.resolve(undefined);
  const shutdown = (signal: string) => {
    deps.logger.info({ signal }, "shutting down");
    Promise.all([relay.then((r) => r?.stop()), edge.close()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));

  deps.logger.info(
    { host: config.host, port, publicUrl: config.publicUrl, startupMs: Math.round(performance.now()) },
    "listening",
  );
  if (process.env.GOSIP_EMBEDDED_RELAY !== "off") {
    relay = startEmbeddedRelay(deps, edge.url, process.env).catch((err: unknown) => {
      deps.logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        "embedded relay not started",
      );
      return undefined;
    });
  }
}

main().catch((err: unknown) => {
  // Not a config problem: report the error kind and message, then exit non-zero.
  console.error(`GoSIP edge failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
