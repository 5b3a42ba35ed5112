/**
 * The fallback deployment up to the one call that leaves for Twilio: the plan,
 * the function sources read from twilio-functions/, the library's configuration,
 * the library itself loading on Node (and pointing only at Twilio's host), and
 * the step's bookkeeping around the seam (a deployer that stands in for
 * `deployProject`, the only part that cannot run offline).
 */
import { readdir } from "node:fs/promises";
import { systemEvents } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readSetting, writeSetting } from "../settings/store.ts";
import { createTestEdge, type TestEdge } from "../test-support.ts";
import {
  type DeployCredentials,
  deployProjectConfig,
  type FallbackDeployer,
  FallbackDeployUnavailable,
  readFallbackSources,
  SKIPPED_FOR_API_BASE,
  serverlessApiDeployer,
} from "./fallback-deploy.ts";
import { FALLBACK_FUNCTIONS, fallbackDeployPlan, fallbackUrlOf } from "./fallback-plan.ts";
import { deployFallbackStep } from "./fallback-step.ts";
import { selectNumbers } from "./numbers-step.ts";
import { fakeSid, TwilioFixture } from "./twilio-fixture.ts";
import { setNumberWebhooks } from "./webhooks-step.ts";

const credentials = { accountSid: fakeSid("AC"), authToken: "f".repeat(32), apiBase: undefined };

describe("fallbackDeployPlan", () => {
  it("names the service, its protected functions, runtime and environment", () => {
    const plan = fallbackDeployPlan({
      installationName: "Smith Office",
      forwardSmsTo: null,
      serviceSid: undefined,
    });
    expect(plan).toMatchObject({
      serviceName: "gosip-fallback",
      serviceSid: undefined,
      functionsEnv: "",
      runtime: "node22",
      pkgJson: { dependencies: {} },
    });
    expect(plan.functions.map((f) => [f.path, f.access])).toEqual([
      ["/voicemail-fallback", "protected"],
      ["/sms-fallback", "protected"],
    ]);
    expect(plan.env).toEqual({
      GREETING:
        "You have reached Smith Office. Nobody can take your call right now. Please leave a message after the tone.",
      MAX_RECORDING_SECONDS: "180",
      FORWARD_SMS_TO: "none",
    });
    const forwarding = fallbackDeployPlan({
      installationName: "x",
      forwardSmsTo: "+15559998888",
      serviceSid: "ZS1",
    });
    expect(forwarding.env.FORWARD_SMS_TO).toBe("+15559998888");
    expect(forwarding.serviceSid).toBe("ZS1");
  });

  it("derives the Voice Fallback URL from the service's domain", () => {
    expect(fallbackUrlOf("gosip-fallback-1234.twil.io")).toBe(
      "https://gosip-fallback-1234.twil.io/voicemail-fallback",
    );
  });
});

describe("the deployment's files and configuration", () => {
  it("plans every function file of twilio-functions/ and reads their sources", async () => {
    const dir = new URL("../../../twilio-functions/functions/", import.meta.url);
    const onDisk = (await readdir(dir)).filter((f) => f.endsWith(".js")).sort();
    expect(FALLBACK_FUNCTIONS.map((f) => f.file.replace("functions/", "")).sort()).toEqual(onDisk);

    const plan = fallbackDeployPlan({ installationName: "GoSIP", forwardSmsTo: null, serviceSid: undefined });
    const sources = await readFallbackSources(plan);
    expect(sources.get("voicemail-fallback")).toContain("exports.handler");
    expect(sources.get("voicemail-fallback")).toContain("twiml.record(");
    expect(sources.get("sms-fallback")).toContain("MessagingResponse");

    const config = deployProjectConfig(plan, sources, credentials);
    expect(config).toMatchObject({
      username: credentials.accountSid,
      password: credentials.authToken,
      serviceName: "gosip-fallback",
      functionsEnv: "",
      runtime: "node22",
      overrideExistingService: true,
      assets: [],
      env: plan.env,
    });
    expect("serviceSid" in config).toBe(false);
    expect(config.functions.map((f) => ({ name: f.name, path: f.path, access: f.access }))).toEqual([
      { name: "voicemail-fallback", path: "/voicemail-fallback", access: "protected" },
      { name: "sms-fallback", path: "/sms-fallback", access: "protected" },
    ]);
    expect(config.functions[0]?.content).toBe(sources.get("voicemail-fallback"));
    const again = deployProjectConfig({ ...plan, serviceSid: "ZS0" }, sources, credentials);
    expect(again).toMatchObject({ serviceSid: "ZS0" });
    expect(() => deployProjectConfig(plan, new Map(), credentials)).toThrow(/no source/);
  });

  it("loads @twilio-labs/serverless-api on Node, whose client only knows Twilio's host", async () => {
    const api = await import("@twilio-labs/serverless-api");
    const client = new api.TwilioServerlessApiClient({ username: credentials.accountSid, password: "x" });
    // No option moves it: this is why the simulator cannot receive the deployment.
    expect(String(client.getClient().defaults.options.prefixUrl)).toMatch(
      /^https:\/\/serverless\.twilio\.com\/v1\/?$/,
    );
  });

  it("refuses to deploy when TWILIO_API_BASE is set, before any request", async () => {
    const plan = fallbackDeployPlan({ installationName: "GoSIP", forwardSmsTo: null, serviceSid: undefined });
    const attempt = serverlessApiDeployer.deploy(plan, { ...credentials, apiBase: "http://127.0.0.1:9" });
    await expect(attempt).rejects.toBeInstanceOf(FallbackDeployUnavailable);
    await expect(attempt).rejects.toMatchObject({ kind: "api_base", message: SKIPPED_FOR_API_BASE });
  });
});

