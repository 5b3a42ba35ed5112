/**
 * Build step for `wrangler deploy` / `wrangler dev` (wrangler.toml [build]): the
 * Worker serves ui/dist as static assets, and wrangler refuses a missing assets
 * directory. When the UI has not been built, write a minimal page that says so,
 * so the API can be deployed and tested on its own. A real UI build is never
 * overwritten. Usage: `tsx edge/src/platform/workers/ensure-assets.ts [dir]`.
 */
import { access, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url).href);

const placeholder = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>GoSIP</title></head>
<body>
<h1>GoSIP</h1>
<p>The API is running. The web UI has not been built: run <code>npm run build -w @gosip/ui</code> and deploy again.</p>
</body>
</html>
`;

/** Ensure `<dir>/index.html` exists; returns true when the placeholder was written. */
export async function ensureAssets(dir: string = join(repoRoot, "ui", "dist")): Promise<boolean> {
  const index = join(dir, "index.html");
  try {
    await access(index);
    return false;
  } catch {
    await mkdir(dir, { recursive: true });
    await writeFile(index, placeholder);
    return true;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2] ? resolve(process.argv[2]) : undefined;
  if (await ensureAssets(dir)) console.log("ui/dist was missing: wrote a placeholder index.html");
}
