// MWI over the real engine with an unmodified drachtio-srf app: a scripted UDP phone subscribes to its
// message-summary, gets the counts in NOTIFYs (on subscribe, on the edge's mwi command, on refresh), and the
// subscription ends with a terminating NOTIFY on unsubscribe, on expiry and when the device is removed.
import { createHash } from "node:crypto";
import type Srf from "drachtio-srf";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startTestEngine, type TestEngine } from "../../../test/harness.ts";
import type { SipRequest } from "../../engine/sip/message.ts";
import { tagOf } from "../../engine/sip/response.ts";
import { request, respond, UdpPeer } from "../../engine/wire/udp-peer.ts";
import { authChain } from "../auth/middleware.ts";
import { FakeDirectory, MemoryCommandBus, testDevice } from "../testing/fakes.ts";
import { installMwi, type Mwi, type MwiOptions } from "./mwi.ts";

const alice = testDevice("alice", "alice-secret-1", { id: "dev-alice", extension: "201" });
const bob = testDevice("bob", "bob-secret-12", { id: "dev-bob", extension: "202" });

interface Rig {
  engine: TestEngine;
  peer: UdpPeer;
  directory: FakeDirectory;
  commands: MemoryCommandBus;
  mwi: Mwi;
}

const open: Rig[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    r.peer.close();
    await r.engine.close();
  }
});

/**
 * Stand-in for the auth middleware (it challenges and then sets req.locals.caller): identifies the device by
 * the From user, or leaves the request anonymous for an unknown user.
 */
function identify(directory: FakeDirectory, req: Srf.SrfRequest): void {
  const user = /sip:([^@]+)@/.exec(req.get("From"))?.[1] ?? "";
  const device = directory.bySipUsername(user);
  (req as { locals?: unknown }).locals = device ? { caller: { kind: "device", device } } : {};
}

async function rig(options: MwiOptions & { realAuth?: boolean } = {}): Promise<Rig> {
  const { realAuth, ...mwiOptions } = options;
  const engine = await startTestEngine();
  const peer = await UdpPeer.open();
  const directory = new FakeDirectory([alice, bob]);
  const commands = new MemoryCommandBus();
  let mwi: Mwi | undefined;
  await engine.connectApp((srf) => {
    if (realAuth) {
      const reporter = { authFailed: () => undefined, authSucceeded: () => undefined };
      for (const fn of authChain({ directory, log: pino({ level: "silent" }) }, reporter)) srf.use(fn);
    } else
      srf.use("subscribe", (req, _res, next) => {
        identify(directory, req);
        next();
      });
    mwi = installMwi(
      srf,
      {
        log: pino({ level: "silent" }),
        directory,
        commands,
        local: { host: "127.0.0.1", port: engine.sipPort, hostports: [] },
        now: Date.now,
      },
      mwiOptions,
    );
  });
  if (!mwi) throw new Error("installMwi did not run");
  const r = { engine, peer, directory, commands, mwi };
  open.push(r);
  return r;
}

let n = 0;
/** One subscription dialog of the UDP phone, as user `from`, to the mailbox `to`. */
function subscriber(r: Rig, from: string, to = from) {
  n++;
  const callId = `mwi-${n}-${Date.now()}`;
  const tag = `s${n}`;
  let toTag: string | undefined;
  let cseq = 0;
  const uri = `sip:${to}@127.0.0.1:${r.engine.sipPort}`;
  return {
    callId,
    get toTag() {
      return toTag;
    },
    send(extra: string[]): void {
      cseq++;
      const text = request({
        method: "SUBSCRIBE",
        uri,
        peerPort: r.peer.port,
        callId,
        cseq,
        fromTag: tag,
        ...(toTag ? { toTag } : {}),
        extra,
      }).replace(/sip:alice@127\.0\.0\.1:(\d+)>;tag=/, `sip:${from}@127.0.0.1:$1>;tag=`);
      r.peer.send(text, r.engine.sipPort);
    },
    async subscribe(extra: string[], status = 200) {
      this.send(extra);
      const res = await r.peer.response(status, "SUBSCRIBE");
      if (status < 300 && !toTag) toTag = tagOf(res.headers.get("to") ?? "");
      return res;
    },
  };
}

/** The next NOTIFY, answered with `status`. */
async function notify(r: Rig, status = 200): Promise<{ req: SipRequest; body: string }> {
  const req = await r.peer.request("NOTIFY");
  r.peer.send(
    respond(req, status, status === 200 ? "OK" : "Call/Transaction Does Not Exist"),
    r.engine.sipPort,
  );
  return { req, body: req.body.toString("utf8") };
}

