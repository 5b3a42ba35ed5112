// drizzle-kit configuration: `npm run db:generate -w @gosip/drizzle` writes SQL
// migrations to drizzle/migrations and bundles them for runtimes without a filesystem.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/schema/index.ts",
  out: "./migrations",
  strict: true,
  verbose: true,
});
