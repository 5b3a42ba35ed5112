/**
 * The wizard's Twilio steps through the real edge app (libSQL with migrations)
 * against a local HTTP server playing Twilio (twilio-fixture.ts), reached through
 * TWILIO_API_BASE exactly as the simulator will be.
 */
import { cdrs, devices, dids, jobs, settings, systemEvents, voicemails } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runDueJobs } from "../jobs/runner.ts";
import { readSetting, writeSetting } from "../settings/store.ts";
import {
  createTestEdge,
  type ErrorJson,
  loginAs,
  request,
  type TestEdge,
  type TestSession,
} from "../test-support.ts";
import { fakeSid, TwilioFixture } from "./twilio-fixture.ts";

const PUBLIC_URL = "https://pbx.example.test";

let twilio: TwilioFixture;
let t: TestEdge;
let admin: TestSession;

beforeEach(async () => {
  twilio = await new TwilioFixture().start();
  t = await createTestEdge({ publicUrl: PUBLIC_URL, env: { TWILIO_API_BASE: twilio.baseUrl } });
  admin = (await loginAs(t, "admin")).session;
});

afterEach(async () => {
  await t.close();
  await twilio.stop();
});

async function call<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await request(t, method, `/api/setup/twilio${path}`, {
    as: admin,
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, json: (await res.json()) as T };
}

const saveCredentials = () =>
  call("POST", "/credentials", { accountSid: twilio.accountSid, authToken: twilio.authToken });

interface Progress {
  progress: { completedSteps: string[]; completedAt: string | null };
}

describe("POST /credentials", () => {
  it("verifies the credentials live, saves them and records the step", async () => {
    const res = await call<Progress & { account: { sid: string; status: string }; action: string }>(
      "POST",
      "/credentials",
      { accountSid: twilio.accountSid, authToken: twilio.authToken },
    );
    expect(res.status).toBe(200);
    expect(res.json.account).toMatchObject({ sid: twilio.accountSid, status: "active" });
    expect(res.json.action).toBe("saved");
    expect(res.json.progress.completedSteps).toEqual(["twilio"]);
    expect(twilio.made("GET", `/Accounts/${twilio.accountSid}.json`)).toHaveLength(1);

    const saved = await readSetting(t.db, "twilio");
    expect(saved).toMatchObject({ accountSid: twilio.accountSid, authToken: twilio.authToken });
    // The auth token is write-only through the settings API.
    const shown = await request(t, "GET", "/api/settings/twilio", { as: admin });
    expect(JSON.stringify(await shown.json())).not.toContain(twilio.authToken);

    const again = await saveCredentials();
    expect(again.json.action).toBe("unchanged");
  });

  it("answers 400 with a clear message for a wrong token and saves nothing", async () => {
    const res = await call<ErrorJson & { error: { details: { twilio: { code: number } } } }>(
      "POST",
      "/credentials",
      { accountSid: twilio.accountSid, authToken: "0".repeat(32) },
    );
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/Twilio rejected the Account SID or Auth Token/);
    expect(res.json.error.details.twilio.code).toBe(20003);
    expect(await t.db.select().from(settings).where(eq(settings.key, "twilio"))).toHaveLength(0);
    expect((await readSetting(t.db, "setup")).completedSteps).toEqual([]);
  });

  it("refuses a suspended account", async () => {
    twilio.accountStatus = "suspended";
    const res = await saveCredentials();
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json)).toMatch(/suspended/);
    expect(await readSetting(t.db, "twilio")).toBeNull();
  });

  it("validates the body before calling Twilio", async () => {
    const res = await call<ErrorJson>("POST", "/credentials", { accountSid: "AC123", authToken: "" });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("validation_failed");
    expect(twilio.requests).toHaveLength(0);
  });

  it("is for administrators only, with the CSRF header", async () => {
    const user = (await loginAs(t, "user")).session;
    const asUser = await request(t, "POST", "/api/setup/twilio/credentials", {
      as: user,
      body: { accountSid: twilio.accountSid, authToken: twilio.authToken },
    });
    expect(asUser.status).toBe(403);
    const noCsrf = await request(t, "POST", "/api/setup/twilio/credentials", {
      as: admin,
      csrf: false,
      body: { accountSid: twilio.accountSid, authToken: twilio.authToken },
    });
    expect(noCsrf.status).toBe(403);
    const anonymous = await request(t, "GET", "/api/setup/twilio/status");
    expect(anonymous.status).toBe(401);
    expect(twilio.requests).toHaveLength(0);
  });

  it("forgets the old account's resources when another account is saved", async () => {
    await saveCredentials();
    twilio.addNumber("+15550001111");
    expect((await call("POST", "/sip-domain", {})).status).toBe(200);
    const other = await new TwilioFixture().start();
    try {
      // Same base URL cannot serve two accounts: point the edge at the other fixture.
      t.deps.config.twilio.apiBase = other.baseUrl;
      const res = await call<Progress & { action: string }>("POST", "/credentials", {
        accountSid: other.accountSid,
        authToken: other.authToken,
      });
      expect(res.json.action).toBe("replaced");
      expect(res.json.progress.completedSteps).toEqual(["twilio"]);
      const saved = await readSetting(t.db, "twilio");
      expect(saved?.accountSid).toBe(other.accountSid);
      expect(saved?.sipDomainSid).toBeUndefined();
    } finally {
      await other.stop();
    }
  });
});

