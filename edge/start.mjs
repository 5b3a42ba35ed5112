// `npm start`: runs the Node edge from one esbuild bundle of edge/src/platform/node/main.ts
// (edge/.build/, rebuilt only when a source file changed; see bundle.mjs), which starts in about
// half the time of loading the TypeScript sources through tsx. Plain JavaScript on purpose: it
// must run before anything is compiled. If the bundle cannot be built, the sources run through tsx.
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureBundle } from "./bundle.mjs";

const edgeDir = dirname(fileURLToPath(import.meta.url));
const entry = join(edgeDir, "src/platform/node/main.ts");

let bundle;
try {
  bundle = await ensureBundle({
    workDir: edgeDir,
    entry,
    name: "main",
    packageFiles: ["package.json", "../drizzle/package.json"],
  });
} catch (err) {
  console.error(
    `GoSIP: running from sources (bundle not built: ${err instanceof Error ? err.message : err})`,
  );
}
if (bundle) {
  process.setSourceMapsEnabled?.(true);
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(entry).href);
}
