// The auth middleware for INVITE on the real engine: 407 with both Proxy-Authenticate offers, phones by their
// sipUsername and Twilio by the inbound trunk credentials reach the handler with req.locals.caller set; the
// trunk username is unknown for REGISTER; nothing unauthenticated reaches the handler.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeDirectory, testDevice, testSettings } from "../testing/fakes.ts";
import {
  answerChallenge,
  headersOf,
  RawPhone,
  type RegistrarPbx,
  startRegistrarPbx,
  statusOf,
} from "../testing/registrar-pbx.ts";
import { type Caller, callerOf } from "./middleware.ts";

const alice = testDevice("alice", "secret", { extension: "201" });
const inbound = { username: "twilio-in", password: "trunk-pass-123" };

let dir: string;
let pbx: RegistrarPbx | undefined;
let peer: RawPhone | undefined;
const callers: (Caller | undefined)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-auth-"));
});
afterEach(async () => {
  await peer?.close();
  await pbx?.close();
  pbx = undefined;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function invite(p: RawPhone, proxyAuthorization?: string): { text: string; branch: string } {
  const r = p.register({ user: "201", callId: `inv-${Math.random()}` });
  const text = r.text
    .replace("REGISTER sip:gosip.test SIP/2.0", "INVITE sip:201@gosip.test SIP/2.0")
    .replace(/CSeq: (\d+) REGISTER/, "CSeq: $1 INVITE")
    .replace(
      "Content-Length: 0",
      `${proxyAuthorization ? `Proxy-Authorization: ${proxyAuthorization}\r\n` : ""}Content-Length: 0`,
    );
  return { text, branch: r.branch };
}

describe("auth middleware", () => {
  it("challenges INVITE with 407 (MD5 then SHA-256) and passes devices and the inbound trunk with their caller", async () => {
    const directory = new FakeDirectory([alice], testSettings({ inbound }));
    pbx = await startRegistrarPbx({
      dbFile: join(dir, "a.db"),
      devices: [alice],
      directory,
      onInvite: (req, res) => {
        callers.push(callerOf(req));
        res.send(480);
      },
    });
    peer = await RawPhone.open("127.0.0.1", pbx.engine.sipPort);
    const challenge = (await peer.request(invite(peer)))?.text ?? "";
    expect(statusOf(challenge)).toBe(407);
    const offers = headersOf(challenge, "Proxy-Authenticate");
    expect(offers.map((o) => /algorithm=([\w-]+)/.exec(o)?.[1])).toEqual(["MD5", "SHA-256"]);
    expect(callers).toHaveLength(0);

    // one nonce for all answers, so each counts on (a repeated nc would be a replay)
    let nc = 0;
    const as = (username: string, password: string, algorithm: "MD5" | "SHA-256" = "MD5") =>
      answerChallenge(challenge, {
        username,
        password,
        method: "INVITE",
        uri: "sip:201@gosip.test",
        algorithm,
        nc: (++nc).toString(16).padStart(8, "0"),
      });
    expect(statusOf((await peer.request(invite(peer, as("alice", "secret"))))?.text ?? "")).toBe(480);
    expect(
      statusOf(
        (await peer.request(invite(peer, as(inbound.username, inbound.password, "SHA-256"))))?.text ?? "",
      ),
    ).toBe(480);
    expect(callers).toEqual([
      { kind: "device", device: alice, username: "alice" },
      { kind: "trunk", username: inbound.username },
    ]);
    // a wrong trunk password: challenged again, handler not reached
    expect(statusOf((await peer.request(invite(peer, as(inbound.username, "nope"))))?.text ?? "")).toBe(407);
    expect(callers).toHaveLength(2);
    // the trunk cannot REGISTER: its username is unknown there
    const reg = await peer.registerWithAuth({ user: inbound.username, password: inbound.password });
    expect(statusOf(reg.final?.text ?? "")).toBe(401);
  });

  it("refuses the inbound trunk when the edge configured none", async () => {
    pbx = await startRegistrarPbx({
      dbFile: join(dir, "b.db"),
      devices: [alice],
      onInvite: (_q, r) => r.send(480),
    });
    peer = await RawPhone.open("127.0.0.1", pbx.engine.sipPort);
    const challenge = (await peer.request(invite(peer)))?.text ?? "";
    const auth = answerChallenge(challenge, {
      username: inbound.username,
      password: inbound.password,
      method: "INVITE",
      uri: "sip:201@gosip.test",
      algorithm: "MD5",
    });
    expect(statusOf((await peer.request(invite(peer, auth)))?.text ?? "")).toBe(407);
  });
});
