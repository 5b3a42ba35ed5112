// Writes src/migrations.generated.ts from the migrations folder (run after drizzle-kit generate).
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { readMigrationsFolder, renderMigrationsModule } from "../src/migrations-source.ts";

const target = fileURLToPath(new URL("../src/migrations.generated.ts", import.meta.url));
const migrations = await readMigrationsFolder();
await writeFile(target, renderMigrationsModule(migrations));
console.log(`bundled ${migrations.length} migration(s) into src/migrations.generated.ts`);
