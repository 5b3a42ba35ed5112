/**
 * The embedded relay's code as one pre-built ES module. Loading relay/src through
 * tsx costs about 1.5 s at every start (each of a few hundred TypeScript modules
 * goes through the loader hooks); one bundle built by esbuild loads in a fraction
 * of that, so phones get their first answer sooner after `npm start`.
 *
 * The bundle lives in relay/.build/ (so npm packages resolve from relay/ as usual;
 * only GoSIP's own workspaces are bundled in) with a manifest of every input's size
 * and mtime: it is rebuilt only when a source changed. Any failure falls back to
 * running the sources through tsx, which always works.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureBundle } from "../../../bundle.mjs";

/**
 * The repository root, found from this module's location upwards: this code runs from
 * edge/src/platform/node/ (tsx) or from the bundle in edge/.build/ (npm start).
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, "relay", "package.json")) && existsSync(join(dir, "edge", "package.json")))
      return dir;
    dir = dirname(dir);
  }
  throw new Error("GoSIP's repository root (with edge/ and relay/) was not found above this module");
}

const relayDir = join(repoRoot(), "relay");
/** The relay's TypeScript entry point (run through tsx when no bundle can be built). */
export const relaySourceMain = join(relayDir, "src", "main.ts");
export const relayWorkingDir = relayDir;

let prepared: Promise<string | undefined> | undefined;

/**
 * The path of an up-to-date relay bundle (built when needed), or undefined when it cannot be built
 * (then run relay/src/main.ts through tsx). Memoised: start it early, await it when spawning.
 */
export function prepareRelayBundle(): Promise<string | undefined> {
  prepared ??= (async () => {
    try {
      return await ensureBundle({
        workDir: relayDir,
        entry: relaySourceMain,
        name: "relay",
        packageFiles: ["package.json", "../drizzle/package.json"],
      });
    } catch {
      return undefined;
    }
  })();
  return prepared;
}
