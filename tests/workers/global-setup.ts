/**
 * Runs in Node before the workerd tests: makes sure the assets directory exists
 * (placeholder UI) and starts the Hrana-over-HTTP test server on a fresh file
 * database. Its URL and token become the Worker's DATABASE_URL / DATABASE_AUTH_TOKEN.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureAssets } from "../../edge/src/platform/workers/ensure-assets.ts";
import { startHranaServer } from "../hrana/server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    hranaUrl: string;
    hranaToken: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureAssets();
  const dir = await mkdtemp(join(tmpdir(), "gosip-workers-"));
  const token = randomBytes(16).toString("hex");
  const server = await startHranaServer({ dbPath: join(dir, "edge.db"), authToken: token });
  project.provide("hranaUrl", server.url);
  project.provide("hranaToken", token);
  return async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  };
}
