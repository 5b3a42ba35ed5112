// The setup wizard's Twilio steps through the real edge app (libSQL with
// migrations, TWILIO_API_BASE) against the real simulator: verify credentials,
// search and buy a number, create the SIP Domain with its credential list and
// mapping, point the number at the edge; a re-run creates nothing twice; and
// every request the edge made is one Twilio's OpenAPI description documents.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestEdge,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
} from "../../edge/src/test-support.ts";
import { specViolations } from "./openapi/conformance.ts";
import { startTwilioSim, type TwilioSim } from "./server.ts";

const PUBLIC_URL = "https://pbx.example.test";

let sim: TwilioSim;
let t: TestEdge;
let admin: TestSession;

beforeAll(async () => {
  sim = await startTwilioSim();
  t = await createTestEdge({ publicUrl: PUBLIC_URL, env: { TWILIO_API_BASE: sim.baseUrl } });
  admin = (await loginAs(t, "admin")).session;
});

afterAll(async () => {
  await t.close();
  await sim.close();
});

async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await request(t, method, `/api/setup/twilio${path}`, {
    as: admin,
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, json: (await res.json()) as T };
}

describe("the setup wizard against the simulator", () => {
  it("verifies, buys a number, creates the SIP Domain and points the number at the edge", async () => {
    const wrong = await call<{ error: { message: string } }>("POST", "/credentials", {
      accountSid: sim.state.accountSid,
      authToken: "0".repeat(32),
    });
    expect(wrong.status).toBe(400);

    const creds = await call<{ account: { sid: string } }>("POST", "/credentials", {
      accountSid: sim.state.accountSid,
      authToken: sim.state.authToken,
    });
    expect(creds.status, JSON.stringify(creds.json)).toBe(200);
    expect(creds.json.account.sid).toBe(sim.state.accountSid);

    const available = await call<{
      items: Array<{ phoneNumber: string; capabilities: { voice: boolean; sms: boolean; mms: boolean } }>;
    }>("GET", "/numbers/available?areaCode=415");
    expect(available.status, JSON.stringify(available.json)).toBe(200);
    const first = available.json.items[0]?.phoneNumber ?? "";
    expect(first).toMatch(/^\+1415/);
    // The live API spells these SMS/MMS (upper case): the wizard must still show them.
    expect(available.json.items[0]?.capabilities).toEqual({ voice: true, sms: true, mms: true });

    const bought = await call<{ action: string }>("POST", "/numbers/buy", { phoneNumber: first });
    expect(bought.status, JSON.stringify(bought.json)).toBe(200);
    expect(bought.json.action).toBe("bought");
    expect(sim.state.incomingNumberByPhone(first)).toBeDefined();

    const domain = await call<{ sipDomain: { domainName: string } }>("POST", "/sip-domain", {
      domainName: "gosip-home",
    });
    expect(domain.status, JSON.stringify(domain.json)).toBe(200);
    const simDomain = sim.state.sipDomainByName("gosip-home.sip.twilio.com");
    expect(simDomain?.voice_url).toBe(`${PUBLIC_URL}/api/webhooks/twilio/sip-outbound`);
    // The relay can now authenticate to the domain with what the edge stored.
    expect(sim.state.credentialsForDomain(simDomain?.sid ?? "")).toHaveLength(1);

    const hooks = await call<{ numbers: Array<{ e164: string }> }>("POST", "/webhooks");
    expect(hooks.status, JSON.stringify(hooks.json)).toBe(200);
    expect(sim.state.incomingNumberByPhone(first)).toMatchObject({
      voice_url: `${PUBLIC_URL}/api/webhooks/twilio/voice`,
      sms_url: `${PUBLIC_URL}/api/webhooks/twilio/sms`,
      status_callback: `${PUBLIC_URL}/api/webhooks/twilio/call-status`,
    });

    // Running the steps again changes nothing at Twilio.
    const again = await call<{ sipDomain: { action: string } }>("POST", "/sip-domain", {});
    expect(again.status).toBe(200);
    expect(again.json.sipDomain.action).toBe("reused");
    expect(sim.state.requestsTo("POST", "/SIP/Domains.json")).toHaveLength(1);
    expect(sim.state.requestsTo("POST", "/SIP/CredentialLists.json")).toHaveLength(1);
    expect(sim.state.requestsTo("POST", "/IncomingPhoneNumbers.json")).toHaveLength(1);
    expect(sim.state.sipDomains.size).toBe(1);

    expect(specViolations(sim.state.requests)).toEqual([]);
  });
});
