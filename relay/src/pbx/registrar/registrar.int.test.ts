// The registrar with digest auth and the defence in front, on the real engine and a real libSQL file, driven
// by sipp (MD5 registration as a phone does it) and by a raw UDP phone where sipp cannot (SHA-256, stale
// nonces, replays, exact byte comparisons, silent keepalives).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describe as explain, killAll, runSipp } from "../../../test/sipp.ts";
import { parseDigestHeader } from "../auth/digest.ts";
import { FakeDirectory, TEST_REALM, testDevice } from "../testing/fakes.ts";
import {
  answerChallenge,
  headersOf,
  RawPhone,
  type RegistrarPbx,
  startRegistrarPbx,
  statusOf,
} from "../testing/registrar-pbx.ts";

const alice = testDevice("alice", "secret", { extension: "201" });
const bob = testDevice("bob", "s3cret-bob", { extension: "202" });
const carol = testDevice("carol", "carol-pw", { extension: "203", enabled: false });
const devices = [alice, bob, carol];

let dir: string;
let pbx: RegistrarPbx | undefined;
const phones: RawPhone[] = [];

async function phone(address = "127.0.0.1"): Promise<RawPhone> {
  if (!pbx) throw new Error("no pbx");
  const p = await RawPhone.open(address, pbx.engine.sipPort);
  phones.push(p);
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-registrar-"));
});
afterEach(async () => {
  for (const p of phones.splice(0)) await p.close();
  await pbx?.close();
  pbx = undefined;
});
afterAll(async () => {
  killAll();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
const dbFile = () => join(dir, `relay-${++n}.db`);

/** Seconds in `;expires=N` of the 200's Contact for `uri`. */
function grantedFor(text: string, uri: string): number | undefined {
  const all = headersOf(text, "Contact").join(", ");
  const m = new RegExp(`<${uri.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}>;expires=(\\d+)`).exec(all);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

describe("registrar", () => {
  it("registers sipp phones with MD5 digest auth, and reports the registration to the edge", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const r = await runSipp({
      scenario: "uac-register-auth.xml",
      remote: pbx.engine.sipTarget,
      service: "alice",
      auth: { username: "alice", password: "secret" },
      calls: 20,
      rate: 50,
      timeoutSeconds: 15,
    });
    expect(r.stats.successful, explain(r)).toBe(20);
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(1);
    const up = await pbx.events.waitFor("registration.up", (e) => e.deviceId === alice.id);
    expect(up.contact.transport).toBe("udp");
    expect(up.contact.sourceAddress).toBe("127.0.0.1");
    // 20 refreshes of one contact: one up event, not twenty
    expect(pbx.events.of("registration.up")).toHaveLength(1);
  });

  it("challenges MD5 first, then SHA-256, and accepts SHA-256 answers", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const p = await phone();
    const { challenge, final } = await p.registerWithAuth({
      user: "bob",
      password: "s3cret-bob",
      algorithm: "SHA-256",
    });
    const offers = headersOf(challenge?.text ?? "", "WWW-Authenticate");
    expect(offers).toHaveLength(2);
    expect(parseDigestHeader(offers[0] ?? "")?.get("algorithm")).toBe("MD5");
    expect(parseDigestHeader(offers[1] ?? "")?.get("algorithm")).toBe("SHA-256");
    for (const o of offers) {
      expect(parseDigestHeader(o)?.get("qop")).toBe("auth");
      expect(parseDigestHeader(o)?.get("opaque")).toBeTruthy();
    }
    expect(statusOf(final?.text ?? "")).toBe(200);
    expect(pbx.registrar.contactsOf(bob.id)).toHaveLength(1);
  });

  it("answers a wrong password, an unknown user and a disabled device byte for byte alike (but the nonce)", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const p = await phone();
    const challenge = await p.request(p.register({ user: "alice", callId: "same-call", cseq: 1 }));
    const normalise = (text: string) =>
      text
        .replace(/nonce="[^"]+"/g, 'nonce="N"')
        .replace(/;tag=[^;\r\n>]+/g, ";tag=T")
        .replace(/branch=[^;\r\n]+/g, "branch=B");
    const attempt = async (username: string, password: string) => {
      const authorization = answerChallenge(challenge?.text ?? "", {
        username,
        password,
        method: "REGISTER",
        uri: `sip:${TEST_REALM}`,
        algorithm: "MD5",
      });
      const res = await p.request(p.register({ user: "alice", callId: "same-call", cseq: 2, authorization }));
      return res?.text ?? "";
    };
    const wrong = await attempt("alice", "not-the-password");
    const unknown = await attempt("mallory", "whatever");
    const disabled = await attempt("carol", "carol-pw");
    expect(statusOf(wrong)).toBe(401);
    expect(wrong).not.toContain("stale");
    expect(normalise(unknown)).toBe(normalise(wrong));
    expect(normalise(disabled)).toBe(normalise(wrong));
    // and the nonce really is fresh each time
    expect(wrong.match(/nonce="[^"]+"/)?.[0]).not.toBe(unknown.match(/nonce="[^"]+"/)?.[0]);
  });

  it("says stale=true for an expired nonce and refuses a replayed nonce count", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices, nonceLifetimeMs: 1000 });
    const p = await phone();
    const challenge = (await p.request(p.register({ user: "alice", cseq: 1 })))?.text ?? "";
    const auth = (nc: string, password = "secret") =>
      answerChallenge(challenge, {
        username: "alice",
        password,
        method: "REGISTER",
        uri: `sip:${TEST_REALM}`,
        algorithm: "MD5",
        nc,
      });
    const send = async (authorization: string) =>
      (await p.request(p.register({ user: "alice", authorization })))?.text ?? "";
    const first = auth("00000001");
    expect(statusOf(await send(first))).toBe(200);
    // the same Authorization (same nonce and nc) in a new request: a replay
    const replay = await send(first);
    expect(statusOf(replay)).toBe(401);
    expect(headersOf(replay, "WWW-Authenticate")[0]).toContain("stale=true");
    expect(statusOf(await send(auth("00000002")))).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    const stale = await send(auth("00000003"));
    expect(statusOf(stale)).toBe(401);
    const offers = headersOf(stale, "WWW-Authenticate");
    expect(offers).toHaveLength(2);
    for (const o of offers) expect(o).toContain("stale=true");
    // stale=true only when the credentials were right
    const wrong = await send(auth("00000004", "wrong"));
    expect(statusOf(wrong)).toBe(401);
    expect(wrong).not.toContain("stale=true");
  });

  it("clamps Expires to [60, 3600], keeps several contacts, removes one with 0 and all with *", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const p = await phone();
    const c1 = `sip:alice@127.0.0.1:${p.port};line=1`;
    const c2 = `sip:alice@127.0.0.1:${p.port};line=2`;
    const c3 = `sip:alice@127.0.0.1:${p.port};line=3`;
    const first = await p.registerWithAuth({
      user: "alice",
      password: "secret",
      contact: [`<${c1}>;expires=10`, `<${c2}>`],
      expires: 99999,
    });
    expect(statusOf(first.final?.text ?? "")).toBe(200);
    expect(grantedFor(first.final?.text ?? "", c1)).toBe(60);
    expect(grantedFor(first.final?.text ?? "", c2)).toBe(3600);
    const second = await p.registerWithAuth({
      user: "alice",
      password: "secret",
      contact: `<${c3}>`,
      expires: 600,
    });
    const text = second.final?.text ?? "";
    expect(grantedFor(text, c1)).toBeGreaterThanOrEqual(59);
    expect(grantedFor(text, c2)).toBeGreaterThanOrEqual(3599);
    expect(grantedFor(text, c3)).toBe(600);
    expect(
      pbx.registrar
        .contactsOf(alice.id)
        .map((c) => c.contactUri)
        .sort(),
    ).toEqual([c1, c2, c3]);

    const remove = await p.registerWithAuth({
      user: "alice",
      password: "secret",
      contact: `<${c2}>`,
      expires: 0,
    });
    expect(grantedFor(remove.final?.text ?? "", c2)).toBeUndefined();
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(2);
    expect(pbx.events.of("registration.down")).toEqual([
      { kind: "registration.down", deviceId: alice.id, contactUri: c2, reason: "unregistered" },
    ]);
    const all = await p.registerWithAuth({ user: "alice", password: "secret", contact: "*", expires: 0 });
    expect(statusOf(all.final?.text ?? "")).toBe(200);
    expect(headersOf(all.final?.text ?? "", "Contact")).toEqual([]);
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(0);
    expect(pbx.events.of("registration.down")).toHaveLength(3);
  });

  it("refuses a REGISTER for another AOR than the digest username (403)", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const p = await phone();
    const r = await p.registerWithAuth({ user: "alice", aor: "bob", password: "secret" });
    expect(statusOf(r.final?.text ?? "")).toBe(403);
    expect(pbx.registrar.contactsOf(bob.id)).toHaveLength(0);
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(0);
  });

  it("gives a phone behind NAT the short expiry and a request target through its source address", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices, options: { natExpires: 90 } });
    const p = await phone();
    const natted = "sip:alice@192.168.1.50:5060";
    const r = await p.registerWithAuth({
      user: "alice",
      password: "secret",
      contact: `<${natted}>`,
      expires: 3600,
    });
    expect(grantedFor(r.final?.text ?? "", natted)).toBe(90);
    const [c] = pbx.registrar.contactsOf(alice.id);
    const { contactTarget } = await import("./target.ts");
    expect(c && contactTarget(c)).toEqual({ uri: natted, proxy: `sip:127.0.0.1:${p.port};transport=udp` });
    // a phone on its own address keeps what it asked for and is sent to directly
    const direct = await p.registerWithAuth({ user: "bob", password: "s3cret-bob", expires: 1800 });
    const own = `sip:bob@127.0.0.1:${p.port}`;
    expect(grantedFor(direct.final?.text ?? "", own)).toBe(1800);
    const [b] = pbx.registrar.contactsOf(bob.id);
    expect(b && contactTarget(b)).toEqual({ uri: own, proxy: undefined });
  });

  it("sends keepalives to a NATed contact and marks it offline when they go unanswered", async () => {
    pbx = await startRegistrarPbx({
      dbFile: dbFile(),
      devices,
      options: { keepaliveIntervalMs: 300 },
      registrar: { keepaliveTimeoutMs: 250, tickMs: 50 },
    });
    const p = await phone();
    const natted = "sip:alice@10.0.0.7:5060";
    await p.registerWithAuth({ user: "alice", password: "secret", contact: `<${natted}>` });
    // answered keepalives keep it registered
    const ka = await p.wait((m) => m.text.startsWith("OPTIONS sip:alice@10.0.0.7:5060"), 3000);
    expect(ka).toBeDefined();
    await new Promise((r) => setTimeout(r, 1200));
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(1);
    p.answerOptions = false; // the phone is unplugged
    const down = await pbx.events.waitFor("registration.down", (e) => e.contactUri === natted, 10_000);
    expect(down.reason).toBe("offline");
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(0);
  });

  it("drops a device's contacts when the edge removes the device", async () => {
    const directory = new FakeDirectory(devices);
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices, directory });
    const p = await phone();
    await p.registerWithAuth({ user: "bob", password: "s3cret-bob" });
    expect(pbx.registrar.contactsOf(bob.id)).toHaveLength(1);
    directory.apply({ remove: [bob.id] });
    expect(pbx.registrar.contactsOf(bob.id)).toHaveLength(0);
    expect(pbx.events.of("registration.down")).toMatchObject([{ deviceId: bob.id, reason: "removed" }]);
    // and it can no longer register
    const again = await p.registerWithAuth({ user: "bob", password: "s3cret-bob" });
    expect(statusOf(again.final?.text ?? "")).toBe(401);
  });

  it("keeps registrations across a restart (new engine and app over the same file), dropping expired ones", async () => {
    const file = dbFile();
    pbx = await startRegistrarPbx({ dbFile: file, devices });
    const p = await phone();
    await p.registerWithAuth({
      user: "alice",
      password: "secret",
      contact: `<sip:alice@127.0.0.1:${p.port}>`,
      expires: 3600,
    });
    await p.registerWithAuth({
      user: "bob",
      password: "s3cret-bob",
      contact: `<sip:bob@127.0.0.1:${p.port}>`,
      expires: 60,
    });
    await pbx.close();
    pbx = undefined;
    // bob's 60 s ran out while the relay was down: pretend by starting 61 s later
    const realNow = Date.now;
    const later = () => realNow() + 61_000;
    Date.now = later;
    try {
      pbx = await startRegistrarPbx({ dbFile: file, devices });
    } finally {
      Date.now = realNow;
    }
    expect(pbx.registrar.contactsOf(alice.id).map((c) => c.contactUri)).toEqual([
      `sip:alice@127.0.0.1:${p.port}`,
    ]);
    expect(pbx.registrar.contactsOf(bob.id)).toHaveLength(0);
    expect(pbx.events.of("registration.down")).toMatchObject([{ deviceId: bob.id, reason: "expired" }]);
  });
});
