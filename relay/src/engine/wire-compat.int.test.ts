// Wire compatibility with drachtio-server: what an unmodified drachtio-srf application sees from the engine
// (reply texts, which responses are reported, CDR contents, headers the server rewrites) must be what
// drachtio-server's own source sends. Each case names the drachtio-server function it was checked against; the
// audit table is in the session notes (wire-audit.md). A scripted UDP peer plays the phones and trunks.

import { createSocket } from "node:dgram";
import type { EventEmitter } from "node:events";
import { type AddressInfo, connect, createServer } from "node:net";
import type Srf from "drachtio-srf";
import SrfCtor from "drachtio-srf";
import { afterEach, describe, expect, it } from "vitest";
import { connectSrf } from "../../test/harness.ts";
import { type Engine, startEngine } from "./index.ts";
import type { SipRequest } from "./sip/message.ts";
import { tagOf } from "./sip/response.ts";
import { encodeFrame, FrameDecoder } from "./wire/framing.ts";
import { request, respond, sdp, UdpPeer } from "./wire/udp-peer.ts";

const SECRET = "wire-compat-secret";

interface Ctx {
  engine: Engine;
  peer: UdpPeer;
  apps: Srf[];
  peers: UdpPeer[];
}

const open: Ctx[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) {
    for (const a of c.apps) a.disconnect();
    for (const p of c.peers) p.close();
    c.peer.close();
    await c.engine.close();
  }
});

async function setup(): Promise<Ctx> {
  const engine = await startEngine({
    adminPort: 0,
    secret: SECRET,
    sipHost: "127.0.0.1",
    sipPort: 0,
    logLevel: "silent",
  });
  const ctx: Ctx = { engine, peer: await UdpPeer.open(), apps: [], peers: [] };
  open.push(ctx);
  return ctx;
}

/** Another scripted peer (a proxy destination), closed with the context. */
async function extraPeer(ctx: Ctx): Promise<UdpPeer> {
  const p = await UdpPeer.open();
  ctx.peers.push(p);
  return p;
}

/** Connects an app with its handlers; resolves once the engine has processed its routes (harness.ts). */
async function connectApp(ctx: Ctx, install: (srf: Srf) => void): Promise<Srf> {
  const srf = await connectSrf("127.0.0.1", ctx.engine.adminPort, SECRET, install);
  ctx.apps.push(srf);
  return srf;
}

/**
 * Resolves once cond() holds (checked every 10 ms), fails after 10 s: generous for a loaded machine, and free
 * when the condition holds at once.
 */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met within 10 s");
    await new Promise((r) => setTimeout(r, 10));
  }
}

let seq = 0;
/** A request from the main peer to `sip:<user>@<engine>`; `edit` may rewrite the text (e.g. Max-Forwards). */
function sendFromPeer(
  ctx: Ctx,
  method: string,
  user: string,
  opts: { body?: string; extra?: string[]; edit?: (text: string) => string } = {},
): { callId: string; sendInCall: (method: string, cseq: number, more?: InCallOptions) => void } {
  seq++;
  const callId = `wire-compat-${seq}-${Date.now()}`;
  const base = {
    uri: `sip:${user}@127.0.0.1:${ctx.engine.sipPort}`,
    peerPort: ctx.peer.port,
    callId,
    fromTag: `f${seq}`,
  };
  const text = request({
    ...base,
    method,
    cseq: 1,
    ...(opts.body === undefined ? {} : { body: opts.body }),
    ...(opts.extra === undefined ? {} : { extra: opts.extra }),
  });
  ctx.peer.send(opts.edit ? opts.edit(text) : text, ctx.engine.sipPort);
  // A later request of the same call (ACK, BYE, PRACK...), in the dialog the answer's To tag names.
  const sendInCall = (inCallMethod: string, cseq: number, more: InCallOptions = {}): void => {
    const inCall = request({
      ...base,
      method: inCallMethod,
      cseq,
      ...(more.toTag === undefined ? {} : { toTag: more.toTag }),
      ...(more.extra === undefined ? {} : { extra: more.extra }),
    });
    ctx.peer.send(inCall, ctx.engine.sipPort);
  };
  return { callId, sendInCall };
}

interface InCallOptions {
  toTag?: string | undefined;
  extra?: string[];
}

interface ProxyResults {
  connected: boolean;
  finalStatus: number;
  responses: { address: string; port: number; msgs: { status: number }[] }[];
}

type ProxyFn = (req: unknown, dest: string[], opts: object) => Promise<ProxyResults>;

interface RequestOpts {
  method: string;
  body?: string;
  headers?: Record<string, string>;
}

/** srf.request(uri, opts) as srf implements it (its type declarations ask for more arguments). */
function srfRequest(srf: Srf, uri: string, opts: RequestOpts): Promise<unknown> {
  return (srf.request as unknown as (u: string, o: RequestOpts) => Promise<unknown>).call(srf, uri, opts);
}

/** dialog.request(opts), resolving with the error message when srf rejects it. */
function dialogRequestError(
  d: Srf.Dialog,
  opts: RequestOpts,
): Promise<(Error & { code?: string }) | undefined> {
  return (d.request as unknown as (o: RequestOpts) => Promise<unknown>).call(d, opts).then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );
}

