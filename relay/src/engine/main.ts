// CLI entry of the engine (`npm run engine`): reads the configuration from the environment and runs until
// SIGINT/SIGTERM.
import { closeOnSignal, exitOnStartFailure } from "./cli.ts";
import { loadEngineConfig } from "./config.ts";
import { startEngine } from "./index.ts";

async function main(): Promise<void> {
  const opts = loadEngineConfig();
  const engine = await startEngine(opts);
  closeOnSignal(() => engine.close());
}

main().catch((err: unknown) => exitOnStartFailure("engine", err));
