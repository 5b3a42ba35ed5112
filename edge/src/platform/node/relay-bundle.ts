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
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
const buildDir = join(relayDir, ".build");
const outFile = join(buildDir, "relay.mjs");
const manifestFile = join(buildDir, "manifest.json");
const entry = relaySourceMain;

interface Manifest {
  v: 1;
  inputs: Record<string, { size: number; mtimeMs: number }>;
}

async function upToDate(): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as Manifest;
    if (manifest.v !== 1) return false;
    await stat(outFile);
    for (const [file, seen] of Object.entries(manifest.inputs)) {
      const now = await stat(join(relayDir, file));
      if (now.size !== seen.size || now.mtimeMs !== seen.mtimeMs) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** npm packages the relay and its workspaces depend on: left as imports, resolved from node_modules. */
async function externalPackages(): Promise<string[]> {
  const names = new Set<string>();
  for (const pkg of ["relay/package.json", "drizzle/package.json"]) {
    const json = JSON.parse(await readFile(join(relayDir, "..", pkg), "utf8")) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(json.dependencies ?? {})) if (!name.startsWith("@gosip/")) names.add(name);
  }
  return [...names].flatMap((n) => [n, `${n}/*`]);
}

async function build(): Promise<void> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    absWorkingDir: relayDir,
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    external: await externalPackages(),
    metafile: true,
    write: false,
    logLevel: "silent",
    // Bundled CommonJS helpers need `require` in an ES module.
    banner: {
      js: "import { createRequire as __gosipRequire } from 'node:module'; const require = __gosipRequire(import.meta.url);",
    },
  });
  // Written beside and renamed into place: a concurrent start never loads half a bundle.
  const tmp = `${outFile}.${process.pid}.tmp`;
  const output = result.outputFiles?.[0];
  if (!output) throw new Error("esbuild produced no bundle");
  await writeFile(tmp, output.contents);
  await rename(tmp, outFile);
  const inputs: Manifest["inputs"] = {};
  // metafile paths are relative to absWorkingDir (relay/), e.g. "src/main.ts", "../drizzle/src/index.ts".
  for (const input of Object.keys(result.metafile.inputs)) {
    const s = await stat(join(relayDir, input));
    inputs[input] = { size: s.size, mtimeMs: s.mtimeMs };
  }
  await writeFile(`${manifestFile}.${process.pid}.tmp`, JSON.stringify({ v: 1, inputs } satisfies Manifest));
  await rename(`${manifestFile}.${process.pid}.tmp`, manifestFile);
}

let prepared: Promise<string | undefined> | undefined;

/**
 * The path of an up-to-date relay bundle (built when needed), or undefined when it cannot be built
 * (then run relay/src/main.ts through tsx). Memoised: start it early, await it when spawning.
 */
export function prepareRelayBundle(): Promise<string | undefined> {
  prepared ??= (async () => {
    try {
      await mkdir(buildDir, { recursive: true });
      if (!(await upToDate())) await build();
      return outFile;
    } catch {
      return undefined;
    }
  })();
  return prepared;
}
