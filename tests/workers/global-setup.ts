/**
 * Runs in Node before the workerd tests: makes sure the assets directory exists
 * (placeholder UI) and starts the Hrana-over-HTTP test server on a fresh file
 * database. Its URL and token become the Worker's DATABASE_URL / DATABASE_AUTH_TOKEN.
 * Also starts a loopback HTTP recorder standing in for the services the outbox
 * calls (Gotify, Postmark): it answers 200 and lists what it received.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureAssets } from "../../edge/src/platform/workers/ensure-assets.ts";
import { startHranaServer } from "../hrana/server.ts";
import { startHttpRecorder } from "./http-recorder.ts";

declare module "vitest" {
  export interface ProvidedContext {
    hranaUrl: string;
    hranaToken: string;
    /** Base URL of the HTTP recorder (see http-recorder.ts). */
    recorderUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureAssets();
  const dir = await mkdtemp(join(tmpdir(), "gosip-workers-"));
  const token = randomBytes(16).toString("hex");
  const server = await startHranaServer({ dbPath: join(dir, "edge.db"), authToken: token });
  project.provide("hranaUrl", server.url);
  project.provide("hranaToken", token);
  const recorder = await startHttpRecorder();
  project.provide("recorderUrl", recorder.url);
  return async () => {
    await recorder.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  };
}
