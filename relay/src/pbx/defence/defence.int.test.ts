// The scanner defence in front of the registrar, on the real engine and a real libSQL file: scanners get no
// answer, a wrong-password flood from 127.0.0.2 gets that address banned while a real phone on 127.0.0.1 keeps
// registering (sipp), bans survive a restart and the edge's ban.lift command lifts them, an extension under
// attack raises an alert without locking out its phone, trusted networks are never banned.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describe as explain, killAll, startSipp } from "../../../test/sipp.ts";
import { FakeDirectory, testDevice, testSettings } from "../testing/fakes.ts";
import { RawPhone, type RegistrarPbx, startRegistrarPbx, statusOf } from "../testing/registrar-pbx.ts";

const alice = testDevice("alice", "secret", { extension: "201" });
const bob = testDevice("bob", "s3cret-bob", { extension: "202" });
const devices = [alice, bob];

let dir: string;
let pbx: RegistrarPbx | undefined;
const phones: RawPhone[] = [];

async function phone(address: string): Promise<RawPhone> {
  if (!pbx) throw new Error("no pbx");
  const p = await RawPhone.open(address, pbx.engine.sipPort);
  phones.push(p);
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-defence-"));
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

describe("scanner defence", () => {
  it("drops known scanner User-Agents without any answer, and bans their source", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const agents = [
      "friendly-scanner",
      "SIPVicious 0.3.4",
      "sipcli/v1.8",
      "VaxSIPUserAgent/3.1",
      "sundayddr",
      "PortSIP VoIP SDK 11.2",
    ];
    // each from its own address, so each is dropped by the User-Agent filter (not by the ban the first earned)
    const scanners = await Promise.all(agents.map((_ua, i) => phone(`127.0.3.${i + 1}`)));
    await Promise.all(
      agents.map(async (ua, i) => {
        const scanner = scanners[i];
        if (!scanner) return;
        scanner.send(scanner.register({ user: "100", userAgent: ua }).text);
        expect(await scanner.wait(() => true, 1000), ua).toBeUndefined();
        expect(pbx?.defence.isBanned(scanner.address), ua).toBe(true);
      }),
    );
    expect(pbx.events.of("ban.added").map((e) => e.reason)).toEqual(agents.map(() => "scanner"));
    // an INVITE too: the engine's own 100 Trying is all it gets, and srf does not keep the INVITE
    const caller = await phone("127.0.3.50");
    const invite = caller
      .register({ user: "100", userAgent: "friendly-scanner" })
      .text.replace(/REGISTER/g, "INVITE");
    caller.send(invite);
    expect(await caller.wait((m) => statusOf(m.text) > 100, 1000)).toBeUndefined();
    const agent = (
      pbx.srf as unknown as {
        _app: { client: { mapServer: Map<unknown, { pendingNetworkInvites: Map<string, unknown> }> } };
      }
    )._app.client;
    expect([...agent.mapServer.values()].map((o) => o.pendingNetworkInvites.size)).toEqual([0]);
    // a phone with an ordinary User-Agent elsewhere is answered
    const real = await phone("127.0.0.1");
    const r = await real.registerWithAuth({ user: "alice", password: "secret" });
    expect(statusOf(r.final?.text ?? "")).toBe(200);
  });

  it("bans a wrong-password flood from 127.0.0.2 while the phone on 127.0.0.1 keeps registering; the ban survives a restart and the edge can lift it", async () => {
    const file = dbFile();
    pbx = await startRegistrarPbx({ dbFile: file, devices });
    // the real phone: sipp registering alice 10 times a second throughout
    const legit = await startSipp({
      scenario: "uac-register-auth.xml",
      remote: pbx.engine.sipTarget,
      service: "alice",
      auth: { username: "alice", password: "secret" },
      calls: 40,
      rate: 10,
      timeoutSeconds: 20,
    });
    const attacker = await phone("127.0.0.2");
    const started = Date.now();
    let attempts = 0;
    let answered = 0;
    // bounded: at most 300 guesses or 10 s; each guess is a full challenge + answer
    while (attempts < 300 && Date.now() - started < 10_000) {
      attempts++;
      const guess = await attacker.registerWithAuth({
        user: attempts % 2 ? "alice" : "admin",
        password: `guess${attempts}`,
      });
      if (guess.final === undefined) break; // dropped: banned
      answered++;
    }
    expect(pbx.defence.isBanned("127.0.0.2")).toBe(true);
    expect(answered).toBeLessThanOrEqual(12);
    const ban = await pbx.events.waitFor("ban.added", (e) => e.address === "127.0.0.2");
    expect(ban).toMatchObject({ reason: "auth_failures", level: 1 });
    expect(Date.parse(ban.until) - Date.now()).toBeGreaterThan(4 * 60_000);
    // keep hammering: no answers at all
    for (let i = 0; i < 20; i++) attacker.send(attacker.register({ user: "alice" }).text);
    const r = await legit.done;
    expect(r.stats.successful, explain(r)).toBe(40);
    expect(r.stats.failed).toBe(0);
    expect(pbx.registrar.contactsOf(alice.id)).toHaveLength(1);
    expect(pbx.defence.listBans().map((b) => b.address)).toEqual(["127.0.0.2"]);
    await pbx.close();
    await attacker.close();
    phones.splice(phones.indexOf(attacker), 1);

    // restart over the same file: still banned
    pbx = await startRegistrarPbx({ dbFile: file, devices });
    expect(pbx.defence.listBans()).toMatchObject([
      { address: "127.0.0.2", reason: "auth_failures", level: 1 },
    ]);
    const again = await phone("127.0.0.2");
    expect((await again.registerWithAuth({ user: "alice", password: "secret" })).final).toBeUndefined();
    // the admin lifts it through the edge
    await pbx.commands.dispatch({ kind: "ban.lift", address: "127.0.0.2" });
    expect(pbx.events.of("ban.lifted")).toEqual([{ kind: "ban.lifted", address: "127.0.0.2", by: "admin" }]);
    expect(pbx.defence.listBans()).toEqual([]);
    const ok = await again.registerWithAuth({ user: "alice", password: "secret" });
    expect(statusOf(ok.final?.text ?? "")).toBe(200);
    await expect(pbx.commands.dispatch({ kind: "ban.lift", address: "127.0.0.2" })).rejects.toThrow(
      /no active ban/,
    );
  });

  it("escalates repeat offenders and lifts expired bans by itself", async () => {
    pbx = await startRegistrarPbx({
      dbFile: dbFile(),
      devices,
      defence: {
        failures: { threshold: 3, windowMs: 60_000, underAttackThreshold: 2 },
        ban: { baseMs: 400, factor: 4, maxMs: 24 * 3_600_000, rememberMs: 3_600_000 },
        sweepIntervalMs: 50,
      },
    });
    const attacker = await phone("127.0.0.5");
    const flood = async () => {
      for (let i = 0; i < 10; i++) {
        const g = await attacker.registerWithAuth({ user: "nobody", password: "x", timeoutMs: 300 });
        if (g.final === undefined) return;
      }
    };
    await flood();
    const first = await pbx.events.waitFor("ban.added", (e) => e.address === "127.0.0.5");
    expect(first.level).toBe(1);
    expect(await pbx.events.waitFor("ban.lifted", (e) => e.address === "127.0.0.5", 3000)).toMatchObject({
      by: "expired",
    });
    await flood();
    const second = await pbx.events.waitFor("ban.added", (e) => e.address === "127.0.0.5" && e.level === 2);
    // 400 ms × 4
    expect(Date.parse(second.until) - Date.now()).toBeGreaterThan(1000);
  });

  it("alerts when an extension is under attack from many sources, tightens their limit, and never locks out its phone", async () => {
    pbx = await startRegistrarPbx({
      dbFile: dbFile(),
      devices,
      defence: { extension: { threshold: 6, windowMs: 60_000, attackMs: 60_000, alertIntervalMs: 60_000 } },
    });
    const owner = await phone("127.0.0.1");
    const sources = await Promise.all(
      ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"].map((a) => phone(a)),
    );
    for (let round = 0; round < 3; round++) {
      for (const s of sources) await s.registerWithAuth({ user: "bob", password: `guess-${round}` });
      // the owner's phone between the guesses: always in
      const r = await owner.registerWithAuth({ user: "bob", password: "s3cret-bob" });
      expect(statusOf(r.final?.text ?? ""), `round ${round}`).toBe(200);
    }
    const alert = await pbx.events.waitFor("security.alert");
    expect(alert).toMatchObject({ alert: "extension_under_attack", deviceId: bob.id });
    expect(alert.sources.length).toBeGreaterThanOrEqual(3);
    expect(pbx.events.of("security.alert")).toHaveLength(1); // rate-limited
    // three failures each on an extension under attack: banned (the normal limit is 10)
    for (const s of sources) expect(pbx.defence.isBanned(s.address), s.address).toBe(true);
    expect(pbx.defence.isBanned("127.0.0.1")).toBe(false);
  });

  it("never bans or rate limits trusted networks", async () => {
    const directory = new FakeDirectory(devices, testSettings({ trustedNetworks: ["127.0.2.0/24"] }));
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices, directory });
    const lan = await phone("127.0.2.9");
    for (let i = 0; i < 15; i++) {
      const g = await lan.registerWithAuth({ user: "alice", password: "typo" });
      expect(statusOf(g.final?.text ?? "")).toBe(401);
    }
    expect(pbx.defence.isBanned("127.0.2.9")).toBe(false);
    const ok = await lan.registerWithAuth({ user: "alice", password: "secret" });
    expect(statusOf(ok.final?.text ?? "")).toBe(200);
  });

  it("rate limits one source to its burst and drops the rest silently", async () => {
    pbx = await startRegistrarPbx({ dbFile: dbFile(), devices });
    const noisy = await phone("127.0.0.6");
    // unauthenticated REGISTERs (each answered 401 when let through; not auth failures)
    for (let i = 0; i < 100; i++) noisy.send(noisy.register({ user: "alice" }).text);
    await new Promise((r) => setTimeout(r, 1500));
    const answers = noisy.received.filter((m) => statusOf(m.text) >= 200).length;
    // 40 burst (+ up to 20/s refilled while they arrive); never all 100
    expect(answers).toBeGreaterThanOrEqual(40);
    expect(answers).toBeLessThan(70);
  });
});
