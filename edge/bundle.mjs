// One ES-module bundle of a GoSIP entry point, built by esbuild and kept up to date: used by
// `npm start` (edge/start.mjs, the edge) and by the embedded relay (relay-bundle.ts). Plain
// JavaScript because start.mjs runs it before anything is compiled.
//
// The bundle holds GoSIP's own workspaces; npm packages stay imports resolved from node_modules
// (so the bundle lives inside the package it bundles). A manifest of every input's size and mtime
// says when to rebuild; bundle and manifest are written beside and renamed into place, so a
// concurrent start never loads half a bundle.
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

async function upToDate(workDir, outFile, manifestFile) {
  try {
    const manifest = JSON.parse(await readFile(manifestFile, "utf8"));
    if (manifest.v !== 1) return false;
    await stat(outFile);
    for (const [file, seen] of Object.entries(manifest.inputs)) {
      const now = await stat(join(workDir, file));
      if (now.size !== seen.size || now.mtimeMs !== seen.mtimeMs) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** npm dependencies of these package.json files (paths relative to workDir), as esbuild externals. */
async function externals(workDir, packageFiles) {
  const names = new Set();
  for (const pkg of packageFiles) {
    const json = JSON.parse(await readFile(join(workDir, pkg), "utf8"));
    for (const name of Object.keys(json.dependencies ?? {})) if (!name.startsWith("@gosip/")) names.add(name);
  }
  return [...names].flatMap((n) => [n, `${n}/*`]);
}

async function writeAtomically(file, contents) {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, contents);
  await rename(tmp, file);
}

/**
 * Builds `<workDir>/.build/<name>.mjs` from `entry` unless it is current; answers its path.
 * Throws when esbuild cannot build it (callers then run the sources through tsx).
 */
export async function ensureBundle({ workDir, entry, name, packageFiles }) {
  const buildDir = join(workDir, ".build");
  const outFile = join(buildDir, `${name}.mjs`);
  const manifestFile = join(buildDir, `${name}.manifest.json`);
  if (await upToDate(workDir, outFile, manifestFile)) return outFile;
  await mkdir(buildDir, { recursive: true });
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    absWorkingDir: workDir,
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    external: await externals(workDir, packageFiles),
    metafile: true,
    write: false,
    logLevel: "silent",
    // Bundled CommonJS helpers need `require` in an ES module.
    banner: {
      js: "import { createRequire as __gosipRequire } from 'node:module'; const require = __gosipRequire(import.meta.url);",
    },
  });
  const output = result.outputFiles?.[0];
  if (!output) throw new Error("esbuild produced no bundle");
  await writeAtomically(outFile, output.contents);
  const inputs = {};
  // metafile paths are relative to absWorkingDir, e.g. "src/main.ts", "../drizzle/src/index.ts".
  for (const input of Object.keys(result.metafile.inputs)) {
    const s = await stat(join(workDir, input));
    inputs[input] = { size: s.size, mtimeMs: s.mtimeMs };
  }
  await writeAtomically(manifestFile, JSON.stringify({ v: 1, inputs }));
  return outFile;
}
