/**
 * Local run check: `twilio-run start` (the Twilio Serverless Toolkit's local
 * runtime) serves functions/ on a loopback port, and the TwiML Twilio would get
 * is fetched over HTTP with Twilio's form POST. Proves the files load as real
 * Twilio Functions (CommonJS, `Twilio` global, `.protected.js` naming), not
 * only under the unit test's harness.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(dirname(require.resolve("twilio-run/package.json")), "bin", "twilio-run.js");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

let child: ChildProcess | undefined;
let base = "";
let output = "";
let envDir = "";

async function post(path: string, form: Record<string, string>): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("TWILIO_")) env[k] = v;
  // The functions' context comes from a .env file, as the deployment's environment variables.
  envDir = await mkdtemp(join(tmpdir(), "gosip-functions-"));
  const envFile = join(envDir, ".env");
  await writeFile(envFile, 'GREETING="You have reached the test line."\nFORWARD_SMS_TO=+15559998888\n');
  const args = [bin, "start", "--port", String(port), "--env", envFile, "--no-fork-process"];
  child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...env, CI: "true" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`twilio-run exited: ${output}`);
    try {
      const res = await post("/voicemail-fallback", { CallSid: "CA0" });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`twilio-run did not start in 60 s: ${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

afterAll(async () => {
  // The whole process group this test started (twilio-run and anything it forked).
  if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGTERM");
  if (envDir) await rm(envDir, { recursive: true, force: true });
});

describe("twilio-run start", () => {
  it("serves the voicemail fallback's TwiML with the deployed environment", async () => {
    const res = await post("/voicemail-fallback", {
      CallSid: "CA0123456789abcdef0123456789abcdef",
      From: "+15557654321",
      To: "+15550001111",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/xml/);
    const xml = await res.text();
    expect(xml).toContain("<Say>You have reached the test line.</Say>");
    expect(xml).toContain('<Record action="voicemail-fallback?recorded=1"');
  });

  it("serves the SMS fallback, forwarding to the configured number", async () => {
    const res = await post("/sms-fallback", {
      MessageSid: "SM0123456789abcdef0123456789abcdef",
      From: "+15557654321",
      To: "+15550001111",
      Body: "hello",
      NumMedia: "0",
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(
      '<Message to="+15559998888" from="+15550001111"><Body>From +15557654321: hello</Body></Message>',
    );
  });
});
