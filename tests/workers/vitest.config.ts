/**
 * Vitest project "workers": the edge Worker (wrangler.toml: main, assets, Durable
 * Object) runs inside workerd via @cloudflare/vitest-pool-workers, against the
 * Hrana test server that global-setup.ts starts in Node. Run alone with
 * `npx vitest run --project workers` or `npm run test:workers`.
 */
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineProject } from "vitest/config";

// Offline: no fetch of Cloudflare's request.cf data, no telemetry.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
process.env.WRANGLER_SEND_METRICS ??= "false";

const here = fileURLToPath(new URL(".", import.meta.url).href);
const wranglerToml = fileURLToPath(new URL("../../wrangler.toml", import.meta.url).href);

export default defineProject({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: wranglerToml },
      remoteBindings: false,
      miniflare: {
        // Secrets on a real deployment; here they point the Worker at the Hrana test server.
        bindings: {
          DATABASE_URL: inject("hranaUrl"),
          DATABASE_AUTH_TOKEN: inject("hranaToken"),
          // Fake Twilio credentials (secrets on a real deployment) so webhook signatures can be checked.
          TWILIO_ACCOUNT_SID: "AC0000000000000000000000000000beef",
          TWILIO_AUTH_TOKEN: "workers-test-auth-token",
        },
      },
    })),
  ],
  test: {
    name: "workers",
    root: here,
    // Top level only: node/ holds Node-side tests of the deploy bundle (project "int").
    include: ["*.test.ts"],
    globalSetup: ["./global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