describe("numbers", () => {
  it("asks for the credentials first", async () => {
    const res = await call<ErrorJson>("GET", "/numbers");
    expect(res.status).toBe(409);
    expect(res.json.error.message).toMatch(/credentials first/);
  });

  it("lists every owned number, following Twilio's pages", async () => {
    await saveCredentials();
    for (let i = 0; i < 120; i++) twilio.addNumber(`+1555000${String(i).padStart(4, "0")}`);
    const first = await call<{ items: { phoneNumber: string }[]; total: number }>(
      "GET",
      "/numbers?limit=100",
    );
    expect(first.status).toBe(200);
    expect(first.json.total).toBe(120);
    expect(first.json.items).toHaveLength(100);
    const rest = await call<{ items: { phoneNumber: string }[]; total: number }>(
      "GET",
      "/numbers?limit=100&offset=100",
    );
    expect(rest.json.items.map((n) => n.phoneNumber)).toEqual(
      Array.from({ length: 20 }, (_, i) => `+1555000${String(100 + i).padStart(4, "0")}`),
    );
    // Two Twilio pages per listing (PageSize 100), the second one from next_page_uri.
    const pages = twilio.made("GET", "/IncomingPhoneNumbers.json");
    expect(pages).toHaveLength(4);
    expect(pages[1]?.query.get("Page")).toBe("1");
  });

  it("searches numbers for sale by area code", async () => {
    await saveCredentials();
    twilio.addAvailable("+14155550100");
    twilio.addAvailable("+12125550100", "New York");
    const res = await call<{ items: { phoneNumber: string; locality: string }[] }>(
      "GET",
      "/numbers/available?country=US&areaCode=415",
    );
    expect(res.status).toBe(200);
    expect(res.json.items).toEqual([expect.objectContaining({ phoneNumber: "+14155550100" })]);
    const bad = await call<ErrorJson>("GET", "/numbers/available?country=usa");
    expect(bad.status).toBe(400);
  });

  it("buys a number once and makes it a DID; buying it again reuses it", async () => {
    await saveCredentials();
    twilio.addAvailable("+14155550100");
    const bought = await call<Progress & { action: string; did: { didId: string; action: string } }>(
      "POST",
      "/numbers/buy",
      { phoneNumber: "+14155550100" },
    );
    expect(bought.status).toBe(200);
    expect(bought.json.action).toBe("bought");
    expect(bought.json.did.action).toBe("created");
    expect(bought.json.progress.completedSteps).toEqual(["twilio", "numbers"]);

    const again = await call<{ action: string; did: { didId: string; action: string } }>(
      "POST",
      "/numbers/buy",
      {
        phoneNumber: "+14155550100",
      },
    );
    expect(again.json.action).toBe("already_owned");
    expect(again.json.did).toMatchObject({ didId: bought.json.did.didId, action: "unchanged" });
    expect(twilio.made("POST", "/IncomingPhoneNumbers.json")).toHaveLength(1);
    expect(await t.db.select().from(dids)).toHaveLength(1);
  });

  it("passes Twilio's refusal on with its code", async () => {
    await saveCredentials();
    const res = await call<ErrorJson & { error: { details: { twilio: { code: number } } } }>(
      "POST",
      "/numbers/buy",
      { phoneNumber: "+14155550199" },
    );
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/21422/);
    expect(res.json.error.details.twilio.code).toBe(21422);
    expect(await t.db.select().from(dids)).toHaveLength(0);
  });

  it("selects owned numbers as DIDs, once, and refuses SIDs of other accounts", async () => {
    await saveCredentials();
    const a = twilio.addNumber("+15550001111", "Office line");
    const b = twilio.addNumber("+15550002222");
    const wrong = await call<ErrorJson>("POST", "/numbers/select", { sids: [a.sid, fakeSid("PN")] });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.details?.[0]?.path).toBe("sids.1");
    expect(await t.db.select().from(dids)).toHaveLength(0);

    const res = await call<Progress & { dids: { e164: string; label: string; action: string }[] }>(
      "POST",
      "/numbers/select",
      { sids: [a.sid, b.sid] },
    );
    expect(res.status).toBe(200);
    expect(res.json.dids).toEqual([
      expect.objectContaining({ e164: "+15550001111", label: "Office line", action: "created" }),
      expect.objectContaining({ e164: "+15550002222", label: "", action: "created" }),
    ]);
    expect(res.json.progress.completedSteps).toContain("numbers");

    // An existing DID with the same number gets the SID; a re-run changes nothing.
    const again = await call<{ dids: { action: string }[] }>("POST", "/numbers/select", {
      sids: [a.sid, b.sid],
    });
    expect(again.json.dids.map((d) => d.action)).toEqual(["unchanged", "unchanged"]);
    const rows = await t.db.select().from(dids).orderBy(dids.e164);
    expect(rows.map((r) => [r.e164, r.twilioSid])).toEqual([
      ["+15550001111", a.sid],
      ["+15550002222", b.sid],
    ]);

    const listed = await call<{ items: { sid: string; didId: string | null }[] }>("GET", "/numbers");
    expect(listed.json.items.every((n) => n.didId !== null)).toBe(true);
  });

  it("gives an existing DID of the same number its Twilio SID instead of adding one", async () => {
    await saveCredentials();
    const [existing] = await t.db.insert(dids).values({ e164: "+15550001111", label: "Home" }).returning();
    const a = twilio.addNumber("+15550001111");
    const res = await call<{ dids: { didId: string; label: string; action: string }[] }>(
      "POST",
      "/numbers/select",
      {
        sids: [a.sid],
      },
    );
    expect(res.json.dids).toEqual([
      expect.objectContaining({ didId: existing?.id, label: "Home", action: "updated" }),
    ]);
    expect(await t.db.select().from(dids)).toHaveLength(1);
  });
});

