/**
 * `npm run twilio-sim`: starts the Twilio simulator on loopback and prints what
 * the edge needs to talk to it (base URL, the fake account SID and token, a line
 * of environment variables to copy). Options: --port N (default a free port),
 * --account-sid AC…, --auth-token …, --number +1… (an owned number, repeatable).
 * Runs until Ctrl-C.
 */
import { parseArgs } from "node:util";
import { startTwilioSim } from "./server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "account-sid": { type: "string" },
    "auth-token": { type: "string" },
    number: { type: "string", multiple: true },
  },
});

const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`twilio-sim: --port must be a port number (got ${values.port ?? ""})`);
  process.exit(2);
}
const accountSid = values["account-sid"];
if (accountSid !== undefined && !/^AC[0-9a-f]{32}$/.test(accountSid)) {
  console.error("twilio-sim: --account-sid must be AC followed by 32 lowercase hex digits");
  process.exit(2);
}

const sim = await startTwilioSim({
  port,
  ...(accountSid ? { accountSid } : {}),
  ...(values["auth-token"] ? { authToken: values["auth-token"] } : {}),
});
for (const phoneNumber of values.number ?? []) sim.state.addIncomingNumber({ phoneNumber });

console.log("Twilio simulator (fake account; nothing here reaches Twilio)");
console.log(`  REST base URL: ${sim.baseUrl}`);
console.log(`  account SID:   ${sim.state.accountSid}`);
console.log(`  auth token:    ${sim.state.authToken}`);
console.log(`  state:         ${sim.baseUrl}/__sim/state   faults: POST ${sim.baseUrl}/__sim/faults`);
console.log("Point the edge at it with:");
console.log(
  `  TWILIO_API_BASE=${sim.baseUrl} TWILIO_ACCOUNT_SID=${sim.state.accountSid} TWILIO_AUTH_TOKEN=${sim.state.authToken}`,
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await sim.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
