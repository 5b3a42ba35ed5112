// Root test configuration: fast unit tests first, then integration tests that
// start real processes (sipp, rtpengine, the engine, Chromium) one file at a time.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["{drizzle,edge,relay,twilio-functions,ui}/src/**/*.test.ts"],
          exclude: ["**/*.int.test.ts", "**/node_modules/**"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "int",
          include: ["{drizzle,edge,relay,twilio-functions}/src/**/*.int.test.ts", "tests/**/*.test.ts"],
          exclude: ["**/node_modules/**", "tests/workers/*.test.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      "tests/workers/vitest.config.ts",
    ],
  },
});