interface SipDomainJson extends Progress {
  sipDomain: { sid: string; domainName: string; voiceUrl: string; action: string };
  credentialList: { sid: string; action: string };
  credential: { username: string; action: string };
  mapping: { action: string };
  relayInboundCredentials: string;
}

describe("POST /sip-domain", () => {
  beforeEach(async () => {
    await saveCredentials();
  });

  it("creates the Domain, credential list, credential and mapping once, then reuses them", async () => {
    const first = await call<SipDomainJson>("POST", "/sip-domain", { domainName: "home-office" });
    expect(first.status).toBe(200);
    expect(first.json.sipDomain).toMatchObject({
      domainName: "home-office.sip.twilio.com",
      voiceUrl: `${PUBLIC_URL}/api/webhooks/twilio/sip-outbound`,
      action: "created",
    });
    expect(first.json.credentialList.action).toBe("created");
    expect(first.json.credential).toEqual({ username: "gosip-relay", action: "created" });
    expect(first.json.mapping.action).toBe("created");
    expect(first.json.relayInboundCredentials).toBe("created");
    expect(first.json.progress.completedSteps).toEqual(["twilio", "sip_domain"]);

    // What Twilio holds: the Domain's Voice URL, no SIP registration, the list mapped for calls.
    const [domain] = twilio.domains;
    expect(domain).toMatchObject({
      domain_name: "home-office.sip.twilio.com",
      voice_url: `${PUBLIC_URL}/api/webhooks/twilio/sip-outbound`,
      voice_method: "POST",
      sip_registration: false,
      emergency_calling_enabled: true,
    });
    const created = twilio.made("POST", "/SIP/Domains.json")[0];
    expect(created?.form.get("SipRegistration")).toBe("false");
    expect(twilio.mappings.get(String(domain?.sid))).toEqual([first.json.credentialList.sid]);

    // The relay's password towards Twilio is the one Twilio has; the relay got inbound credentials.
    const saved = await readSetting(t.db, "twilio");
    const credential = twilio.credentialLists[0]?.credentials[0];
    expect(saved).toMatchObject({
      sipDomainSid: domain?.sid,
      sipDomainName: "home-office.sip.twilio.com",
      credentialListSid: first.json.credentialList.sid,
      sipUsername: "gosip-relay",
      sipPassword: credential?.password,
    });
    const relay = await readSetting(t.db, "relay");
    expect(relay.inboundUsername).toBe("twilio");
    expect(relay.inboundPassword?.length).toBeGreaterThanOrEqual(12);

    const posts = () => twilio.requests.filter((r) => r.method === "POST").length;
    const before = posts();
    const again = await call<SipDomainJson>("POST", "/sip-domain", {});
    expect(again.status).toBe(200);
    expect(again.json.sipDomain).toMatchObject({ sid: domain?.sid, action: "reused" });
    expect(again.json.credentialList.action).toBe("reused");
    expect(again.json.credential.action).toBe("reused");
    expect(again.json.mapping.action).toBe("reused");
    expect(again.json.relayInboundCredentials).toBe("reused");
    expect(posts()).toBe(before);
    expect(twilio.domains).toHaveLength(1);
    expect(twilio.credentialLists).toHaveLength(1);
    expect((await readSetting(t.db, "relay")).inboundPassword).toBe(relay.inboundPassword);
    expect((await readSetting(t.db, "twilio"))?.sipPassword).toBe(credential?.password);
  });

  it("reuses a GoSIP Domain found by name and brings its Voice URL up to date", async () => {
    twilio.domains.push({
      sid: fakeSid("SD"),
      domain_name: "gosip-old.sip.twilio.com",
      friendly_name: "GoSIP",
      voice_url: "https://old.example.test/voice",
      voice_method: "POST",
      sip_registration: false,
    });
    const res = await call<SipDomainJson>("POST", "/sip-domain", {});
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.sipDomain).toMatchObject({ domainName: "gosip-old.sip.twilio.com", action: "updated" });
    expect(twilio.made("POST", "/SIP/Domains.json")).toHaveLength(0);
    expect(twilio.domains[0]?.voice_url).toBe(`${PUBLIC_URL}/api/webhooks/twilio/sip-outbound`);
  });

  it("resumes after a failure halfway without duplicates", async () => {
    twilio.failNext("POST", "/Auth/Calls/CredentialListMappings.json", 503, 20503, "Service Unavailable");
    const failed = await call<ErrorJson & { error: { details: { twilio: { code: number } } } }>(
      "POST",
      "/sip-domain",
      {},
    );
    expect(failed.status).toBe(502);
    expect(failed.json.error.code).toBe("unavailable");
    expect(failed.json.error.details.twilio.code).toBe(20503);
    expect((await readSetting(t.db, "setup")).completedSteps).toEqual(["twilio"]);
    expect((await readSetting(t.db, "twilio"))?.sipDomainSid).toBeUndefined();

    const resumed = await call<SipDomainJson>("POST", "/sip-domain", {});
    expect(resumed.status).toBe(200);
    expect(resumed.json.sipDomain.action).toBe("reused");
    expect(resumed.json.credentialList.action).toBe("reused");
    // The first password never reached GoSIP's settings: it is replaced, not guessed.
    expect(resumed.json.credential.action).toBe("updated");
    expect(resumed.json.mapping.action).toBe("created");
    expect(twilio.domains).toHaveLength(1);
    expect(twilio.credentialLists[0]?.credentials).toHaveLength(1);
    expect((await readSetting(t.db, "twilio"))?.sipPassword).toBe(
      twilio.credentialLists[0]?.credentials[0]?.password,
    );
    expect(resumed.json.progress.completedSteps).toEqual(["twilio", "sip_domain"]);
  });

  it("answers a name Twilio refuses with Twilio's reason, and a malformed one before calling", async () => {
    twilio.domains.push({
      sid: fakeSid("SD"),
      domain_name: "taken.sip.twilio.com",
      friendly_name: "someone else",
      voice_url: null,
      voice_method: "POST",
      sip_registration: false,
    });
    twilio.failNext("POST", "/SIP/Domains.json", 400, 21232, "DomainName is already in use");
    const taken = await call<ErrorJson>("POST", "/sip-domain", { domainName: "mine" });
    expect(taken.status).toBe(400);
    expect(taken.json.error.message).toMatch(/already in use/);
    const bad = await call<ErrorJson>("POST", "/sip-domain", { domainName: "-bad name-" });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details?.[0]?.path).toBe("domainName");
  });

  it("never logs or returns the passwords", async () => {
    const res = await call("POST", "/sip-domain", {});
    const saved = await readSetting(t.db, "twilio");
    const relay = await readSetting(t.db, "relay");
    const text = JSON.stringify(res.json) + JSON.stringify(t.logs);
    for (const secret of [saved?.sipPassword, relay.inboundPassword, twilio.authToken]) {
      expect(secret).toBeTruthy();
      expect(text).not.toContain(String(secret));
    }
  });
});

