// `npm run db:generate -w @gosip/drizzle [-- --name what_changed]`: drizzle-kit
// writes the next migration, then every migration is bundled into
// src/migrations.generated.ts for runtimes without a filesystem.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { cwd: packageDir, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

run("npx", ["drizzle-kit", "generate", ...process.argv.slice(2)]);
run("npx", ["tsx", "scripts/bundle-migrations.ts"]);
run("npx", ["biome", "check", "--write", "src/migrations.generated.ts"]);