describe("deployFallbackStep around the seam", () => {
  let twilio: TwilioFixture;
  let t: TestEdge;
  const deployed: { plan: ReturnType<typeof fallbackDeployPlan>; credentials: DeployCredentials }[] = [];
  const serviceSid = fakeSid("ZS");
  const fakeDeployer: FallbackDeployer = {
    async deploy(plan, creds) {
      deployed.push({ plan, credentials: creds });
      return { serviceSid, domain: "gosip-fallback-4321.twil.io", buildSid: fakeSid("ZB") };
    },
  };

  beforeEach(async () => {
    deployed.length = 0;
    twilio = await new TwilioFixture().start();
    t = await createTestEdge({
      publicUrl: "https://pbx.example.test",
      env: { TWILIO_API_BASE: twilio.baseUrl },
    });
    await writeSetting(t.deps, "twilio", {
      v: 1,
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
    });
  });

  afterEach(async () => {
    await t.close();
    await twilio.stop();
  });

  it("saves the service and its URL, updates it in place later, and re-points the numbers", async () => {
    const first = await deployFallbackStep(t.deps, { forwardSmsTo: "+15559998888" }, fakeDeployer);
    expect(first).toMatchObject({
      deployed: true,
      skipped: null,
      serviceSid,
      fallbackUrl: "https://gosip-fallback-4321.twil.io/voicemail-fallback",
      numbers: [],
    });
    expect(first.progress.completedSteps).toEqual(["fallback"]);
    expect(deployed[0]?.plan.serviceSid).toBeUndefined();
    expect(deployed[0]?.plan.env.FORWARD_SMS_TO).toBe("+15559998888");
    expect(deployed[0]?.credentials).toMatchObject({
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
    });
    expect(await readSetting(t.db, "twilio")).toMatchObject({
      fallbackServiceSid: serviceSid,
      fallbackUrl: "https://gosip-fallback-4321.twil.io/voicemail-fallback",
    });
    const events = await t.db
      .select()
      .from(systemEvents)
      .where(eq(systemEvents.type, "twilio.fallback_deployed"));
    expect(events).toHaveLength(1);

    // After the webhooks step, a new deployment also sets each number's fallback URLs.
    const number = twilio.addNumber("+15550001111");
    await selectNumbers(t.deps, [number.sid]);
    await setNumberWebhooks(t.deps);
    number.voice_fallback_url = null;
    const second = await deployFallbackStep(t.deps, {}, fakeDeployer);
    expect(deployed[1]?.plan.serviceSid).toBe(serviceSid);
    expect(second.numbers).toHaveLength(1);
    expect(number.voice_fallback_url).toBe("https://gosip-fallback-4321.twil.io/voicemail-fallback");
    expect(number.sms_fallback_url).toBe("https://gosip-fallback-4321.twil.io/sms-fallback");
  });

  it("answers 502 and saves nothing when the deployment fails", async () => {
    const failing: FallbackDeployer = {
      async deploy() {
        throw new Error("Response code 503 (Service Unavailable)");
      },
    };
    await expect(deployFallbackStep(t.deps, {}, failing)).rejects.toMatchObject({
      status: 502,
      code: "unavailable",
      message: expect.stringMatching(/503/),
    });
    expect((await readSetting(t.db, "twilio"))?.fallbackUrl).toBeUndefined();
    expect((await readSetting(t.db, "setup")).completedSteps).toEqual([]);
  });

  it("says why on a runtime that cannot deploy, and leaves the step to do", async () => {
    const unavailable: FallbackDeployer = {
      async deploy() {
        throw new FallbackDeployUnavailable("needs Node", "runtime");
      },
    };
    const res = await deployFallbackStep(t.deps, {}, unavailable);
    expect(res).toMatchObject({ deployed: false, skipped: "needs Node", fallbackUrl: null });
    expect(res.progress.completedSteps).toEqual([]);
  });
});