describe("POST /webhooks", () => {
  it("needs selected numbers, then points each one at the edge", async () => {
    await saveCredentials();
    const none = await call<ErrorJson>("POST", "/webhooks");
    expect(none.status).toBe(409);

    const a = twilio.addNumber("+15550001111");
    const b = twilio.addNumber("+15550002222");
    await call("POST", "/numbers/select", { sids: [a.sid, b.sid] });
    const res = await call<Progress & { numbers: { e164: string; voiceUrl: string }[] }>("POST", "/webhooks");
    expect(res.status).toBe(200);
    expect(res.json.numbers.map((n) => n.e164)).toEqual(["+15550001111", "+15550002222"]);
    for (const n of [a, b]) {
      expect(n).toMatchObject({
        voice_url: `${PUBLIC_URL}/api/webhooks/twilio/voice`,
        status_callback: `${PUBLIC_URL}/api/webhooks/twilio/call-status`,
        sms_url: `${PUBLIC_URL}/api/webhooks/twilio/sms`,
        voice_fallback_url: null,
      });
    }
    expect(res.json.progress.completedSteps).toEqual(["twilio", "numbers", "webhooks"]);

    // Re-running sets the same values again.
    const again = await call("POST", "/webhooks");
    expect(again.status).toBe(200);
    expect(a.voice_url).toBe(`${PUBLIC_URL}/api/webhooks/twilio/voice`);
  });

  it("sets the fallback URLs once the fallback is deployed", async () => {
    await saveCredentials();
    const a = twilio.addNumber("+15550001111");
    await call("POST", "/numbers/select", { sids: [a.sid] });
    const saved = await readSetting(t.db, "twilio");
    if (!saved) throw new Error("credentials not saved");
    await writeSetting(t.deps, "twilio", {
      ...saved,
      fallbackUrl: "https://gosip-fallback-1234.twil.io/voicemail-fallback",
    });
    await call("POST", "/webhooks");
    expect(a.voice_fallback_url).toBe("https://gosip-fallback-1234.twil.io/voicemail-fallback");
    expect(a.sms_fallback_url).toBe("https://gosip-fallback-1234.twil.io/sms-fallback");
  });
});

