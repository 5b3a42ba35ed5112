// `npm start`: runs the Node edge from one esbuild bundle of edge/src/platform/node/main.ts
// (edge/.build/, rebuilt only when a source file changed), which starts in about half the time
// of loading the TypeScript sources through tsx. Plain JavaScript on purpose: it must run
// before anything is compiled. If the bundle cannot be built, the sources run through tsx.
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const edgeDir = dirname(fileURLToPath(import.meta.url));
const buildDir = join(edgeDir, ".build");
const outFile = join(buildDir, "main.mjs");
const manifestFile = join(buildDir, "manifest.json");
const entry = join(edgeDir, "src/platform/node/main.ts");

async function upToDate() {
  try {
    const manifest = JSON.parse(await readFile(manifestFile, "utf8"));
    if (manifest.v !== 1) return false;
    await stat(outFile);
    for (const [file, seen] of Object.entries(manifest.inputs)) {
      const now = await stat(join(edgeDir, file));
      if (now.size !== seen.size || now.mtimeMs !== seen.mtimeMs) return false;
    }
    return true;
  } catch {
    return false;
  }
}

async function externals() {
  const names = new Set();
  for (const pkg of ["package.json", "../drizzle/package.json"]) {
    const json = JSON.parse(await readFile(join(edgeDir, pkg), "utf8"));
    for (const name of Object.keys(json.dependencies ?? {})) if (!name.startsWith("@gosip/")) names.add(name);
  }
  return [...names].flatMap((n) => [n, `${n}/*`]);
}

async function build() {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    absWorkingDir: edgeDir,
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    external: await externals(),
    metafile: true,
    write: false,
    logLevel: "silent",
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
  const inputs = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    const s = await stat(join(edgeDir, input));
    inputs[input] = { size: s.size, mtimeMs: s.mtimeMs };
  }
  await writeFile(`${manifestFile}.${process.pid}.tmp`, JSON.stringify({ v: 1, inputs }));
  await rename(`${manifestFile}.${process.pid}.tmp`, manifestFile);
}

let bundled = false;
try {
  await mkdir(buildDir, { recursive: true });
  if (!(await upToDate())) await build();
  bundled = true;
} catch (err) {
  console.error(
    `GoSIP: running from sources (bundle not built: ${err instanceof Error ? err.message : err})`,
  );
}
if (bundled) {
  process.setSourceMapsEnabled?.(true);
  await import(pathToFileURL(outFile).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(entry).href);
}