describe("login (drachtio client.cpp processAuthentication)", () => {
  /** srf's 'connect' arguments: (err, hostport, serverVersion, localHostports). */
  async function connectArgs(engine: Engine): Promise<unknown[]> {
    const srf = new SrfCtor();
    srf.on("error", () => undefined);
    const args = new Promise<unknown[]>((resolve) =>
      (srf.on.bind(srf) as (e: string, fn: (...a: unknown[]) => void) => void)("connect", (...a) =>
        resolve(a),
      ),
    );
    void srf.connect({ host: "127.0.0.1", port: engine.adminPort, secret: SECRET });
    const got = await args;
    srf.disconnect();
    return got;
  }

  it("passes srf's connect the SIP host-ports, the version and the local host-ports", async () => {
    const ctx = await setup();
    const [err, hostport, version, local] = await connectArgs(ctx.engine);
    const here = `127.0.0.1:${ctx.engine.sipPort}`;
    expect(err).toBeNull();
    expect(hostport).toBe(`udp/${here},tcp/${here}`);
    expect(version).toMatch(/^v\d+\.\d+\.\d+/);
    expect(local).toBe(`udp/${here},tcp/${here}`);
    expect(ctx.engine.hostports).toBe(hostport);
    expect(ctx.engine.localHostports).toBe(local);
  });

  it("with an external address, hostport names it and the local host-ports the bound address", async () => {
    const engine = await startEngine({
      adminPort: 0,
      secret: SECRET,
      sipHost: "127.0.0.1",
      sipPort: 0,
      externalAddress: "203.0.113.7",
      logLevel: "silent",
    });
    try {
      const [, hostport, , local] = await connectArgs(engine);
      expect(hostport).toBe(`udp/203.0.113.7:${engine.sipPort},tcp/203.0.113.7:${engine.sipPort}`);
      expect(local).toBe(`udp/127.0.0.1:${engine.sipPort},tcp/127.0.0.1:${engine.sipPort}`);
    } finally {
      await engine.close();
    }
  });
});

describe("proxy (drachtio sip-proxy-controller.cpp)", () => {
  it("reports only each branch's final response to the app, then done; CDRs per branch and upstream", async () => {
    const ctx = await setup();
    const carol = await extraPeer(ctx);
    const bob = await extraPeer(ctx);
    const cdrs: string[] = [];
    let results: ProxyResults | undefined;
    await connectApp(ctx, (srf) => {
      const on = srf.on.bind(srf) as (event: string, fn: (...args: unknown[]) => void) => void;
      on("cdr:attempt", (source) => cdrs.push(`attempt ${String(source)}`));
      on("cdr:start", (source, _time, role) => cdrs.push(`start ${String(source)} ${String(role)}`));
      on("cdr:stop", (source, _time, reason) => cdrs.push(`stop ${String(source)} ${String(reason)}`));
      srf.invite(async (req) => {
        results = await (srf.proxyRequest as ProxyFn)(
          req,
          [`sip:carol@127.0.0.1:${carol.port}`, `sip:bob@127.0.0.1:${bob.port}`],
          {},
        );
      });
    });
    sendFromPeer(ctx, "INVITE", "serial", { body: sdp(1000) });
    const toCarol = await carol.request("INVITE");
    carol.send(respond(toCarol, 180, "Ringing", { toTag: "c1" }), ctx.engine.sipPort);
    carol.send(respond(toCarol, 486, "Busy Here", { toTag: "c1" }), ctx.engine.sipPort);
    const toBob = await bob.request("INVITE");
    bob.send(respond(toBob, 180, "Ringing", { toTag: "b1" }), ctx.engine.sipPort);
    bob.send(
      respond(toBob, 200, "OK", { toTag: "b1", contact: `<sip:bob@127.0.0.1:${bob.port}>`, body: sdp(2) }),
      ctx.engine.sipPort,
    );
    await ctx.peer.response(200, "INVITE");
    await until(() => results !== undefined);
    // the 180s went upstream (the caller heard ringing) but drachtio reports finals only
    const statuses = (results?.responses ?? []).flatMap((r) => r.msgs.map((m) => m.status));
    expect(statuses).toEqual([486, 200]);
    expect(results).toMatchObject({ connected: true, finalStatus: 200 });
    await until(() => cdrs.length >= 6);
    expect(cdrs).toEqual([
      "attempt network", // the caller's INVITE
      "attempt application", // to carol
      "stop network call-rejected", // carol's 486
      "attempt application", // to bob
      "start network proxy-uac", // bob's 200
      "start application proxy-uas", // the 200 relayed upstream
    ]);
  });

  it("with recordRoute, inserts its Record-Route and routes the dialog's ACK, re-INVITE and BYE onward (RFC 3261 §16)", async () => {
    const ctx = await setup();
    const bob = await extraPeer(ctx);
    const cdrs: string[] = [];
    let results: ProxyResults | undefined;
    await connectApp(ctx, (srf) => {
      const on = srf.on.bind(srf) as (event: string, fn: (...args: unknown[]) => void) => void;
      on("cdr:stop", (source, _time, reason) => cdrs.push(`stop ${String(source)} ${String(reason)}`));
      srf.invite(async (req) => {
        results = await (srf.proxyRequest as ProxyFn)(req, [`sip:bob@127.0.0.1:${bob.port}`], {
          recordRoute: true,
        });
      });
    });
    const here = `127.0.0.1:${ctx.engine.sipPort}`;
    const rr = `<sip:${here};lr>`;
    const { callId } = sendFromPeer(ctx, "INVITE", "rr", { body: sdp(1000) });
    const toBob = await bob.request("INVITE");
    expect(toBob.headers.getAll("record-route")).toEqual([rr]);
    const bobContact = `sip:bob@127.0.0.1:${bob.port}`;
    bob.send(
      respond(toBob, 200, "OK", { toTag: "b1", contact: `<${bobContact}>`, body: sdp(2) }),
      ctx.engine.sipPort,
    );
    const ok = await ctx.peer.response(200, "INVITE");
    expect(ok.headers.getAll("record-route")).toEqual([rr]);
    await until(() => results !== undefined);
    expect(results).toMatchObject({ connected: true, finalStatus: 200 });
    const fromTag = tagOf(ok.headers.get("from") ?? "") ?? "";
    const alice = `sip:alice@127.0.0.1:${ctx.peer.port}`;
    // the caller's requests: to bob's Contact, through the route set the 200 gave it
    const fromAlice = (method: string, cseq: number, body?: string): void =>
      ctx.peer.send(
        request({
          method,
          uri: bobContact,
          peerPort: ctx.peer.port,
          callId,
          cseq,
          fromTag,
          toTag: "b1",
          extra: [`Route: ${rr}`],
          ...(body === undefined ? {} : { body }),
        }),
        ctx.engine.sipPort,
      );
    fromAlice("ACK", 1);
    const ack = await bob.request("ACK");
    expect(ack.uri).toBe(bobContact);
    expect(ack.headers.get("route")).toBeUndefined();
    expect(ack.headers.getAll("via")).toHaveLength(2);
    fromAlice("INVITE", 2, sdp(1002));
    const reinvite = await bob.request("INVITE");
    expect(reinvite.headers.get("route")).toBeUndefined();
    expect(Number(reinvite.headers.get("max-forwards"))).toBe(69);
    bob.send(respond(reinvite, 200, "OK", { contact: `<${bobContact}>`, body: sdp(2) }), ctx.engine.sipPort);
    const reOk = await ctx.peer.response(200, "INVITE");
    expect(reOk.headers.getAll("via")).toHaveLength(1);
    fromAlice("ACK", 2);
    await bob.request("ACK");
    // the callee hangs up: its BYE goes to the caller's Contact through the Record-Route, in order
    bob.send(
      request({
        method: "BYE",
        uri: alice,
        peerPort: bob.port,
        callId,
        cseq: 1,
        fromTag: "b1",
        toTag: fromTag,
        extra: [`Route: ${rr}`],
      }),
      ctx.engine.sipPort,
    );
    const bye = await ctx.peer.request("BYE");
    expect(bye.uri).toBe(alice);
    ctx.peer.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
    await bob.response(200, "BYE");
    await until(() => cdrs.length >= 2);
    expect(cdrs).toEqual(["stop network normal-release", "stop application normal-release"]);
    // nothing of it came back as 481, and no call stayed behind in the engine
    expect(await ctx.peer.sees((r) => r.msg.kind === "response" && r.msg.status === 481, 200)).toBe(false);
    expect(ctx.engine.stats().dialogs).toBe(0);
  });

  it("refuses a request whose Max-Forwards is used up with NOK (483 upstream)", async () => {
    const ctx = await setup();
    let failure: string | undefined;
    await connectApp(ctx, (srf) =>
      srf.invite(async (req) => {
        try {
          await (srf.proxyRequest as ProxyFn)(req, ["sip:nobody@127.0.0.1:9"], {});
          failure = "resolved";
        } catch (err) {
          failure = String(err);
        }
      }),
    );
    sendFromPeer(ctx, "INVITE", "hops", { edit: (t) => t.replace("Max-Forwards: 70", "Max-Forwards: 0") });
    await ctx.peer.response(483, "INVITE");
    await until(() => failure !== undefined);
    expect(failure).toBe("Rejected with 483 Too Many Hops due to Max-Forwards value of 0");
  });

  it("refuses to proxy a request the app already answered: NOK 'Unknown transaction id'", async () => {
    const ctx = await setup();
    let failure: string | undefined;
    await connectApp(ctx, (srf) =>
      srf.use("message", async (req, res) => {
        res.send(404);
        await new Promise((r) => setTimeout(r, 50));
        try {
          await (srf.proxyRequest as ProxyFn)(req, ["sip:nobody@127.0.0.1:9"], {});
          failure = "resolved";
        } catch (err) {
          failure = String(err);
        }
      }),
    );
    sendFromPeer(ctx, "MESSAGE", "late");
    await ctx.peer.response(404, "MESSAGE");
    await until(() => failure !== undefined);
    expect(failure).toMatch(/^Unknown transaction id: \S+$/);
  });
});