describe("POST /fallback with TWILIO_API_BASE", () => {
  it("records the deployment as skipped, with the reason, and completes the step", async () => {
    await saveCredentials();
    const res = await call<Progress & { deployed: boolean; skipped: string; plan: { functions: string[] } }>(
      "POST",
      "/fallback",
      { forwardSmsTo: "+15557654321" },
    );
    expect(res.status).toBe(200);
    expect(res.json.deployed).toBe(false);
    expect(res.json.skipped).toMatch(/TWILIO_API_BASE/);
    expect(res.json.plan.functions).toEqual(["/voicemail-fallback", "/sms-fallback"]);
    expect(res.json.progress.completedSteps).toEqual(["twilio", "fallback"]);
    const events = await t.db
      .select()
      .from(systemEvents)
      .where(eq(systemEvents.type, "twilio.fallback_skipped"));
    expect(events).toHaveLength(1);
    expect((await readSetting(t.db, "twilio"))?.fallbackUrl).toBeUndefined();
  });

  it("rejects a forwarding number that is not E.164", async () => {
    await saveCredentials();
    const res = await call<ErrorJson>("POST", "/fallback", { forwardSmsTo: "555-1234" });
    expect(res.status).toBe(400);
  });
});

describe("GET /status and the whole wizard", () => {
  it("runs every step, resumable, and shows what exists", async () => {
    const empty = await call<Progress & { twilio: unknown }>("GET", "/status");
    expect(empty.json.twilio).toBeNull();
    expect(empty.json.progress.completedSteps).toEqual([]);

    await saveCredentials();
    const a = twilio.addNumber("+15550001111");
    await call("POST", "/numbers/select", { sids: [a.sid] });
    await call("POST", "/sip-domain", {});
    await call("POST", "/webhooks");
    await call("POST", "/fallback", {});
    const status = await call<
      Progress & {
        twilio: { accountSid: string; credentialsSource: string; sipDomainName: string; sipUsername: string };
        numbers: { e164: string; twilioSid: string }[];
        relayInboundCredentials: boolean;
      }
    >("GET", "/status");
    expect(status.json.progress.completedSteps).toEqual([
      "twilio",
      "numbers",
      "sip_domain",
      "webhooks",
      "fallback",
    ]);
    expect(status.json.progress.completedAt).toBeNull();
    expect(status.json.twilio).toMatchObject({
      accountSid: twilio.accountSid,
      credentialsSource: "settings",
      sipDomainName: expect.stringMatching(/^gosip-[0-9a-f]{10}\.sip\.twilio\.com$/),
      sipUsername: "gosip-relay",
    });
    expect(status.json.numbers).toEqual([
      expect.objectContaining({ e164: "+15550001111", twilioSid: a.sid }),
    ]);
    expect(status.json.relayInboundCredentials).toBe(true);
    expect(JSON.stringify(status.json)).not.toContain(twilio.authToken);

    // The settings API still refuses to write the progress.
    const put = await request(t, "PUT", "/api/settings/setup", {
      as: admin,
      body: { v: 1, completedSteps: [] },
    });
    expect(put.status).toBe(400);
    expect((await readSetting(t.db, "setup")).completedSteps).toHaveLength(5);
  });
});

