/**
 * `npm run twilio-sim`: starts the whole Twilio simulator on loopback — the REST
 * server and the call side (SIP for the relay, the SIP Domain, the simulated
 * PSTN) over one state — and prints what the edge and the relay need to talk to
 * it: base URL, the fake account SID and token, a line of environment variables
 * to copy, and the SIP port. Options: --port N (REST; default a free port),
 * --sip-port N, --account-sid AC…, --auth-token …, --number +1… (an owned
 * number, repeatable). Runs until Ctrl-C.
 */
import { parseArgs } from "node:util";
import { describeTwilioSimCalls } from "./calls/index.ts";
import { startFullTwilioSim } from "./index.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "sip-port": { type: "string" },
    "account-sid": { type: "string" },
    "auth-token": { type: "string" },
    number: { type: "string", multiple: true },
  },
});

function portOption(name: string, raw: string | undefined): number {
  const port = raw === undefined ? 0 : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`twilio-sim: ${name} must be a port number (got ${raw ?? ""})`);
    process.exit(2);
  }
  return port;
}

const port = portOption("--port", values.port);
const sipPort = portOption("--sip-port", values["sip-port"]);
const accountSid = values["account-sid"];
if (accountSid !== undefined && !/^AC[0-9a-f]{32}$/.test(accountSid)) {
  console.error("twilio-sim: --account-sid must be AC followed by 32 lowercase hex digits");
  process.exit(2);
}
for (const n of values.number ?? [])
  if (!/^\+[1-9]\d{6,14}$/.test(n)) {
    console.error(`twilio-sim: --number must be an E.164 number such as +14155550100 (got ${n})`);
    process.exit(2);
  }

const sim = await startFullTwilioSim({
  port,
  calls: { sipPort },
  ...(accountSid ? { accountSid } : {}),
  ...(values["auth-token"] ? { authToken: values["auth-token"] } : {}),
});
const { rest } = sim;
for (const phoneNumber of values.number ?? []) rest.state.addIncomingNumber({ phoneNumber });

console.log("Twilio simulator (fake account; nothing here reaches Twilio)");
console.log(`  REST base URL: ${rest.baseUrl}`);
console.log(`  account SID:   ${rest.state.accountSid}`);
console.log(`  auth token:    ${rest.state.authToken}`);
console.log(`  state:         ${rest.baseUrl}/__sim/state   faults: POST ${rest.baseUrl}/__sim/faults`);
for (const line of describeTwilioSimCalls(sim.calls)) console.log(line);
console.log("Point the edge at it with:");
console.log(
  `  TWILIO_API_BASE=${rest.baseUrl} TWILIO_ACCOUNT_SID=${rest.state.accountSid} TWILIO_AUTH_TOKEN=${rest.state.authToken}`,
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
