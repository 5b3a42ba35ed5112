// CLI entry of the engine (`npm run engine`): reads the configuration from the environment and runs until
// SIGINT/SIGTERM.
import { ConfigError, loadEngineConfig } from "./config.ts";
import { startEngine } from "./index.ts";

async function main(): Promise<void> {
  const opts = loadEngineConfig();
  const engine = await startEngine(opts);
  const stop = (): void => {
    engine.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(`engine failed to start: ${(err as Error).message}`);
  process.exit(1);
});