describe("the OpenAPI document", () => {
  it("describes every wizard route", async () => {
    const res = await request(t, "GET", "/api/openapi.json");
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith("/api/setup/twilio/"))
      .flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.slice("/api/setup/twilio".length)}`),
      )
      .sort();
    expect(routes).toEqual([
      "GET /numbers",
      "GET /numbers/available",
      "GET /status",
      "POST /credentials",
      "POST /fallback",
      "POST /numbers/buy",
      "POST /numbers/select",
      "POST /reconcile",
      "POST /sip-domain",
      "POST /webhooks",
    ]);
  });
});

describe("POST /reconcile", () => {
  const now = Date.now();

  async function didWithOwner(e164: string): Promise<{ didId: string; userId: string }> {
    const { user } = await loginAs(t, "user");
    const [device] = await t.db
      .insert(devices)
      .values({
        userId: user.id,
        name: "Desk",
        extension: "101",
        sipUsername: "desk101",
        ha1Md5: "0".repeat(32),
        ha1Sha256: "0".repeat(64),
      })
      .returning();
    const [did] = await t.db
      .insert(dids)
      .values({ e164, defaultTargets: { v: 1, deviceIds: [String(device?.id)] } })
      .returning();
    return { didId: String(did?.id), userId: user.id };
  }

  it("turns the fallback's recordings into voicemails once, with a CDR for the missed call", async () => {
    await saveCredentials();
    const { didId, userId } = await didWithOwner("+15550001111");
    const call1 = twilio.addCall("+15557654321", "+15550001111", now - 3_600_000);
    const voicemail = twilio.addRecording(call1.sid, 42, now - 3_590_000);
    const call2 = twilio.addCall("+15551112222", "+15550001111", now - 1_800_000);
    const short = twilio.addRecording(call2.sid, 2, now - 1_790_000);
    const dialRecording = twilio.addRecording(fakeSid("CA"), 60, now - 1_000_000, "DialVerb");
    const old = twilio.addRecording(null, 30, now - 30 * 24 * 3_600_000);

    const res = await call<{
      checked: number;
      created: { recordingSid: string; voicemailId: string; from: string; durationSeconds: number }[];
      skipped: { recordingSid: string; reason: string }[];
    }>("POST", "/reconcile", { since: new Date(now - 24 * 3_600_000).toISOString() });
    expect(res.status).toBe(200);
    expect(res.json.checked).toBe(3);
    expect(res.json.created).toEqual([
      expect.objectContaining({ recordingSid: voicemail.sid, from: "+15557654321", durationSeconds: 42 }),
    ]);
    expect(res.json.skipped).toEqual(
      expect.arrayContaining([
        { recordingSid: short.sid, reason: expect.stringMatching(/shorter than 3 s/) },
        { recordingSid: dialRecording.sid, reason: expect.stringMatching(/not a voicemail/) },
      ]),
    );
    expect(res.json.skipped.map((s) => s.recordingSid)).not.toContain(old.sid);
    const since = twilio.made("GET", "/Recordings.json")[0]?.query.get("DateCreated>");
    expect(since).toBe(new Date(now - 24 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z"));

    // The voicemail is in the DID owner's mailbox, from the caller, without a pending transcript.
    const [vm] = await t.db.select().from(voicemails);
    expect(vm).toMatchObject({
      didId,
      userId,
      fromNumber: "+15557654321",
      durationSeconds: 42,
      twilioRecordingSid: voicemail.sid,
      twilioCallSid: call1.sid,
      audioStatus: "pending",
      transcriptStatus: "none",
    });
    // Call history shows the missed call, answered by the fallback's voicemail.
    const [cdr] = await t.db.select().from(cdrs).where(eq(cdrs.twilioCallSid, call1.sid));
    expect(cdr).toMatchObject({
      direction: "inbound",
      fromNumber: "+15557654321",
      toNumber: "+15550001111",
      didId,
      disposition: "voicemail",
      reason: "fallback",
      voicemailId: vm?.id,
    });
    // The audio is fetched by the voicemail feature's own job, from Twilio's media URL.
    const [download] = await t.db.select().from(jobs).where(eq(jobs.kind, "voicemail.download"));
    expect(download?.payload).toMatchObject({ voicemailId: vm?.id, recordingUrl: voicemail.media_url });

    const again = await call<{ created: unknown[]; skipped: { recordingSid: string; reason: string }[] }>(
      "POST",
      "/reconcile",
      { since: new Date(now - 24 * 3_600_000).toISOString() },
    );
    expect(again.json.created).toEqual([]);
    expect(again.json.skipped).toContainEqual({ recordingSid: voicemail.sid, reason: "already a voicemail" });
    expect(await t.db.select().from(voicemails)).toHaveLength(1);
    // Two missed calls in the history: one left a message, the other hung up at once.
    const history = await t.db.select().from(cdrs).orderBy(cdrs.startedAt);
    expect(history.map((c) => [c.fromNumber, c.disposition])).toEqual([
      ["+15557654321", "voicemail"],
      ["+15551112222", "missed"],
    ]);
    expect(await t.db.select().from(jobs).where(eq(jobs.kind, "voicemail.download"))).toHaveLength(1);
  });

  it("copies the reconciled audio into GoSIP and then removes it from Twilio", async () => {
    await saveCredentials();
    await didWithOwner("+15550001111");
    const c = twilio.addCall("+15557654321", "+15550001111", now - 3_600_000);
    const rec = twilio.addRecording(c.sid, 12, now - 3_590_000);
    const res = await call<{ created: { voicemailId: string }[] }>("POST", "/reconcile", {});
    const voicemailId = res.json.created[0]?.voicemailId;
    expect(voicemailId).toBeDefined();

    // The outbox runs the voicemail feature's jobs: download, notify, delete from Twilio.
    for (let i = 0; i < 5; i++) await runDueJobs(t.deps);
    const [vm] = await t.db
      .select()
      .from(voicemails)
      .where(eq(voicemails.id, String(voicemailId)));
    expect(vm?.audioStatus).toBe("stored");
    expect(vm?.sizeBytes).toBe(44 + 12 * 8000 * 2);
    expect(twilio.made("GET", `/Recordings/${rec.sid}.wav`)).toHaveLength(1);
    expect(twilio.made("DELETE", `/Recordings/${rec.sid}.json`)).toHaveLength(1);
    expect(twilio.recordings).toHaveLength(0);
    const audio = await request(t, "GET", `/api/voicemails/${voicemailId}/audio`, { as: admin });
    expect(audio.status).toBe(200);
    expect((await audio.arrayBuffer()).byteLength).toBe(44 + 12 * 8000 * 2);
  });

  it("leaves a fresh recording of a call the edge handled to its status callback", async () => {
    await saveCredentials();
    const c = twilio.addCall("+15557654321", "+15550001111", now - 60_000);
    await t.db.insert(cdrs).values({
      direction: "inbound",
      fromNumber: "+15557654321",
      toNumber: "+15550001111",
      startedAt: new Date(now - 60_000),
      twilioCallSid: c.sid,
    });
    const rec = twilio.addRecording(c.sid, 20, now - 5_000);
    const res = await call<{ created: unknown[]; skipped: { recordingSid: string; reason: string }[] }>(
      "POST",
      "/reconcile",
      {},
    );
    expect(res.json.created).toEqual([]);
    expect(res.json.skipped).toEqual([{ recordingSid: rec.sid, reason: expect.stringMatching(/callback/) }]);
  });
});