/** A raw drachtio-protocol client: sends frames, collects the server's frames as text. */
async function rawApp(
  ctx: Ctx,
): Promise<{ send(leader: string, sip?: string): void; reply(msgId: string): Promise<string> }> {
  const sock = connect(ctx.engine.adminPort, "127.0.0.1");
  await new Promise<void>((r) => sock.once("connect", () => r()));
  const frames: string[] = [];
  const dec = new FrameDecoder(
    (p) => frames.push(p.toString("utf8")),
    () => undefined,
  );
  sock.on("data", (c: Buffer) => dec.push(c));
  ctx.apps.push({ disconnect: () => sock.destroy() } as unknown as Srf);
  const api = {
    send(leader: string, sip?: string): void {
      sock.write(encodeFrame(sip === undefined ? leader : `${leader}\r\n`, sip));
    },
    /** The reply to msgId, from "response|" on (the server's uuid dropped). */
    async reply(msgId: string): Promise<string> {
      const marker = `|response|${msgId}|`;
      await until(() => frames.some((f) => f.includes(marker)));
      const f = frames.find((x) => x.includes(marker)) ?? "";
      return f.slice(f.indexOf("|") + 1);
    },
  };
  api.send(`a1|authenticate|${SECRET}|`);
  expect(await api.reply("a1")).toMatch(/^response\|a1\|OK\|/);
  return api;
}

describe("proxy: the response sent upstream when every branch fails (drachtio ProxyCore::forwardBestResponse)", () => {
  it("prefers a 4xx over a 3xx, and answers 408 itself when no branch responded at all", async () => {
    const ctx = await setup();
    const carol = await extraPeer(ctx);
    const bob = await extraPeer(ctx);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const results: ProxyResults[] = [];
    await connectApp(ctx, (srf) =>
      srf.invite(async (req) => {
        const dest = req.uri.includes("dead")
          ? [`sip:nobody@127.0.0.1:${deadPort};transport=tcp`]
          : [`sip:carol@127.0.0.1:${carol.port}`, `sip:bob@127.0.0.1:${bob.port}`];
        results.push(await (srf.proxyRequest as ProxyFn)(req, dest, {}));
      }),
    );
    sendFromPeer(ctx, "INVITE", "busy", { body: sdp(1) });
    const toCarol = await carol.request("INVITE");
    carol.send(
      respond(toCarol, 302, "Moved Temporarily", { toTag: "c1", contact: "<sip:elsewhere@127.0.0.1:9>" }),
      ctx.engine.sipPort,
    );
    const toBob = await bob.request("INVITE");
    bob.send(respond(toBob, 486, "Busy Here", { toTag: "b1" }), ctx.engine.sipPort);
    await ctx.peer.response(486, "INVITE");
    await until(() => results.length === 1);
    expect(results[0]).toMatchObject({ connected: false, finalStatus: 486 });

    sendFromPeer(ctx, "INVITE", "dead", { body: sdp(1) });
    await ctx.peer.response(408, "INVITE");
    await until(() => results.length === 2);
    expect(results[1]?.connected).toBe(false);
    expect(results[1]?.responses).toEqual([]);
  });
});

