// `npm start` as a user runs it: a child process on a fresh data directory,
// healthy within 3 s, database file created and migrated; a bad variable exits 1
// naming it; SIGTERM shuts down cleanly.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundledMigrations } from "@gosip/drizzle/migrations.generated";
import { createClient } from "@libsql/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const edgeDir = fileURLToPath(new URL("../../../", import.meta.url));

let dataDir: string;
let child: ChildProcess | undefined;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "gosip-edge-start-"));
});
afterEach(async () => {
  // The whole process group: the edge, the embedded relay and its rtpengine too.
  if (child && child.exitCode === null && child.pid) process.kill(-child.pid, "SIGKILL");
  child = undefined;
  await rm(dataDir, { recursive: true, force: true });
});

/** The same command `npm start -w @gosip/edge` runs, from the edge folder. */
function start(env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  let out = "";
  const proc = spawn(process.execPath, ["start.mjs"], {
    cwd: edgeDir,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child = proc;
  return { proc, output: () => out };
}

function exitOf(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    else proc.once("exit", (code) => resolve(code));
  });
}

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("npm start (Node edge)", () => {
  it("answers 200 on /api/system/health within 3 s of start, with a migrated database file", async () => {
    const started = performance.now();
    const { proc, output } = start({ GOSIP_DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1" });

    const port = await poll("the listening log line", 10_000, async () => {
      const m = /"port":(\d+),.*"msg":"listening"/.exec(output());
      return m ? Number(m[1]) : undefined;
    });
    await poll("a 200 health answer", 10_000, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/api/system/health`);
      return res.status === 200 ? res : undefined;
    });
    const elapsedMs = performance.now() - started;
    console.log(`npm start → first 200 on /api/system/health: ${elapsedMs.toFixed(0)} ms`);
    expect(elapsedMs).toBeLessThan(3000);

    const index = await fetch(`http://127.0.0.1:${port}/`);
    expect(await index.text()).toContain('href="/api/docs"');

    const dbFile = join(dataDir, "gosip.db");
    expect(existsSync(dbFile)).toBe(true);
    const db = createClient({ url: `file:${dbFile}` });
    try {
      const applied = await db.execute("SELECT count(*) AS n FROM __drizzle_migrations");
      expect(Number(applied.rows[0]?.n)).toBe(bundledMigrations.length);
      const users = await db.execute("SELECT count(*) AS n FROM users");
      expect(Number(users.rows[0]?.n)).toBe(0);
    } finally {
      db.close();
    }

    proc.kill("SIGTERM");
    expect(await exitOf(proc), output().slice(-3000)).toBe(0);
    expect(output()).toContain('"msg":"shutting down"');
  });

  it("runs the PBX too: the embedded relay starts, links to the edge with a provisioned token, and stops with it", async () => {
    const { proc, output } = start({
      GOSIP_DATA_DIR: dataDir,
      PORT: "0",
      HOST: "127.0.0.1",
      SIP_HOST: "127.0.0.1",
      SIP_PORT: "0",
      RTP_PORT_MIN: "35000",
      RTP_PORT_MAX: "35100",
      RELAY_METRICS_PORT: "0",
    });
    const relayPid = await poll("the embedded relay's pid", 10_000, async () => {
      const m = /"pid":(\d+),[^\n]*"msg":"embedded relay started"/.exec(output());
      return m ? Number(m[1]) : undefined;
    });
    await poll("the relay's link to the edge", 60_000, async () =>
      output().includes('"msg":"edge link up"') ? true : undefined,
    );
    expect(output()).toContain('"msg":"relay started"');
    // The token the relay used is stored hashed; the relay keeps it in its data folder only.
    expect(existsSync(join(dataDir, "relay", "token"))).toBe(true);
    const db = createClient({ url: `file:${join(dataDir, "gosip.db")}` });
    try {
      const tokens = await db.execute("SELECT name FROM relay_tokens WHERE revoked_at IS NULL");
      expect(tokens.rows.map((r) => r.name)).toEqual(["embedded relay"]);
      const relay = await db.execute("SELECT value FROM settings WHERE key = 'relay'");
      const value = JSON.parse(String(relay.rows[0]?.value)) as {
        inboundUsername?: string;
        inboundPassword?: string;
      };
      expect(value.inboundUsername).toMatch(/^twilio-/);
      expect(value.inboundPassword?.length).toBeGreaterThanOrEqual(20);
    } finally {
      db.close();
    }

    proc.kill("SIGTERM");
    expect(await exitOf(proc), output().slice(-3000)).toBe(0);
    // the relay child is gone with the edge (signal 0 probes for the pid)
    expect(() => process.kill(relayPid, 0)).toThrow();
  });

  it("keeps relative paths relative to where npm was started (INIT_CWD): ./data by default", async () => {
    const { proc, output } = start({ INIT_CWD: dataDir, PORT: "0", HOST: "127.0.0.1" });
    await poll("the listening log line", 10_000, async () =>
      output().includes('"listening"') ? true : undefined,
    );
    expect(existsSync(join(dataDir, "data", "gosip.db"))).toBe(true);
    proc.kill("SIGTERM");
    expect(await exitOf(proc), output().slice(-3000)).toBe(0);
  });

  it.each([
    ["PORT", "not-a-number"],
    ["PUBLIC_URL", "pbx.example.com"],
    ["LOG_LEVEL", "loud"],
  ])("exits 1 naming %s when it is invalid", async (name, value) => {
    const { proc, output } = start({ GOSIP_DATA_DIR: dataDir, PORT: "0", [name]: value });
    expect(await exitOf(proc)).toBe(1);
    expect(output()).toContain("Invalid configuration");
    expect(output()).toContain(`${name}:`);
  });
});
