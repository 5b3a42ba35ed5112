/**
 * Set-up shared by the SMS tests: a real edge (libSQL, file blobs) whose Twilio
 * credentials point at the loopback Twilio fixture, a hand-moved clock, a DID
 * ringing Alice's phone and another ringing Bob's, signed webhooks, and the
 * outbox runner driven by hand. Node only; imported by tests, never by the app.
 */
import { autoReplies, devices, dids } from "@gosip/drizzle";
import { afterEach, beforeEach } from "vitest";
import { runDueJobs } from "../jobs/runner.ts";
import {
  createTestEdge,
  createUser,
  signIn,
  TestClock,
  type TestEdge,
  type TestSession,
  type TestUser,
} from "../test-support.ts";
import { twilioSignature } from "../twilio/signature.ts";
import {
  FIXTURE_ACCOUNT_SID,
  FIXTURE_AUTH_TOKEN,
  startTwilioFixture,
  type TwilioFixture,
} from "./twilio-fixture.ts";

export const ALICE_DID = "+15550001111";
export const BOB_DID = "+15550002222";
export const PEER = "+15557654321";

export interface SmsWorld {
  t: TestEdge;
  clock: TestClock;
  twilio: TwilioFixture;
  admin: { user: TestUser; session: TestSession };
  alice: { user: TestUser; session: TestSession; deviceId: string };
  bob: { user: TestUser; session: TestSession; deviceId: string };
  aliceDid: { id: string; e164: string };
  bobDid: { id: string; e164: string };
}

let counter = 0;

async function userWithDevice(t: TestEdge, name: string, role: "admin" | "user" = "user") {
  const user = await createUser(t, { role, name });
  counter += 1;
  const [device] = await t.db
    .insert(devices)
    .values({
      userId: user.id,
      name: `${name}'s phone`,
      extension: String(100 + counter),
      sipUsername: `${name.toLowerCase()}-${counter}`,
      ha1Md5: "0".repeat(32),
      ha1Sha256: "0".repeat(64),
    })
    .returning({ id: devices.id });
  if (!device) throw new Error("device insert returned nothing");
  return { user, session: await signIn(t, user), deviceId: device.id };
}

/** Registers before/after hooks building a fresh world per test; `use` receives it. */
export function useSmsWorld(use: (w: SmsWorld) => void, clockStart = Date.now()): void {
  let world: SmsWorld | undefined;
  beforeEach(async () => {
    const clock = new TestClock(clockStart);
    // Twilio's clock is the edge's: message dates compare as they would between two synced hosts.
    const twilio = await startTwilioFixture({ now: () => clock.now() });
    const t = await createTestEdge({
      clock,
      env: {
        TWILIO_ACCOUNT_SID: FIXTURE_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: FIXTURE_AUTH_TOKEN,
        TWILIO_API_BASE: twilio.baseUrl,
      },
    });
    const adminUser = await createUser(t, { role: "admin", name: "Admin" });
    const admin = { user: adminUser, session: await signIn(t, adminUser) };
    const alice = await userWithDevice(t, "Alice");
    const bob = await userWithDevice(t, "Bob");
    const [aliceDid] = await t.db
      .insert(dids)
      .values({
        e164: ALICE_DID,
        label: "Alice's line",
        defaultTargets: { v: 1, deviceIds: [alice.deviceId] },
      })
      .returning({ id: dids.id, e164: dids.e164 });
    const [bobDid] = await t.db
      .insert(dids)
      .values({ e164: BOB_DID, label: "Bob's line", defaultTargets: { v: 1, deviceIds: [bob.deviceId] } })
      .returning({ id: dids.id, e164: dids.e164 });
    if (!aliceDid || !bobDid) throw new Error("did insert returned nothing");
    world = { t, clock, twilio, admin, alice, bob, aliceDid, bobDid };
    use(world);
  });
  afterEach(async () => {
    await world?.t.close();
    await world?.twilio.close();
    world = undefined;
  });
}

const WEBHOOK_BASE = "http://localhost:8080/api/webhooks/twilio";

/** POSTs a webhook the way Twilio does: form body, X-Twilio-Signature over PUBLIC_URL + path. */
export async function postWebhook(
  t: TestEdge,
  path: "/sms" | "/sms-status",
  params: Record<string, string>,
  opts: { authToken?: string } = {},
): Promise<Response> {
  const url = `${WEBHOOK_BASE}${path}`;
  const signature = await twilioSignature(opts.authToken ?? FIXTURE_AUTH_TOKEN, url, params);
  return t.app.request(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature },
    body: new URLSearchParams(params).toString(),
  });
}

export const messageSid = (): string => `SM${crypto.randomUUID().replaceAll("-", "")}`;

/** Parameters of an inbound SMS webhook as Twilio sends them (plus any overrides). */
export function inboundParams(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    AccountSid: FIXTURE_ACCOUNT_SID,
    ApiVersion: "2010-04-01",
    MessageSid: messageSid(),
    SmsSid: "",
    SmsMessageSid: "",
    SmsStatus: "received",
    From: PEER,
    To: ALICE_DID,
    Body: "Hello there",
    NumMedia: "0",
    NumSegments: "1",
    FromCity: "SPRINGFIELD",
    FromState: "IL",
    FromCountry: "US",
    ToCountry: "US",
    ...overrides,
  };
}

/** Runs every due job once with deterministic jitter (none). */
export function runJobs(t: TestEdge) {
  return runDueJobs(t.deps, { random: () => 0 });
}

/** Adds an auto-reply rule to a DID. */
export async function addAutoReply(
  t: TestEdge,
  didId: string,
  rule: {
    trigger: "always" | "after_hours" | "dnd" | "keyword";
    text: string;
    keyword?: string;
    priority?: number;
  },
): Promise<void> {
  await t.db.insert(autoReplies).values({
    didId,
    trigger: rule.trigger,
    text: rule.text,
    keyword: rule.keyword ?? null,
    priority: rule.priority ?? 100,
  });
}