describe("replies to refused app requests (drachtio client.cpp, sip-dialog-controller.cpp)", () => {
  it("uses drachtio's NOK/NO and texts for unknown transactions, dialogs and message types", async () => {
    const ctx = await setup();
    const app = await rawApp(ctx);
    app.send("m1|sip|t-unknown|", "SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n");
    app.send("m2|sip|t-unknown|", "SIP/2.0 200 OK\r\nCSeq: 1 CANCEL\r\n\r\n");
    app.send("m3|sip||", "SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n");
    app.send("m4|sip|t-unknown|", "CANCEL sip:x@127.0.0.1 SIP/2.0\r\n\r\n");
    app.send("m5|sip||d-unknown", "INFO sip:placeholder SIP/2.0\r\n\r\n");
    app.send("m6|sip||d-unknown", "ACK sip:placeholder SIP/2.0\r\n\r\n");
    app.send("m7|bogus");
    expect(await app.reply("m1")).toBe("response|m1|NOK|Response not sent due to unknown transaction");
    expect(await app.reply("m2")).toBe(
      "response|m2|NOK|200 OK to incoming CANCEL is automatically generated by the stack",
    );
    expect(await app.reply("m3")).toBe("response|m3|NO|transaction id missing");
    expect(await app.reply("m4")).toBe("response|m4|NOK|unable to cancel unknown transaction id: t-unknown");
    expect(await app.reply("m5")).toBe(
      "response|m5|NOK|Server error: unable to find dialog for dialog id provided",
    );
    expect(await app.reply("m6")).toBe(
      "response|m6|NOK|Server error: ACK for non-success final response is automatically generated by server",
    );
    expect(await app.reply("m7")).toBe("response|m7|NO|Unknown message type");
  });

  it("a request in a dialog that has ended fails in srf with drachtio's text (err.code ENODIALOG)", async () => {
    const ctx = await setup();
    let dialog: Srf.Dialog | undefined;
    await connectApp(ctx, (srf) =>
      srf.invite(async (req, res) => {
        dialog = await srf.createUAS(req, res, { localSdp: sdp(40000) });
      }),
    );
    const { sendInCall } = sendFromPeer(ctx, "INVITE", "ended", { body: sdp(1) });
    const ok = await ctx.peer.response(200, "INVITE");
    const toTag = tagOf(ok.headers.get("to") ?? "");
    sendInCall("ACK", 1, { toTag });
    sendInCall("BYE", 2, { toTag });
    await ctx.peer.response(200, "BYE");
    await until(() => dialog !== undefined);
    const err = await dialogRequestError(dialog as Srf.Dialog, { method: "INFO" });
    expect(err?.message).toBe("Server error: unable to find dialog for dialog id provided");
    expect(err?.code).toBe("ENODIALOG");
  });
});

describe("headers of app requests (drachtio makeTags, doSendRequest*)", () => {
  it("refuses a body without Content-Type unless it is SDP, in and out of a dialog", async () => {
    const ctx = await setup();
    let dialog: Srf.Dialog | undefined;
    const srf = await connectApp(ctx, (app) =>
      app.invite(async (req, res) => {
        dialog = await app.createUAS(req, res, { localSdp: sdp(40000) });
      }),
    );
    const outside = await srfRequest(srf, `sip:bob@127.0.0.1:${ctx.peer.port}`, {
      method: "MESSAGE",
      body: "hello",
    }).then(
      () => "sent",
      (e: unknown) => String((e as Error).message),
    );
    expect(outside).toBe("missing content-type");
    expect(await ctx.peer.sees((r) => r.msg.kind === "request" && r.msg.method === "MESSAGE", 200)).toBe(
      false,
    );
    sendFromPeer(ctx, "INVITE", "ctype", { body: sdp(1) });
    await ctx.peer.response(200, "INVITE");
    await until(() => dialog !== undefined);
    const inside = await dialogRequestError(dialog as Srf.Dialog, { method: "INFO", body: "hello" });
    expect(inside?.message).toBe("Server error: missing content-type");
    // an SDP body still gets its Content-Type inferred
    void srfRequest(srf, `sip:bob@127.0.0.1:${ctx.peer.port}`, { method: "MESSAGE", body: "v=0" });
    const sent = await ctx.peer.request("MESSAGE");
    expect(sent.headers.get("content-type")).toBe("application/sdp");
  });

  it("rewrites @localhost in P-Asserted-Identity as in From, To and Contact", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    void srfRequest(srf, `sip:bob@127.0.0.1:${ctx.peer.port}`, {
      method: "MESSAGE",
      headers: {
        From: "<sip:+15550001@localhost>",
        "P-Asserted-Identity": "<sip:+15550001@localhost>",
        "Content-Type": "text/plain",
      },
      body: "hi",
    });
    const msg = await ctx.peer.request("MESSAGE");
    const here = `127.0.0.1:${ctx.engine.sipPort}`;
    expect(msg.headers.get("p-asserted-identity")).toBe(`<sip:+15550001@${here}>`);
    expect(msg.headers.get("from")).toMatch(new RegExp(`^<sip:\\+15550001@${here}>;tag=`));
  });
});

