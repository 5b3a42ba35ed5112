// @twilio-labs/serverless-api's real deploy sequence against the simulator.
// The library builds its URLs from Twilio's host names only (serverless.twilio.com
// and serverless-upload.twilio.com, no base URL option), so this test swaps in a
// copy of its HTTP client whose beforeRequest hook sends every request to the
// simulator on loopback instead; everything else is the library's own code:
// find or create the service and environment, create functions and assets,
// upload their versions as multipart, build, poll the build, deploy, set
// variables — and a second deploy that reuses what the first made.
import { TwilioServerlessApiClient } from "@twilio-labs/serverless-api";
import type { Got } from "got";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTwilioSim, type TwilioSim } from "./server.ts";

let sim: TwilioSim;

beforeAll(async () => {
  sim = await startTwilioSim();
});

afterAll(async () => {
  await sim.close();
});

/** A serverless-api client whose requests to *.twilio.com reach the simulator. */
function clientForSim(): TwilioServerlessApiClient {
  const client = new TwilioServerlessApiClient({
    username: sim.state.accountSid,
    password: sim.state.authToken,
  });
  const inner = client as unknown as { client: Got };
  const target = new URL(sim.baseUrl);
  inner.client = client.getClient().extend({
    retry: { limit: 0 },
    hooks: {
      beforeRequest: [
        (options) => {
          const url = options.url;
          if (!(url instanceof URL) || !url.hostname.endsWith(".twilio.com"))
            throw new Error(`unexpected request to ${String(url)}`);
          url.protocol = target.protocol;
          url.host = target.host;
        },
      ],
    },
  });
  return client;
}

const FUNCTION_SOURCE = "exports.handler = (context, event, callback) => callback(null, 'fallback');\n";

describe("@twilio-labs/serverless-api deployProject", () => {
  it("deploys functions and assets to a new service, then redeploys into the same one", async () => {
    const client = clientForSim();
    const config = {
      username: sim.state.accountSid,
      password: sim.state.authToken,
      serviceName: "gosip-fallback",
      functionsEnv: "prod",
      env: { EDGE_URL: "https://gosip.example" },
      pkgJson: { dependencies: { twilio: "^5.0.0" } },
      functions: [
        {
          name: "voice-fallback",
          path: "/voice-fallback",
          access: "protected" as const,
          content: FUNCTION_SOURCE,
        },
        {
          name: "sms-fallback",
          path: "/sms-fallback",
          access: "protected" as const,
          content: FUNCTION_SOURCE,
        },
      ],
      assets: [{ name: "greeting.txt", path: "/greeting.txt", access: "public" as const, content: "hello" }],
      runtime: "node22",
      overrideExistingService: true,
    };
    const result = await client.deployProject(config);
    expect(result.serviceSid).toMatch(/^ZS[0-9a-f]{32}$/);
    expect(result.environmentSid).toMatch(/^ZE/);
    expect(result.buildSid).toMatch(/^ZB/);
    expect(result.domain).toMatch(/-prod\.twil\.io$/);

    const env = sim.state.serverlessEnvironments.get(result.environmentSid);
    expect(env?.build_sid).toBe(result.buildSid);
    const build = sim.state.serverlessBuilds.get(result.buildSid);
    expect(build?.status).toBe("completed");
    expect(build?.function_versions).toHaveLength(2);
    expect(build?.asset_versions).toHaveLength(1);
    expect(build?.dependencies).toContainEqual(expect.objectContaining({ name: "twilio" }));
    const versions = [...sim.state.serverlessFunctionVersions.values()];
    expect(versions.map((v) => [v.path, v.visibility]).sort()).toEqual([
      ["/sms-fallback", "protected"],
      ["/voice-fallback", "protected"],
    ]);
    expect(versions.every((v) => v.content === FUNCTION_SOURCE)).toBe(true);
    expect([...sim.state.serverlessVariables.values()].map((v) => [v.key, v.value])).toEqual([
      ["EDGE_URL", "https://gosip.example"],
    ]);
    expect(sim.state.requestsTo("POST", /\/Builds$/)).toHaveLength(1);
    expect(sim.state.requestsTo("GET", /\/Builds\/ZB\w+\/Status$/).length).toBeGreaterThanOrEqual(1);

    // The second run finds the service, environment and functions by name and makes a new build.
    const again = await client.deployProject({ ...config, env: { EDGE_URL: "https://gosip2.example" } });
    expect(again.serviceSid).toBe(result.serviceSid);
    expect(again.environmentSid).toBe(result.environmentSid);
    expect(again.buildSid).not.toBe(result.buildSid);
    expect(sim.state.serverlessServices.size).toBe(1);
    expect(sim.state.serverlessFunctions.size).toBe(2);
    expect(sim.state.serverlessEnvironments.get(result.environmentSid)?.build_sid).toBe(again.buildSid);
    expect([...sim.state.serverlessVariables.values()].map((v) => v.value)).toEqual([
      "https://gosip2.example",
    ]);
  });
});
