// Process plumbing shared by the CLI entries (engine/main.ts and the relay's main.ts): close cleanly on
// SIGINT/SIGTERM, and report a start-up failure as one line on stderr with exit code 1.
import { ConfigError } from "./config.ts";

/** On SIGINT or SIGTERM: run `close`, then exit 0 (1 if closing failed). */
export function closeOnSignal(close: () => Promise<void>): void {
  const stop = (): void => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** Exit 1 after printing why `what` could not start (a configuration error is printed as it is). */
export function exitOnStartFailure(what: string, err: unknown): never {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(`${what} failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
