/**
 * The whole Twilio simulator in one call: the REST server (server.ts) and the call side (calls/: the
 * call driver, the SIP Domain, the simulated PSTN) over one shared state. Run it directly
 * (`tsx tests/twilio-sim/index.ts [--port N] [--sip-port N] [--number +1…]`) to get both on loopback
 * with their ports printed; tests import `startFullTwilioSim`.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  describeTwilioSimCalls,
  startTwilioSimCalls,
  type TwilioSimCalls,
  type TwilioSimCallsOptions,
} from "./calls/index.ts";
import { startTwilioSim, type TwilioSim, type TwilioSimOptions } from "./server.ts";

export interface FullTwilioSim {
  rest: TwilioSim;
  calls: TwilioSimCalls;
  close(): Promise<void>;
}

/** REST server and call side, sharing one state. */
export async function startFullTwilioSim(
  options: TwilioSimOptions & { calls?: TwilioSimCallsOptions } = {},
): Promise<FullTwilioSim> {
  const rest = await startTwilioSim(options);
  try {
    const calls = await startTwilioSimCalls(rest, options.calls ?? {});
    return {
      rest,
      calls,
      async close() {
        await calls.close();
        await rest.close();
      },
    };
  } catch (err) {
    await rest.close();
    throw err;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      "sip-port": { type: "string" },
      number: { type: "string", multiple: true },
    },
  });
  const port = Number(values.port ?? 0);
  const sipPort = Number(values["sip-port"] ?? 0);
  for (const [name, p] of [
    ["--port", port],
    ["--sip-port", sipPort],
  ] as const) {
    if (!Number.isInteger(p) || p < 0 || p > 65_535) {
      console.error(`twilio-sim: ${name} must be a port number`);
      process.exit(2);
    }
  }
  const sim = await startFullTwilioSim({ port, calls: { sipPort } });
  for (const phoneNumber of values.number ?? []) sim.rest.state.addIncomingNumber({ phoneNumber });
  console.log("Twilio simulator (fake account; nothing here reaches Twilio)");
  console.log(`  REST base URL: ${sim.rest.baseUrl}`);
  for (const line of describeTwilioSimCalls(sim.calls)) console.log(line);
  console.log(`  account SID:   ${sim.rest.state.accountSid}`);
  console.log(`  auth token:    ${sim.rest.state.authToken}`);
  console.log(
    `  TWILIO_API_BASE=${sim.rest.baseUrl} TWILIO_ACCOUNT_SID=${sim.rest.state.accountSid} TWILIO_AUTH_TOKEN=${sim.rest.state.authToken}`,
  );
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await sim.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

const entry = process.argv[1];
if (entry && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))) await main();