describe("dialog ids, ACK and CDRs (drachtio sip-dialog-controller.cpp)", () => {
  it("names the dialog in a failure response, delivers the ACK with the INVITE's transaction id, start CDR only for 200", async () => {
    const ctx = await setup();
    const cdrs: string[] = [];
    let rejected: { dialogId: string | undefined; expected: string } | undefined;
    let inviteTxn: string | undefined;
    let ackTxn: string | undefined;
    await connectApp(ctx, (srf) => {
      const on = srf.on.bind(srf) as (event: string, fn: (...args: unknown[]) => void) => void;
      on("cdr:start", (source, _time, role) => cdrs.push(`start ${String(source)} ${String(role)}`));
      on("cdr:stop", (source, _time, reason) => cdrs.push(`stop ${String(source)} ${String(reason)}`));
      srf.invite(async (req, res) => {
        const from = req.getParsedHeader("from") as unknown as { params: { tag: string } };
        const expected = `${req.get("call-id")};from-tag=${from.params.tag}`;
        if (req.uri.includes("reject")) {
          const send = res.send as unknown as (status: number, opts: object, cb: () => void) => void;
          send.call(res, 486, {}, () => {
            rejected = { dialogId: (res as unknown as { stackDialogId?: string }).stackDialogId, expected };
          });
          return;
        }
        inviteTxn = (req as unknown as { stackTxnId: string }).stackTxnId;
        const dialog = await srf.createUAS(req, res, {
          localSdp: sdp(40000),
          headers: { "X-Status": "accepted" },
        });
        dialog.on("ack", (ack: unknown) => {
          ackTxn = (ack as { stackTxnId: string }).stackTxnId;
        });
      });
    });
    sendFromPeer(ctx, "INVITE", "reject", { body: sdp(1) });
    await ctx.peer.response(486, "INVITE");
    await until(() => rejected !== undefined);
    expect(rejected?.dialogId).toBe(rejected?.expected);

    const { sendInCall } = sendFromPeer(ctx, "INVITE", "answer", { body: sdp(2) });
    const ok = await ctx.peer.response(200, "INVITE");
    sendInCall("ACK", 1, { toTag: tagOf(ok.headers.get("to") ?? "") });
    await until(() => ackTxn !== undefined);
    expect(ackTxn).toBe(inviteTxn);
    await until(() => cdrs.length >= 2);
    expect(cdrs).toEqual(["stop application call-rejected", "start application uas"]);
  });

  it("a 2xx other than 200 to an INVITE writes no cdr:start (drachtio writes start records for 200 only)", async () => {
    const ctx = await setup();
    const cdrs: string[] = [];
    await connectApp(ctx, (srf) => {
      const on = srf.on.bind(srf) as (event: string, fn: (...args: unknown[]) => void) => void;
      on("cdr:start", (source, _time, role) => cdrs.push(`start ${String(source)} ${String(role)}`));
      on("cdr:stop", (source, _time, reason) => cdrs.push(`stop ${String(source)} ${String(reason)}`));
      srf.invite((req, res) => res.send(req.uri.includes("odd") ? 202 : 486));
    });
    sendFromPeer(ctx, "INVITE", "odd", { body: sdp(1) });
    await ctx.peer.response(202, "INVITE");
    sendFromPeer(ctx, "INVITE", "reject", { body: sdp(1) });
    await ctx.peer.response(486, "INVITE");
    // CDRs go out in order: once the second call's stop is here, a start for the 202 would have been too
    await until(() => cdrs.length >= 1);
    expect(cdrs).toEqual(["stop application call-rejected"]);
  });
});

describe("new requests from the network (drachtio controller.cpp processMessageStatelessly)", () => {
  it("answers an out-of-dialog BYE/UPDATE with 481 and a wildcard REGISTER with Expires with 400, without the app", async () => {
    const ctx = await setup();
    const seen: string[] = [];
    await connectApp(ctx, (srf) => {
      for (const method of ["bye", "update", "register"]) {
        srf.use(method, (req, res) => {
          seen.push(req.method);
          res.send(200);
        });
      }
    });
    sendFromPeer(ctx, "BYE", "stray");
    await ctx.peer.response(481, "BYE");
    sendFromPeer(ctx, "UPDATE", "stray");
    await ctx.peer.response(481, "UPDATE");
    sendFromPeer(ctx, "REGISTER", "alice", {
      edit: (t) =>
        t
          .replace(/Contact: [^\r]*/, "Contact: *")
          .replace("Max-Forwards: 70", "Expires: 3600\r\nMax-Forwards: 70"),
    });
    await ctx.peer.response(400, "REGISTER");
    // a well-formed REGISTER still reaches the app
    sendFromPeer(ctx, "REGISTER", "alice", { extra: ["Expires: 3600"] });
    await ctx.peer.response(200, "REGISTER");
    expect(seen).toEqual(["REGISTER"]);
  });

  it("a method the engine does not know gets 501 with an Allow header naming what the apps take", async () => {
    const ctx = await setup();
    await connectApp(ctx, (srf) => {
      srf.invite((_req, res) => res.send(486));
      srf.use("register", (_req, res) => res.send(200));
    });
    sendFromPeer(ctx, "FROB", "unknown");
    const res = await ctx.peer.response(501, "FROB");
    const allow = (res.headers.get("allow") ?? "").split(/\s*,\s*/);
    expect(allow).toEqual(expect.arrayContaining(["INVITE", "ACK", "CANCEL", "BYE", "REGISTER"]));
    expect(allow).not.toContain("FROB");
    expect(allow).not.toContain("SUBSCRIBE");
    // a known method nobody routes is still drachtio's 503
    sendFromPeer(ctx, "PUBLISH", "nobody");
    await ctx.peer.response(503, "PUBLISH");
  });

  it("a request without Call-ID or without CSeq gets 400, sent back by its Via", async () => {
    const ctx = await setup();
    const seen: string[] = [];
    await connectApp(ctx, (srf) =>
      srf.use("options", (req, res) => {
        seen.push(req.method);
        res.send(200);
      }),
    );
    // a raw socket: a response without Call-ID is not a message the test peer's parser keeps
    const sock = createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const got: string[] = [];
    sock.on("message", (b) => got.push(b.toString("utf8")));
    try {
      const port = sock.address().port;
      const options = (callId: string): string =>
        request({
          method: "OPTIONS",
          uri: `sip:broken@127.0.0.1:${ctx.engine.sipPort}`,
          peerPort: port,
          callId,
          cseq: 7,
          fromTag: "broken",
        });
      sock.send(options("no-call-id").replace(/Call-ID: [^\r]*\r\n/, ""), ctx.engine.sipPort, "127.0.0.1");
      sock.send(options("no-cseq").replace(/CSeq: [^\r]*\r\n/, ""), ctx.engine.sipPort, "127.0.0.1");
      await until(() => got.length >= 2);
      const noCallId = got.find((t) => t.includes("CSeq: 7 OPTIONS")) ?? "";
      const noCSeq = got.find((t) => t.includes("Call-ID: no-cseq")) ?? "";
      expect(noCallId).toMatch(/^SIP\/2\.0 400 /);
      expect(noCallId).not.toContain("Call-ID");
      expect(noCSeq).toMatch(/^SIP\/2\.0 400 /);
      expect(noCSeq).toContain("tag=broken");
      expect(seen).toEqual([]);
    } finally {
      sock.close();
    }
  });

  it("an INVITE no app routes gets 503 with attempt and stop CDRs", async () => {
    const ctx = await setup();
    const cdrs: string[] = [];
    await connectApp(ctx, (srf) => {
      const on = srf.on.bind(srf) as (event: string, fn: (...args: unknown[]) => void) => void;
      on("cdr:attempt", (source) => cdrs.push(`attempt ${String(source)}`));
      on("cdr:stop", (source, _time, reason) => cdrs.push(`stop ${String(source)} ${String(reason)}`));
    });
    sendFromPeer(ctx, "INVITE", "nobody", { body: sdp(1) });
    await ctx.peer.response(503, "INVITE");
    await until(() => cdrs.length >= 2);
    expect(cdrs).toEqual(["attempt network", "stop application call-rejected"]);
  });
});

