/**
 * The deployable artifact: `wrangler dev` bundles wrangler.toml's Worker with
 * esbuild exactly as `wrangler deploy` does (minified, [build] step, assets) and
 * runs it in workerd, against the Hrana test server. The vitest pool tests (one
 * folder up) use Vite's bundling instead, so this catches what only the real
 * bundle or the assets router would break. Runs in Node (project "int").
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HranaServer, startHranaServer } from "../../hrana/server.ts";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url).href);
const wranglerBin = join(repoRoot, "node_modules", ".bin", "wrangler");

let dir: string;
let hrana: HranaServer;
let wrangler: ChildProcess | undefined;
let base: string;
let output = "";

/** Start `wrangler dev` on a free port; resolves with its URL once it reports Ready. */
function startWranglerDev(databaseUrl: string, token: string): Promise<string> {
  const child = spawn(
    wranglerBin,
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      "0",
      "--persist-to",
      join(dir, "state"),
      "--show-interactive-dev-session=false",
      "--var",
      `DATABASE_URL:${databaseUrl}`,
      "--var",
      `DATABASE_AUTH_TOKEN:${token}`,
    ],
    {
      cwd: repoRoot,
      // Own process group, so the workerd child goes down with it.
      detached: true,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  wrangler = child;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (ready?.[1]) resolve(ready[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`wrangler dev exited with ${code}:\n${output}`)));
  });
}

/** Workerd's console output reaches us through wrangler's pipe, after the response that caused it. */
async function waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(output) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return output;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-wrangler-dev-"));
  const token = "dev-token";
  hrana = await startHranaServer({ dbPath: join(dir, "edge.db"), authToken: token });
  base = await startWranglerDev(hrana.url, token);
}, 90_000);

afterAll(async () => {
  const child = wrangler;
  if (child?.pid !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(-child.pid, "SIGTERM");
    await exited;
  }
  await hrana?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("wrangler dev (the deploy bundle in workerd)", () => {
  it("migrates the Hrana database and reports healthy as the workers runtime", async () => {
    const res = await fetch(`${base}/api/system/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      runtime: "workers",
      components: { database: { status: "ok" }, migrations: { status: "ok" } },
    });
    expect(await waitForOutput(/"msg":"database migrated"/)).toMatch(/"msg":"database migrated"/);
  });

  it("runs first-run setup against the database and then closes it", async () => {
    const setup = (body: unknown) =>
      fetch(`${base}/api/setup`, {
        method: "POST",
        headers: { "content-type": "application/json", "X-GoSIP-CSRF": "1", "CF-Connecting-IP": "192.0.2.9" },
        body: JSON.stringify(body),
      });
    const res = await setup({ email: "owner@example.test", password: "correct horse battery" });
    expect(res.status).toBe(201);
    expect(res.headers.get("set-cookie")).toMatch(/gosip_session=.+Secure/);
    expect((await setup({ email: "late@example.test", password: "correct horse battery" })).status).toBe(409);
  });

  it("serves the UI for browser navigation and keeps /api/* in the Worker", async () => {
    const page = await fetch(`${base}/devices/123`, {
      headers: { "Sec-Fetch-Mode": "navigate", Accept: "text/html" },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/GoSIP/);

    const api = await fetch(`${base}/api/devices/123`, { headers: { "Sec-Fetch-Mode": "navigate" } });
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ error: { code: "unauthorized" } });
  });
});
