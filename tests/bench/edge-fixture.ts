/**
 * What the API benchmarks share: the real Node edge (startNodeEdge on a fresh libSQL
 * file database in a temp folder, quiet logs) with an admin signed in and a data set
 * of devices created through the API, plus a bare hono app on its own
 * @hono/node-server as the baseline measured in the same run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { devices } from "@gosip/drizzle";
import { createAdaptorServer } from "@hono/node-server";
import { like } from "drizzle-orm";
import { Hono } from "hono";
import { type NodeEdge, startNodeEdge } from "../../edge/src/platform/node/server.ts";
import type { Logger } from "../../edge/src/platform/types.ts";

/** Name prefix of the devices a create benchmark adds (removed by `dropCreated`). */
export const CREATED_NAME_PREFIX = "Bench phone ";

const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface BenchEdge {
  edge: NodeEdge;
  /** The bare hono baseline: `GET /` answers `{ ok: true }`. */
  bare: Hono;
  barePort: number;
  /** The admin's session cookie (`gosip_session=…`). */
  cookie: string;
  /** Headers of a state-changing JSON request as the admin. */
  auth: Record<string, string>;
  /** Id of the last device of the data set. */
  deviceId: string;
  /** Deletes the devices a create benchmark added, so every round lists the same rows. */
  dropCreated(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the edge and the baseline; signs an admin in and creates `deviceCount` devices. */
export async function startBenchEdge(name: string, deviceCount: number): Promise<BenchEdge> {
  const dataDir = await mkdtemp(join(tmpdir(), `gosip-${name}-`));
  const edge = await startNodeEdge(
    { GOSIP_DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "error" },
    { logger: quietLogger },
  );
  const bare = new Hono();
  bare.get("/", (c) => c.json({ ok: true }));
  const bareServer = createAdaptorServer({ fetch: bare.fetch }) as Server;
  await new Promise<void>((resolve) => bareServer.listen(0, "127.0.0.1", resolve));
  const close = async () => {
    bareServer.closeAllConnections();
    await new Promise<void>((resolve) => bareServer.close(() => resolve()));
    await edge.close(1000);
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const setup = await edge.app.request("/api/setup", {
      method: "POST",
      headers: { "content-type": "application/json", "x-gosip-csrf": "1" },
      body: JSON.stringify({ email: "bench@example.com", password: "bench-password" }),
    });
    if (setup.status !== 201) throw new Error(`setup failed: ${setup.status} ${await setup.text()}`);
    const cookie = (setup.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
    const auth = { cookie, "x-gosip-csrf": "1", "content-type": "application/json" };
    let deviceId = "";
    for (let i = 0; i < deviceCount; i++) {
      const res = await edge.app.request("/api/devices", {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ name: `Desk phone ${i + 1}` }),
      });
      if (res.status !== 201) throw new Error(`device create failed: ${res.status} ${await res.text()}`);
      deviceId = ((await res.json()) as { id: string }).id;
    }
    return {
      edge,
      bare,
      barePort: (bareServer.address() as AddressInfo).port,
      cookie,
      auth,
      deviceId,
      dropCreated: async () => {
        await edge.deps.db.delete(devices).where(like(devices.name, `${CREATED_NAME_PREFIX}%`));
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The machine's load average, as the benchmarks print it before and after. */
export function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");
}

/** Runs a benchmark's main and exits once done: a stray keep-alive socket or timer must not keep it alive. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