describe("CANCEL from the network (RFC 3261 §9.2, as drachtio/sofia answer it)", () => {
  /** An INVITE and, once `ready` resolves, its CANCEL (same branch); resolves the 200 (CANCEL) and the 487. */
  async function inviteThenCancel(ctx: Ctx, user: string, ready: () => Promise<unknown>) {
    seq++;
    const base = {
      uri: `sip:${user}@127.0.0.1:${ctx.engine.sipPort}`,
      peerPort: ctx.peer.port,
      callId: `wire-compat-cancel-${seq}-${Date.now()}`,
      fromTag: `fc${seq}`,
      cseq: 1,
      branch: `z9hG4bKcancel${seq}`,
    };
    ctx.peer.send(request({ ...base, method: "INVITE", body: sdp(1) }), ctx.engine.sipPort);
    await ready();
    ctx.peer.send(request({ ...base, method: "CANCEL" }), ctx.engine.sipPort);
    const ok = await ctx.peer.response(200, "CANCEL");
    const terminated = await ctx.peer.response(487, "INVITE");
    return {
      okTag: tagOf(ok.headers.get("to") ?? ""),
      terminatedTag: tagOf(terminated.headers.get("to") ?? ""),
    };
  }

  it("the 200 to a CANCEL carries the To tag of the 180 and the 487 of the INVITE", async () => {
    const ctx = await setup();
    let canceled = false;
    await connectApp(ctx, (srf) =>
      srf.invite((req, res) => {
        req.on("cancel", () => {
          canceled = true;
        });
        res.send(180);
      }),
    );
    let ringingTag: string | undefined;
    const tags = await inviteThenCancel(ctx, "ringing", async () => {
      const ringing = await ctx.peer.response(180, "INVITE");
      ringingTag = tagOf(ringing.headers.get("to") ?? "");
    });
    expect(ringingTag).toMatch(/.+/);
    expect(tags.okTag).toBe(ringingTag);
    expect(tags.terminatedTag).toBe(ringingTag);
    await until(() => canceled);
  });

  it("before any tagged provisional, the 200 to the CANCEL and the 487 still share one To tag", async () => {
    const ctx = await setup();
    let offered = false;
    await connectApp(ctx, (srf) =>
      srf.invite(() => {
        offered = true; // never answers: the caller cancels after the 100
      }),
    );
    const tags = await inviteThenCancel(ctx, "trying", async () => {
      await ctx.peer.response(100, "INVITE");
      await until(() => offered);
    });
    expect(tags.okTag).toMatch(/.+/);
    expect(tags.terminatedTag).toBe(tags.okTag);
  });
});

describe("CANCEL from the app (drachtio doSendCancelRequest / makeSafeTags)", () => {
  it("carries the app's headers, but not ones that would change the INVITE's identity", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    let sent: Srf.SrfRequest | undefined;
    const uac = srf
      .createUAC(
        `sip:bob@127.0.0.1:${ctx.peer.port}`,
        { localSdp: sdp(50000) },
        {
          // srf calls cbRequest(err, req) although its type declarations say (req)
          cbRequest: ((_err: unknown, req: Srf.SrfRequest) => {
            sent = req;
          }) as never,
        },
      )
      .catch(() => undefined);
    const inv = await ctx.peer.request("INVITE");
    ctx.peer.send(respond(inv, 180, "Ringing", { toTag: "r1" }), ctx.engine.sipPort);
    await until(() => sent !== undefined);
    (sent as unknown as { cancel: (opts: object) => void }).cancel({
      headers: { Subject: "changed my mind", "X-Why": "test", From: "<sip:evil@example.com>;tag=x" },
    });
    const cancel = await ctx.peer.request("CANCEL");
    expect(cancel.headers.get("subject")).toBe("changed my mind");
    expect(cancel.headers.get("x-why")).toBe("test");
    expect(cancel.headers.get("from")).toBe(inv.headers.get("from"));
    ctx.peer.send(respond(cancel, 200, "OK"), ctx.engine.sipPort);
    ctx.peer.send(respond(inv, 487, "Request Terminated", { toTag: "r1" }), ctx.engine.sipPort);
    await uac;
  });

  it("writes custom header names as drachtio does (User-To-User, X- headers as given)", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    void srfRequest(srf, `sip:bob@127.0.0.1:${ctx.peer.port}`, {
      method: "OPTIONS",
      headers: { "user-to-user": "abc;encoding=hex", "x-lower": "1" },
    });
    const r = await ctx.peer.next((m) => m.msg.kind === "request" && m.msg.method === "OPTIONS");
    expect(r.text).toContain("\r\nUser-To-User: abc;encoding=hex\r\n");
    expect(r.text).toContain("\r\nx-lower: 1\r\n");
  });
});