const md5 = (s: string): string => createHash("md5").update(s).digest("hex");

/** A Proxy-Authorization answering a 407's MD5 challenge (RFC 2617 qop=auth). */
function proxyAuthorization(challenge: string, user: string, password: string, uri: string): string {
  const param = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1] ?? "";
  const realm = param("realm");
  const nonce = param("nonce");
  const cnonce = "0a4f113b";
  const nc = "00000001";
  const ha1 = md5(`${user}:${realm}:${password}`);
  const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${md5(`SUBSCRIBE:${uri}`)}`);
  const opaque = param("opaque");
  return `Proxy-Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"${opaque ? `, opaque="${opaque}"` : ""}`;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((res) => setTimeout(res, 10));
  }
}

describe("MWI (message-summary subscriptions)", () => {
  it("subscribe → NOTIFY 'no'; mwi command → 'yes 1/0'; refresh → NOTIFY again; unsubscribe → terminated", async () => {
    const r = await rig();
    const s = subscriber(r, "alice");
    const ok = await s.subscribe([
      "Event: message-summary",
      "Expires: 600",
      "Accept: application/simple-message-summary",
    ]);
    expect(ok.headers.get("expires")).toBe("600");
    expect(ok.headers.get("contact")).toContain(`127.0.0.1:${r.engine.sipPort}`);

    const first = await notify(r);
    expect(first.req.headers.get("event")).toBe("message-summary");
    expect(first.req.headers.get("content-type")).toBe("application/simple-message-summary");
    expect(first.req.headers.get("subscription-state")).toMatch(/^active;expires=(600|599)$/);
    expect(tagOf(first.req.headers.get("from") ?? "")).toBe(s.toTag);
    expect(first.req.headers.get("call-id")).toBe(s.callId);
    expect(first.body).toBe(
      "Messages-Waiting: no\r\nMessage-Account: sip:201@127.0.0.1\r\nVoice-Message: 0/0 (0/0)\r\n",
    );

    await r.commands.dispatch({
      kind: "mwi",
      mailboxes: [{ deviceId: alice.id, newMessages: 1, oldMessages: 0 }],
    });
    const lit = await notify(r);
    expect(lit.body).toContain("Messages-Waiting: yes\r\n");
    expect(lit.body).toContain("Voice-Message: 1/0 (0/0)\r\n");

    // Another device's counts do not reach this phone.
    await r.commands.dispatch({
      kind: "mwi",
      mailboxes: [{ deviceId: bob.id, newMessages: 4, oldMessages: 2 }],
    });
    expect(await r.peer.sees((m) => m.msg.kind === "request" && m.msg.method === "NOTIFY", 300)).toBe(false);

    const refreshed = await s.subscribe(["Event: message-summary", "Expires: 120"]);
    expect(refreshed.headers.get("expires")).toBe("120");
    const again = await notify(r);
    expect(again.req.headers.get("subscription-state")).toMatch(/^active;expires=(120|119)$/);
    expect(again.body).toContain("Voice-Message: 1/0 (0/0)");

    // The message was listened to: read now.
    await r.commands.dispatch({
      kind: "mwi",
      mailboxes: [{ deviceId: alice.id, newMessages: 0, oldMessages: 1 }],
    });
    const read = await notify(r);
    expect(read.body).toContain("Messages-Waiting: no\r\n");
    expect(read.body).toContain("Voice-Message: 0/1 (0/0)");

    s.send(["Event: message-summary", "Expires: 0"]);
    await r.peer.next((m) => m.msg.kind === "response" && m.msg.status >= 200 && m.msg.status < 300);
    const last = await notify(r);
    expect(last.req.headers.get("subscription-state")).toMatch(/^terminated/);
    await until(() => r.mwi.subscriptionCount() === 0);
    // The dialog is gone at both ends: a refresh now is refused.
    await s.subscribe(["Event: message-summary", "Expires: 600"], 481);
  });

  it("clamps Expires to the configured range and ends a subscription that is not refreshed (reason=timeout)", async () => {
    const r = await rig({ minExpires: 2, maxExpires: 3600 });
    const short = subscriber(r, "alice");
    expect((await short.subscribe(["Event: message-summary", "Expires: 1"])).headers.get("expires")).toBe(
      "2",
    );
    const start = Date.now();
    expect((await notify(r)).req.headers.get("subscription-state")).toMatch(/^active;expires=[12]$/);
    const ended = await notify(r);
    expect(ended.req.headers.get("subscription-state")).toBe("terminated;reason=timeout");
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500);
    await until(() => r.mwi.subscriptionCount() === 0);

    const long = subscriber(r, "alice");
    expect((await long.subscribe(["Event: message-summary", "Expires: 86400"])).headers.get("expires")).toBe(
      "3600",
    );
    await notify(r);
    const none = subscriber(r, "bob");
    expect((await none.subscribe(["Event: message-summary"])).headers.get("expires")).toBe("3600");
    await notify(r);
    expect(r.mwi.subscriptionCount()).toBe(2);
  });

  it("refuses other event packages (489 + Allow-Events), other mailboxes and unauthenticated subscribers (403)", async () => {
    const r = await rig();
    const presence = await subscriber(r, "alice").subscribe(["Event: presence", "Expires: 600"], 489);
    expect(presence.headers.get("allow-events")).toBe("message-summary");
    await subscriber(r, "alice").subscribe(["Expires: 600"], 489);
    // alice's phone asking for bob's mailbox, by SIP username and by extension
    await subscriber(r, "alice", "bob").subscribe(["Event: message-summary"], 403);
    await subscriber(r, "alice", "202").subscribe(["Event: message-summary"], 403);
    await subscriber(r, "anonymous", "alice").subscribe(["Event: message-summary"], 403);
    await subscriber(r, "alice").subscribe(["Event: message-summary", "Accept: application/pidf+xml"], 406);
    // by extension is the same mailbox
    await subscriber(r, "alice", "201").subscribe(["Event: message-summary"]);
    expect((await notify(r)).body).toContain("Message-Account: sip:201@127.0.0.1");
    expect(r.mwi.subscriptionCount(alice.id)).toBe(1);
  });

  it("a phone that answers a NOTIFY with 481 loses its subscription; a removed device gets reason=noresource", async () => {
    const r = await rig();
    await subscriber(r, "alice").subscribe(["Event: message-summary"]);
    await notify(r, 481);
    await until(() => r.mwi.subscriptionCount(alice.id) === 0);
    await r.commands.dispatch({
      kind: "mwi",
      mailboxes: [{ deviceId: alice.id, newMessages: 2, oldMessages: 0 }],
    });
    expect(await r.peer.sees((m) => m.msg.kind === "request" && m.msg.method === "NOTIFY", 300)).toBe(false);

    await subscriber(r, "bob").subscribe(["Event: message-summary"]);
    await notify(r);
    r.directory.apply({ remove: [bob.id] });
    const gone = await notify(r);
    expect(gone.req.headers.get("subscription-state")).toBe("terminated;reason=noresource");
    await until(() => r.mwi.subscriptionCount() === 0);
  });

  it("through the real auth chain: 407 first, the digest answer subscribes; a wrong password never does", async () => {
    const r = await rig({ realAuth: true });
    const uri = `sip:alice@127.0.0.1:${r.engine.sipPort}`;
    const s = subscriber(r, "alice");
    const challenge = await s.subscribe(["Event: message-summary", "Expires: 600"], 407);
    const www = challenge.headers.getAll("proxy-authenticate");
    const md5Challenge = www.find((h) => /algorithm=MD5/i.test(h)) ?? www[0] ?? "";
    expect(md5Challenge).toMatch(/^Digest /);
    const ok = await s.subscribe(
      [
        "Event: message-summary",
        "Expires: 600",
        proxyAuthorization(md5Challenge, "alice", "alice-secret-1", uri),
      ],
      200,
    );
    expect(ok.headers.get("expires")).toBe("600");
    expect((await notify(r)).body).toContain("Messages-Waiting: no");
    expect(r.mwi.subscriptionCount(alice.id)).toBe(1);

    const bad = subscriber(r, "alice");
    const c2 = await bad.subscribe(["Event: message-summary"], 407);
    const ch2 = c2.headers.getAll("proxy-authenticate").find((h) => /algorithm=MD5/i.test(h)) ?? "";
    await bad.subscribe(
      ["Event: message-summary", proxyAuthorization(ch2, "alice", "wrong-password", uri)],
      407,
    );
    expect(await r.peer.sees((m) => m.msg.kind === "request" && m.msg.method === "NOTIFY", 300)).toBe(false);
    expect(r.mwi.subscriptionCount(alice.id)).toBe(1);
  });

  it("a configuration snapshot with new counts updates the lamp", async () => {
    const r = await rig();
    await subscriber(r, "alice").subscribe(["Event: message-summary"]);
    expect((await notify(r)).body).toContain("Voice-Message: 0/0");
    r.directory.setMailbox({ deviceId: alice.id, newMessages: 3, oldMessages: 1 });
    r.directory.apply({ upsert: [alice] });
    expect((await notify(r)).body).toContain("Voice-Message: 3/1 (0/0)");
  });
});