describe("an INVITE repeated on a new transaction after the answer (drachtio processRequestInsideDialog)", () => {
  it("gets 491 and does not reach the app as a second call with the same dialog id", async () => {
    const ctx = await setup();
    let invites = 0;
    await connectApp(ctx, (srf) =>
      srf.invite(async (req, res) => {
        invites++;
        await srf.createUAS(req, res, { localSdp: sdp(40000) });
      }),
    );
    seq++;
    const callId = `wire-compat-again-${Date.now()}`;
    const invite = (cseq: number): string =>
      request({
        method: "INVITE",
        uri: `sip:again@127.0.0.1:${ctx.engine.sipPort}`,
        peerPort: ctx.peer.port,
        callId,
        cseq,
        fromTag: `again${seq}`,
        body: sdp(1),
      });
    ctx.peer.send(invite(1), ctx.engine.sipPort);
    await ctx.peer.response(200, "INVITE");
    ctx.peer.send(invite(2), ctx.engine.sipPort); // a new branch (request() makes one per call), no To tag
    await ctx.peer.response(491, "INVITE");
    expect(invites).toBe(1);
  });
});

describe("session timers (drachtio SipDialog::setSessionTimer, notifyRefreshDialog, notifyTerminateStaleDialog)", () => {
  /**
   * The app calls the peer, which answers 200 with `sessionExpires`; resolves the dialog, the INVITE and when
   * the 200 was sent (the engine's session timer cannot start before).
   */
  async function uacCall(
    ctx: Ctx,
    sessionExpires: string,
  ): Promise<{ dialog: Srf.Dialog; inv: SipRequest; answeredAt: number }> {
    const srf = await connectApp(ctx, () => undefined);
    const uac = srf.createUAC(`sip:bob@127.0.0.1:${ctx.peer.port}`, { localSdp: sdp(50000) });
    const inv = await ctx.peer.request("INVITE");
    const ok = respond(inv, 200, "OK", {
      toTag: "st1",
      contact: `<sip:bob@127.0.0.1:${ctx.peer.port}>`,
      body: sdp(3),
    }).replace("Content-Type:", `Session-Expires: ${sessionExpires}\r\nContent-Type:`);
    const answeredAt = Date.now();
    ctx.peer.send(ok, ctx.engine.sipPort);
    const dialog = await uac;
    await ctx.peer.request("ACK");
    return { dialog, inv, answeredAt };
  }

  /** Resolves with the reason srf reports when the dialog is destroyed. */
  function destroyed(dialog: Srf.Dialog): Promise<string> {
    return new Promise((resolve) =>
      (dialog as unknown as EventEmitter).once("destroy", (_req: unknown, reason: string) => resolve(reason)),
    );
  }

  it("as refresher, re-INVITEs with the dialog's SDP at half the interval; a failed refresh ends the call", async () => {
    const ctx = await setup();
    const { dialog, inv, answeredAt } = await uacCall(ctx, "2;refresher=uac");
    const gone = destroyed(dialog);
    // due 1 s after the 200; a late one (loaded machine) is fine, an early one is not
    const refresh = await ctx.peer.request("INVITE", 10_000);
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(800);
    expect(refresh.headers.get("session-expires")).toBe("2; refresher=uac");
    expect(refresh.headers.get("min-se")).toBe("90");
    expect(refresh.headers.get("call-id")).toBe(inv.headers.get("call-id"));
    expect(refresh.body.toString()).toBe(inv.body.toString());
    ctx.peer.send(
      respond(refresh, 200, "OK", { contact: `<sip:bob@127.0.0.1:${ctx.peer.port}>`, body: sdp(3) }).replace(
        "Content-Type:",
        "Session-Expires: 2;refresher=uac\r\nContent-Type:",
      ),
      ctx.engine.sipPort,
    );
    await ctx.peer.request("ACK");
    const again = await ctx.peer.request("INVITE", 10_000);
    ctx.peer.send(respond(again, 481, "Call/Transaction Does Not Exist"), ctx.engine.sipPort);
    const bye = await ctx.peer.request("BYE");
    expect(bye.headers.get("reason")).toBe('SIP ;cause=200 ;text="Session timer expired"');
    ctx.peer.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
    expect(await gone).toBe("Session timer expired");
  });

  it("when the peer refreshes and does not, the dialog is torn down after the interval (cdr:stop session-expired)", async () => {
    const ctx = await setup();
    const cdrs: string[] = [];
    await connectApp(ctx, (watcher) =>
      (watcher.on.bind(watcher) as (e: string, fn: (...a: unknown[]) => void) => void)(
        "cdr:stop",
        (source, _time, reason) => cdrs.push(`stop ${String(source)} ${String(reason)}`),
      ),
    );
    const { dialog } = await uacCall(ctx, "1;refresher=uas");
    const gone = destroyed(dialog);
    const bye = await ctx.peer.request("BYE", 10_000);
    expect(bye.headers.get("reason")).toBe('SIP ;cause=200 ;text="Session timer expired"');
    expect(await gone).toBe("Session timer expired");
    await until(() => cdrs.includes("stop application session-expired"));
  });

  it("as UAS copies the caller's Session-Expires into the 200 and refuses a refresh below Min-SE with 422", async () => {
    const ctx = await setup();
    let requests = 0;
    await connectApp(ctx, (srf) =>
      srf.invite(async (req, res) => {
        requests++;
        const d = await srf.createUAS(req, res, { localSdp: sdp(40000) });
        d.on("modify", (_r: unknown, s: { send: (n: number) => void }) => s.send(200));
      }),
    );
    seq++;
    const callId = `wire-compat-st-${Date.now()}`;
    const fromTag = `st${seq}`;
    const invite = (cseq: number, se: string, toTag?: string): string =>
      request({
        method: "INVITE",
        uri: `sip:timer@127.0.0.1:${ctx.engine.sipPort}`,
        peerPort: ctx.peer.port,
        callId,
        cseq,
        fromTag,
        ...(toTag === undefined ? {} : { toTag }),
        extra: ["Supported: timer", `Session-Expires: ${se}`],
        body: sdp(1),
      });
    ctx.peer.send(invite(1, "1800;refresher=uac"), ctx.engine.sipPort);
    const ok = await ctx.peer.response(200, "INVITE");
    expect(ok.headers.get("session-expires")).toBe("1800;refresher=uac");
    const toTag = tagOf(ok.headers.get("to") ?? "");
    ctx.peer.send(
      request({
        method: "ACK",
        uri: `sip:timer@127.0.0.1:${ctx.engine.sipPort}`,
        peerPort: ctx.peer.port,
        callId,
        cseq: 1,
        fromTag,
        ...(toTag === undefined ? {} : { toTag }),
      }),
      ctx.engine.sipPort,
    );
    ctx.peer.send(invite(2, "30;refresher=uac", toTag), ctx.engine.sipPort);
    const tooSmall = await ctx.peer.response(422, "INVITE");
    expect(tooSmall.headers.get("min-se")).toBe("90");
    expect(requests).toBe(1);
  });
});

describe("reliable provisional responses (drachtio doRespondToSipRequest nta_reliable_treply, processPrack)", () => {
  it("sends an app's 183 with Require: 100rel reliably (RSeq, retransmitted until the PRACK, which reaches the app)", async () => {
    const ctx = await setup();
    let prackSeen = false;
    let refused: string | undefined;
    await connectApp(ctx, (srf) => {
      srf.use("prack", (_req, res) => res.send(200));
      srf.invite((_req, res) => {
        const send = res.send as unknown as (
          status: number,
          reason: string | undefined,
          opts: object,
          cb: ((err: unknown) => void) | null,
          fnPrack: () => void,
        ) => void;
        send.call(
          res,
          183,
          undefined,
          { headers: { Require: "100rel" }, body: sdp(40000) },
          (err) => {
            if (err) refused = String(err);
          },
          () => {
            prackSeen = true;
            res.send(486);
          },
        );
      });
    });
    // a caller without 100rel support: drachtio refuses to send it reliably
    sendFromPeer(ctx, "INVITE", "norel", { body: sdp(1) });
    await until(() => refused !== undefined);
    expect(refused).toBe("Remote endpoint does not support 100rel");

    const { sendInCall } = sendFromPeer(ctx, "INVITE", "rel", { body: sdp(1), extra: ["Supported: 100rel"] });
    const first = await ctx.peer.response(183, "INVITE");
    const rseq = first.headers.get("rseq");
    expect(rseq).toMatch(/^\d+$/);
    const again = await ctx.peer.response(183, "INVITE", 10_000); // retransmitted: no PRACK yet
    expect(again.headers.get("rseq")).toBe(rseq);
    sendInCall("PRACK", 2, {
      toTag: tagOf(first.headers.get("to") ?? ""),
      extra: [`RAck: ${rseq} 1 INVITE`],
    });
    await ctx.peer.response(200, "PRACK");
    await until(() => prackSeen);
    await ctx.peer.response(486, "INVITE");
    expect(await ctx.peer.sees((r) => r.msg.kind === "response" && r.msg.status === 183, 1200)).toBe(false);
  });
});

describe("PRACK from the app (drachtio doSendRequestInsideDialog, nta_outgoing_prack)", () => {
  it("srf PRACKs a reliable 183 from the callee in the early dialog, with RAck and the next CSeq", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    const uac = srf.createUAC(`sip:bob@127.0.0.1:${ctx.peer.port}`, { localSdp: sdp(50000) });
    const inv = await ctx.peer.request("INVITE");
    const early = respond(inv, 183, "Session Progress", {
      toTag: "p1",
      contact: `<sip:bob@127.0.0.1:${ctx.peer.port}>`,
      body: sdp(3),
    }).replace("Content-Type:", "Require: 100rel\r\nRSeq: 7\r\nContent-Type:");
    ctx.peer.send(early, ctx.engine.sipPort);
    const prack = await ctx.peer.request("PRACK");
    expect(prack.headers.get("rack")).toBe(`7 ${inv.headers.get("cseq")}`);
    expect(prack.headers.get("call-id")).toBe(inv.headers.get("call-id"));
    expect(prack.headers.get("to")).toContain("tag=p1");
    expect(prack.uri).toBe(`sip:bob@127.0.0.1:${ctx.peer.port}`);
    expect(Number.parseInt(prack.headers.get("cseq") ?? "", 10)).toBeGreaterThan(
      Number.parseInt(inv.headers.get("cseq") ?? "", 10),
    );
    ctx.peer.send(respond(prack, 200, "OK"), ctx.engine.sipPort);
    ctx.peer.send(
      respond(inv, 200, "OK", { toTag: "p1", contact: `<sip:bob@127.0.0.1:${ctx.peer.port}>`, body: sdp(3) }),
      ctx.engine.sipPort,
    );
    await uac;
    await ctx.peer.request("ACK");
  });
});
