// End-to-end tests of the engine with the real drachtio-srf: an app connects over the drachtio protocol and
// a scripted UDP peer plays the phone/trunk. Covers OPTIONS, REGISTER, INVITE (UAS dialog, ACK, BYE), rejected
// INVITE, the app as UAC, ACK timeout and the clean-up when an app disconnects.

import { lookup } from "node:dns/promises";
import type { EventEmitter } from "node:events";
import { connect } from "node:net";
import { hostname } from "node:os";
import type Srf from "drachtio-srf";
import { afterEach, describe, expect, it } from "vitest";
import { connectSrf } from "../../test/harness.ts";
import { type Engine, startEngine } from "./index.ts";
import type { SipRequest, SipResponse } from "./sip/message.ts";
import { tagOf } from "./sip/response.ts";
import { encodeFrame, FrameDecoder } from "./wire/framing.ts";
import { type Received, request, respond, sdp, UdpPeer } from "./wire/udp-peer.ts";

const SECRET = "integration-secret";

interface Ctx {
  engine: Engine;
  peer: UdpPeer;
  apps: Srf[];
}

const open: Ctx[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) {
    for (const a of c.apps) a.disconnect();
    c.peer.close();
    await c.engine.close();
  }
});

async function setup(timers?: { T1?: number }): Promise<Ctx> {
  const engine = await startEngine({
    adminPort: 0,
    secret: SECRET,
    sipHost: "127.0.0.1",
    sipPort: 0,
    logLevel: "silent",
    timers,
  });
  const peer = await UdpPeer.open();
  const ctx = { engine, peer, apps: [] };
  open.push(ctx);
  return ctx;
}

/** Connects an app with its handlers; resolves once the engine has processed its routes (harness.ts). */
async function connectApp(ctx: Ctx, install: (srf: Srf) => void): Promise<Srf> {
  const srf = await connectSrf("127.0.0.1", ctx.engine.adminPort, SECRET, install);
  ctx.apps.push(srf);
  return srf;
}

/** The Srf instance a Dialog belongs to (srf sets dialog.srf; missing from its type declarations). */
function srfOf(d: Srf.Dialog): Srf {
  return (d as unknown as { srf: Srf }).srf;
}

/** srf's Dialog#id (the engine's dialog id), missing from srf's type declarations. */
function dialogId(d: Srf.Dialog): string {
  return (d as unknown as { id: string }).id;
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
function ids(): { callId: string; tag: string } {
  seq++;
  return { callId: `call-${seq}-${Date.now()}`, tag: `t${seq}` };
}

type RequestOptions = Omit<
  Parameters<typeof request>[0],
  "method" | "uri" | "peerPort" | "callId" | "cseq" | "fromTag"
>;

/** The UDP peer's side of one call or subscription to `sip:<user>@<engine>` (no user part when user is ""). */
interface Caller {
  readonly callId: string;
  /** The peer's From tag. */
  readonly tag: string;
  readonly uri: string;
  /** The text of a request of this call. */
  request(method: string, cseq: number, opts?: RequestOptions): string;
  /** Sends a request of this call to the engine. */
  send(method: string, cseq: number, opts?: RequestOptions): void;
  /** INVITE with an SDP offer, the engine's 200, our ACK: resolves the 200 and the dialog's To tag. */
  call(cseq: number, offer: string): Promise<{ ok: SipResponse; toTag: string | undefined }>;
}

function caller(ctx: Ctx, user: string): Caller {
  const { callId, tag } = ids();
  const uri = `sip:${user === "" ? "" : `${user}@`}127.0.0.1:${ctx.engine.sipPort}`;
  const text = (method: string, cseq: number, opts: RequestOptions = {}): string =>
    request({ method, uri, peerPort: ctx.peer.port, callId, cseq, fromTag: tag, ...opts });
  return {
    callId,
    tag,
    uri,
    request: text,
    send(method, cseq, opts) {
      ctx.peer.send(text(method, cseq, opts), ctx.engine.sipPort);
    },
    async call(cseq, offer) {
      this.send("INVITE", cseq, { body: offer });
      const ok = await ctx.peer.response(200, "INVITE");
      const toTag = tagOf(ok.headers.get("to") ?? "");
      this.send("ACK", cseq, toTag === undefined ? {} : { toTag });
      return { ok, toTag };
    },
  };
}

/**
 * Connects an app that answers every INVITE with a 200 (SDP port 40000) and resolves with the first dialog it
 * creates, once the 200 has been sent.
 */
async function answeringApp(ctx: Ctx): Promise<{ srf: Srf; dialog: Promise<Srf.Dialog> }> {
  let created: (d: Srf.Dialog) => void = () => undefined;
  const dialog = new Promise<Srf.Dialog>((resolve) => {
    created = resolve;
  });
  const srf = await connectApp(ctx, (app) =>
    app.invite(async (req, res) => {
      created(await app.createUAS(req, res, { localSdp: sdp(40000) }));
    }),
  );
  return { srf, dialog };
}

/**
 * An app calls the peer, which rings (180 with `toTag`); the app then cancels. Resolves once the peer has the
 * CANCEL, with the app's pending createUAC and the INVITE and CANCEL as the peer received them.
 */
async function ringingThenCanceled(
  ctx: Ctx,
  toTag: string,
): Promise<{ uacP: Promise<Srf.Dialog>; inv: SipRequest; cancel: SipRequest }> {
  const srf = await connectApp(ctx, () => undefined);
  let sent: Srf.SrfRequest | undefined;
  const uacP = srf.createUAC(
    `sip:bob@127.0.0.1:${ctx.peer.port}`,
    { localSdp: sdp(50000) },
    {
      // srf calls cbRequest(err, req) although its type declarations say (req)
      cbRequest: ((_err: unknown, req: Srf.SrfRequest) => {
        sent = req;
      }) as never,
    },
  );
  const inv = await ctx.peer.request("INVITE");
  ctx.peer.send(respond(inv, 180, "Ringing", { toTag }), ctx.engine.sipPort);
  await until(() => sent !== undefined);
  (sent as unknown as { cancel: () => void }).cancel();
  const cancel = await ctx.peer.request("CANCEL");
  return { uacP, inv, cancel };
}

describe("engine with drachtio-srf", () => {
  it("routes OPTIONS to the app, which answers 200; unrouted methods get 503", async () => {
    const ctx = await setup();
    let source = "";
    await connectApp(ctx, (srf) =>
      srf.use("options", (req, res) => {
        source = `${req.protocol}:${req.source_address}:${req.source_port}`;
        res.send(200, { headers: { "X-Answered-By": "app" } });
      }),
    );
    const call = caller(ctx, "probe");
    const { callId } = call;
    call.send("OPTIONS", 1);
    const ok = await ctx.peer.response(200, "OPTIONS");
    expect(ok.headers.get("x-answered-by")).toBe("app");
    expect(ok.headers.get("call-id")).toBe(callId);
    expect(source).toBe(`udp:127.0.0.1:${ctx.peer.port}`);

    caller(ctx, "probe").send("MESSAGE", 1); // a new request for a method no app routes
    await ctx.peer.response(503, "MESSAGE");
  });

  it("requests with CRLFs before the start line or bare-LF line ends still reach the app (srf needs CRLF)", async () => {
    const ctx = await setup();
    let seen = 0;
    await connectApp(ctx, (srf) =>
      srf.use("options", (_req, res) => {
        seen++;
        res.send(200);
      }),
    );
    const text = caller(ctx, "probe").request("OPTIONS", 1);
    ctx.peer.send(`\r\n\r\n${text}`, ctx.engine.sipPort);
    await ctx.peer.response(200, "OPTIONS");
    const lf = caller(ctx, "probe").request("OPTIONS", 1);
    ctx.peer.send(lf.replaceAll("\r\n", "\n"), ctx.engine.sipPort);
    await ctx.peer.response(200, "OPTIONS");
    expect(seen).toBe(2);
  });

  it("REGISTER: the app challenges with 401 then accepts with 200", async () => {
    const ctx = await setup();
    await connectApp(ctx, (srf) =>
      srf.use("register", (req, res) => {
        if (!req.has("Authorization")) {
          res.send(401, {
            headers: { "WWW-Authenticate": 'Digest realm="gosip", nonce="abc", algorithm=MD5' },
          });
          return;
        }
        res.send(200, { headers: { Contact: `${req.get("Contact")};expires=60` } });
      }),
    );
    const call = caller(ctx, "");
    call.send("REGISTER", 1);
    const challenge = await ctx.peer.response(401, "REGISTER");
    expect(challenge.headers.get("www-authenticate")).toContain('realm="gosip"');
    call.send("REGISTER", 2, {
      extra: ['Authorization: Digest username="100", realm="gosip", nonce="abc", uri="sip:x", response="00"'],
    });
    const ok = await ctx.peer.response(200, "REGISTER");
    expect(ok.headers.get("contact")).toContain("expires=60");
  });

  it("INVITE answered by the app: 200 with Contact and To tag, ACK reaches the app, BYE from the peer ends it", async () => {
    const ctx = await setup();
    const events: string[] = [];
    let destroyed: () => void = () => undefined;
    const gone = new Promise<void>((r) => {
      destroyed = r;
    });
    await connectApp(ctx, (srf) =>
      srf.invite(async (req, res) => {
        const uas = await srf.createUAS(req, res, { localSdp: sdp(40000) });
        events.push(`dialog:${dialogId(uas)}`);
        uas.on("ack", () => events.push("ack"));
        uas.on("destroy", () => {
          events.push("destroy");
          destroyed();
        });
      }),
    );
    const call = caller(ctx, "100");
    const { callId, tag } = call;
    call.send("INVITE", 1, { body: sdp(30000) });
    const ok = await ctx.peer.response(200, "INVITE");
    const toTag = tagOf(ok.headers.get("to") ?? "");
    expect(toTag).toBeDefined();
    expect(ok.headers.get("contact")).toContain(`127.0.0.1:${ctx.engine.sipPort}`);
    expect(ok.body.toString()).toContain("m=audio 40000");
    await until(() => events.length > 0);
    expect(events[0]).toBe(`dialog:${callId};from-tag=${tag}`);

    call.send("ACK", 1, { toTag });
    await until(() => events.includes("ack"));

    call.send("BYE", 2, { toTag });
    await ctx.peer.response(200, "BYE");
    await gone;
    // the dialog is gone: a second BYE is answered 481 by the engine
    call.send("BYE", 3, { toTag });
    await ctx.peer.response(481, "BYE");
  });

  it("CDR events: attempt, start and stop reach an app that asked for them", async () => {
    const ctx = await setup();
    const cdrs: string[] = [];
    await connectApp(ctx, (srf) => {
      const on = srf.on.bind(srf) as (e: string, fn: (...a: unknown[]) => void) => void;
      on("cdr:attempt", (source, _time, msg) =>
        cdrs.push(`attempt ${source} ${(msg as { method: string }).method}`),
      );
      on("cdr:start", (source, _time, role, msg) =>
        cdrs.push(`start ${source} ${role} ${(msg as { status: number }).status}`),
      );
      on("cdr:stop", (source, _time, reason) => cdrs.push(`stop ${source} ${reason}`));
      srf.invite((req, res) => void srf.createUAS(req, res, { localSdp: sdp(40000) }));
    });
    const call = caller(ctx, "100");
    const { toTag } = await call.call(1, sdp(1));
    call.send("BYE", 2, { toTag });
    await ctx.peer.response(200, "BYE");
    await until(() => cdrs.length >= 3);
    expect(cdrs).toEqual([
      "attempt network INVITE",
      "start application uas 200",
      "stop network normal-release",
    ]);
  });

  it("early dialog: UPDATE from the caller reaches the app's pending INVITE; a BYE then ends it like a CANCEL", async () => {
    const ctx = await setup();
    let updates = 0;
    let canceled = false;
    await connectApp(ctx, (srf) =>
      srf.invite((req, res) => {
        const r = req as unknown as NodeJS.EventEmitter;
        r.on("update", (_u: unknown, ures: Srf.SrfResponse) => {
          updates++;
          ures.send(200);
        });
        r.on("cancel", () => {
          canceled = true;
        });
        res.send(183, { body: sdp(40000) });
      }),
    );
    const call = caller(ctx, "100");
    call.send("INVITE", 1, { body: sdp(1) });
    const progress = await ctx.peer.response(183, "INVITE");
    const toTag = tagOf(progress.headers.get("to") ?? "");
    expect(progress.headers.get("contact")).toContain(`127.0.0.1:${ctx.engine.sipPort}`);
    call.send("UPDATE", 2, { toTag, body: sdp(2) });
    await ctx.peer.response(200, "UPDATE");
    expect(updates).toBe(1);
    call.send("BYE", 3, { toTag });
    await ctx.peer.response(200, "BYE");
    await ctx.peer.response(487, "INVITE");
    await until(() => canceled);
  });

  it("INVITE rejected by the app reaches the caller; requests in unknown dialogs get 481", async () => {
    const ctx = await setup();
    await connectApp(ctx, (srf) => srf.invite((_req, res) => res.send(486)));
    const call = caller(ctx, "100");
    call.send("INVITE", 1, { body: sdp(1) });
    const busy = await ctx.peer.response(486, "INVITE");
    expect(tagOf(busy.headers.get("to") ?? "")).toBeDefined();
    call.send("INFO", 2, { toTag: "nope" });
    await ctx.peer.response(481, "INFO");
  });

  it("the app as UAC: INVITE to a peer, ACK for the 200, BYE built from the dialog", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    const peerUri = `sip:bob@127.0.0.1:${ctx.peer.port}`;
    const uacP = srf.createUAC(peerUri, { localSdp: sdp(50000), callingNumber: "100" } as never);
    const inv = await ctx.peer.request("INVITE");
    expect(inv.headers.get("from")).toContain(`100@127.0.0.1:${ctx.engine.sipPort}`);
    expect(inv.headers.get("contact")).toContain(`127.0.0.1:${ctx.engine.sipPort}`);
    expect(inv.headers.get("max-forwards")).toBe("70");
    const peerContact = `<sip:bob@127.0.0.1:${ctx.peer.port};ob>`;
    ctx.peer.send(respond(inv, 180, "Ringing", { toTag: "bobtag" }), ctx.engine.sipPort);
    ctx.peer.send(
      respond(inv, 200, "OK", { toTag: "bobtag", contact: peerContact, body: sdp(60000) }),
      ctx.engine.sipPort,
    );
    const uac = await uacP;
    expect(dialogId(uac)).toBe(
      `${inv.headers.get("call-id")};from-tag=${tagOf(inv.headers.get("from") ?? "")}`,
    );
    const ack = await ctx.peer.request("ACK");
    expect(ack.uri).toBe(`sip:bob@127.0.0.1:${ctx.peer.port};ob`);
    expect(ack.headers.get("cseq")).toBe(`${inv.headers.get("cseq")?.split(" ")[0]} ACK`);

    const destroyed = uac.destroy();
    const bye = await ctx.peer.request("BYE");
    expect(bye.uri).toBe(`sip:bob@127.0.0.1:${ctx.peer.port};ob`);
    expect(tagOf(bye.headers.get("to") ?? "")).toBe("bobtag");
    expect(Number(bye.headers.get("cseq")?.split(" ")[0])).toBeGreaterThan(
      Number(inv.headers.get("cseq")?.split(" ")[0]),
    );
    ctx.peer.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
    await destroyed;
  });

  it("in-dialog requests from the app: re-INVITE (CSeq up, ACK with its CSeq) and INFO go to the peer's Contact", async () => {
    const ctx = await setup();
    const { dialog } = await answeringApp(ctx);
    const call = caller(ctx, "100");
    const { callId, tag } = call;
    const { toTag } = await call.call(7, sdp(30000));
    const d = await dialog;

    const modified = d.modify(sdp(41000));
    const reinvite = await ctx.peer.request("INVITE");
    expect(reinvite.uri).toBe(`sip:alice@127.0.0.1:${ctx.peer.port}`);
    expect(tagOf(reinvite.headers.get("from") ?? "")).toBe(toTag);
    expect(tagOf(reinvite.headers.get("to") ?? "")).toBe(tag);
    expect(reinvite.headers.get("call-id")).toBe(callId);
    expect(reinvite.body.toString()).toContain("m=audio 41000");
    const reSeq = reinvite.headers.get("cseq") ?? "";
    ctx.peer.send(
      respond(reinvite, 200, "OK", { contact: `<sip:alice@127.0.0.1:${ctx.peer.port}>`, body: sdp(30002) }),
      ctx.engine.sipPort,
    );
    const ack = await ctx.peer.request("ACK");
    expect(ack.headers.get("cseq")).toBe(`${reSeq.split(" ")[0]} ACK`);
    expect(await modified).toContain("m=audio 30002");

    // a request the app sends without a dialog id but with the dialog's Call-ID goes in the dialog (drachtio)
    const viaCallId = (srfOf(d).request as (u: string, o: object) => Promise<unknown>)(
      `sip:x@127.0.0.1:${ctx.peer.port}`,
      {
        method: "MESSAGE",
        headers: { "Call-ID": callId, "Content-Type": "text/plain" },
        body: "hi",
      },
    );
    const msgInDialog = await ctx.peer.request("MESSAGE");
    expect(tagOf(msgInDialog.headers.get("to") ?? "")).toBe(tag);
    expect(msgInDialog.uri).toBe(`sip:x@127.0.0.1:${ctx.peer.port}`); // an explicit Request-URI is kept
    ctx.peer.send(respond(msgInDialog, 200, "OK"), ctx.engine.sipPort);
    await viaCallId;

    const info = d.request({
      method: "INFO",
      headers: { "Content-Type": "application/dtmf-relay" },
      body: "Signal=5\r\n",
    } as never);
    const got = await ctx.peer.request("INFO");
    expect(Number(got.headers.get("cseq")?.split(" ")[0])).toBe(Number(reSeq.split(" ")[0]) + 2);
    expect(got.body.toString()).toBe("Signal=5\r\n");
    ctx.peer.send(respond(got, 200, "OK"), ctx.engine.sipPort);
    await info;
  });

  it("a re-INVITE the peer rejects is ACKed once, by the stack (the app's ACK is refused as drachtio does)", async () => {
    const ctx = await setup();
    const { dialog } = await answeringApp(ctx);
    await caller(ctx, "100").call(1, sdp(30000));
    const result = (await dialog).request({ method: "INVITE", body: sdp(41000) } as never);
    const reinvite = await ctx.peer.request("INVITE");
    ctx.peer.send(respond(reinvite, 488, "Not Acceptable Here"), ctx.engine.sipPort);
    const ack = await ctx.peer.request("ACK");
    expect(ack.headers.top("via")).toBe(reinvite.headers.top("via")); // the stack's hop-by-hop ACK
    expect(await result).toMatchObject({ status: 488 });
    expect(await ctx.peer.sees((r) => r.msg.kind === "request" && r.msg.method === "ACK", 300)).toBe(false);
  });

  it("the app cancels its INVITE: the peer gets CANCEL, answers 487, the app sees the failure", async () => {
    const ctx = await setup();
    const { uacP, inv, cancel } = await ringingThenCanceled(ctx, "r1");
    expect(cancel.headers.get("cseq")).toBe(`${inv.headers.get("cseq")?.split(" ")[0]} CANCEL`);
    ctx.peer.send(respond(cancel, 200, "OK"), ctx.engine.sipPort);
    ctx.peer.send(respond(inv, 487, "Request Terminated", { toTag: "r1" }), ctx.engine.sipPort);
    await expect(uacP).rejects.toMatchObject({ status: 487 });
  });

  it("a 200 that crosses the app's CANCEL: the engine ACKs, then BYEs, and the app's dialog is destroyed", async () => {
    const ctx = await setup();
    const { uacP, inv, cancel } = await ringingThenCanceled(ctx, "r2");
    ctx.peer.send(respond(cancel, 481, "Call/Transaction Does Not Exist"), ctx.engine.sipPort);
    const contact = `<sip:bob@127.0.0.1:${ctx.peer.port}>`;
    ctx.peer.send(respond(inv, 200, "OK", { toTag: "r2", contact, body: sdp(1) }), ctx.engine.sipPort);
    const uac = await uacP;
    const destroyed = new Promise<void>((r) => (uac as EventEmitter).once("destroy", () => r()));
    await ctx.peer.request("ACK");
    const bye = await ctx.peer.request("BYE");
    expect(bye.headers.get("reason")).toContain("cancel race");
    ctx.peer.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
    await destroyed;
  });

  it("resolves a host name in the app's Request-URI (system resolver, /etc/hosts) for a new request", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    // the machine's name normally resolves through /etc/hosts to a loopback address; traffic must stay on
    // loopback, so fall back to "localhost" where it does not
    const name = (await lookup(hostname())).address.startsWith("127.") ? hostname() : "localhost";
    const uri = `sip:bob@${name}:${ctx.peer.port}`;
    const sent = (srf.request as (u: string, o: object) => Promise<unknown>)(uri, { method: "OPTIONS" });
    const opt = await ctx.peer.request("OPTIONS");
    expect(opt.uri).toBe(uri);
    ctx.peer.send(respond(opt, 200, "OK"), ctx.engine.sipPort);
    await sent;
  });

  it("refuses an app request addressed to the engine itself (a B2BUA loop)", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    await expect(
      srf.createUAC(`sip:loop@127.0.0.1:${ctx.engine.sipPort}`, { localSdp: sdp(1) }),
    ).rejects.toThrow(/can not send request to myself/);
  });

  it("a record-routed UAC dialog: BYE goes to the first route with the route set, Request-URI = remote target", async () => {
    const ctx = await setup();
    const proxy = await UdpPeer.open();
    try {
      const srf = await connectApp(ctx, () => undefined);
      const uacP = srf.createUAC(`sip:bob@127.0.0.1:${ctx.peer.port}`, { localSdp: sdp(50000) });
      const inv = await ctx.peer.request("INVITE");
      // as Bob sends it: the proxy nearest to Bob on top, ours (nearest to us) last
      const rr = ["<sip:192.0.2.55;lr>", `<sip:127.0.0.1:${proxy.port};lr>`];
      const ok = respond(inv, 200, "OK", {
        toTag: "rr1",
        contact: `<sip:bob@192.0.2.77:5090>`,
        body: sdp(1),
      }).replace("Content-Type:", `Record-Route: ${rr[0]}, ${rr[1]}\r\nContent-Type:`);
      ctx.peer.send(ok, ctx.engine.sipPort);
      const uac = await uacP;
      const ack = await proxy.request("ACK");
      expect(ack.uri).toBe("sip:bob@192.0.2.77:5090");
      const destroyed = uac.destroy();
      const bye = await proxy.request("BYE");
      expect(bye.uri).toBe("sip:bob@192.0.2.77:5090");
      // UAC route set = the 2xx's Record-Route reversed (RFC 3261 §12.1.2)
      expect(bye.headers.getAll("route")).toEqual([rr[1], rr[0]]);
      proxy.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
      await destroyed;
    } finally {
      proxy.close();
    }
  });

  it("SUBSCRIBE dialog: 202 from the app, NOTIFYs in the dialog, a terminating NOTIFY ends it", async () => {
    const ctx = await setup();
    let dialog: Srf.Dialog | undefined;
    await connectApp(ctx, (srf) =>
      srf.use("subscribe", async (req, res) => {
        dialog = await srf.createUAS(req, res, { headers: { Expires: "600" } } as never);
      }),
    );
    const call = caller(ctx, "100");
    const { tag } = call;
    call.send("SUBSCRIBE", 1, { extra: ["Event: message-summary", "Expires: 600"] });
    const accepted = await ctx.peer.response(202, "SUBSCRIBE");
    const toTag = tagOf(accepted.headers.get("to") ?? "");
    expect(accepted.headers.get("contact")).toContain(`127.0.0.1:${ctx.engine.sipPort}`);
    await until(() => dialog !== undefined);
    const d = dialog as Srf.Dialog;
    const active = d.request({
      method: "NOTIFY",
      headers: {
        Event: "message-summary",
        "Subscription-State": "active;expires=600",
        "Content-Type": "application/simple-message-summary",
      },
      body: "Messages-Waiting: yes\r\n",
    } as never);
    const n1 = await ctx.peer.request("NOTIFY");
    expect(n1.uri).toBe(`sip:alice@127.0.0.1:${ctx.peer.port}`);
    expect(tagOf(n1.headers.get("from") ?? "")).toBe(toTag);
    expect(tagOf(n1.headers.get("to") ?? "")).toBe(tag);
    ctx.peer.send(respond(n1, 200, "OK"), ctx.engine.sipPort);
    await active;
    const ended = d.request({
      method: "NOTIFY",
      headers: { Event: "message-summary", "Subscription-State": "terminated;reason=timeout" },
    } as never);
    const n2 = await ctx.peer.request("NOTIFY");
    ctx.peer.send(respond(n2, 200, "OK"), ctx.engine.sipPort);
    await ended;
    call.send("SUBSCRIBE", 2, { toTag, extra: ["Event: message-summary"] });
    await ctx.peer.response(481, "SUBSCRIBE");
  });

  it("srf.proxyRequest: serial forking past a 503, responses relayed upstream, results reported to the app", async () => {
    const ctx = await setup();
    const b = await UdpPeer.open();
    const c = await UdpPeer.open();
    try {
      let results: { connected: boolean; finalStatus: number; responses: unknown[] } | undefined;
      await connectApp(ctx, (srf) =>
        srf.invite(async (req) => {
          results = (await (
            srf.proxyRequest as (r: unknown, d: string[], o: object) => Promise<typeof results>
          )(req, [`sip:carol@127.0.0.1:${c.port}`, `sip:bob@127.0.0.1:${b.port}`], {})) as typeof results;
        }),
      );
      const call = caller(ctx, "b2bua");
      const { callId } = call;
      call.send("INVITE", 1, { body: sdp(1000) });
      const toC = await c.request("INVITE");
      expect(toC.uri).toBe(`sip:carol@127.0.0.1:${c.port}`);
      expect(toC.headers.getAll("via")).toHaveLength(2);
      expect(toC.headers.get("call-id")).toBe(callId);
      expect(toC.headers.get("max-forwards")).toBe("69");
      c.send(respond(toC, 503, "Service Unavailable", { toTag: "c1" }), ctx.engine.sipPort);
      await c.request("ACK"); // hop-by-hop ACK for the 503
      const toB = await b.request("INVITE");
      b.send(respond(toB, 180, "Ringing", { toTag: "b1" }), ctx.engine.sipPort);
      const ringing = await ctx.peer.response(180, "INVITE");
      expect(ringing.headers.getAll("via")).toHaveLength(1);
      b.send(
        respond(toB, 200, "OK", { toTag: "b1", contact: `<sip:bob@127.0.0.1:${b.port}>`, body: sdp(2) }),
        ctx.engine.sipPort,
      );
      const ok = await ctx.peer.response(200, "INVITE");
      expect(ok.headers.get("contact")).toBe(`<sip:bob@127.0.0.1:${b.port}>`);
      await until(() => results !== undefined);
      expect(results?.connected).toBe(true);
      expect(results?.finalStatus).toBe(200);
      expect(await ctx.peer.sees((r) => r.msg.kind === "response" && r.msg.status === 503, 200)).toBe(false);
    } finally {
      b.close();
      c.close();
    }
  });

  it("srf.proxyRequest with simultaneous forking: both ring, the first 200 wins, the other branch is CANCELed", async () => {
    const ctx = await setup();
    const b = await UdpPeer.open();
    const c = await UdpPeer.open();
    try {
      let results: { connected: boolean; finalStatus: number } | undefined;
      await connectApp(ctx, (srf) =>
        srf.invite(async (req) => {
          results = (await (
            srf.proxyRequest as (r: unknown, d: string[], o: object) => Promise<typeof results>
          )(req, [`sip:carol@127.0.0.1:${c.port}`, `sip:bob@127.0.0.1:${b.port}`], {
            forking: "simultaneous",
          })) as typeof results;
        }),
      );
      const call = caller(ctx, "fork");
      call.send("INVITE", 1, { body: sdp(1000) });
      const [toB, toC] = await Promise.all([b.request("INVITE"), c.request("INVITE")]);
      c.send(respond(toC, 180, "Ringing", { toTag: "c1" }), ctx.engine.sipPort);
      b.send(respond(toB, 180, "Ringing", { toTag: "b1" }), ctx.engine.sipPort);
      b.send(
        respond(toB, 200, "OK", { toTag: "b1", contact: `<sip:bob@127.0.0.1:${b.port}>`, body: sdp(2) }),
        ctx.engine.sipPort,
      );
      const ok = await ctx.peer.response(200, "INVITE");
      expect(ok.headers.get("contact")).toBe(`<sip:bob@127.0.0.1:${b.port}>`);
      const cancel = await c.request("CANCEL");
      c.send(respond(cancel, 200, "OK"), ctx.engine.sipPort);
      c.send(respond(toC, 487, "Request Terminated", { toTag: "c1" }), ctx.engine.sipPort);
      await until(() => results !== undefined);
      expect(results).toMatchObject({ connected: true, finalStatus: 200 });
      expect(await ctx.peer.sees((r) => r.msg.kind === "response" && r.msg.status === 487, 300)).toBe(false);
    } finally {
      b.close();
      c.close();
    }
  });

  it("a SUBSCRIBE dialog whose subscriber never refreshes is forgotten after Expires (+ grace)", async () => {
    const ctx = await setup();
    await connectApp(ctx, (srf) =>
      srf.use(
        "subscribe",
        (req, res) => void srf.createUAS(req, res, { headers: { Expires: "1" } } as never),
      ),
    );
    const call = caller(ctx, "100");
    call.send("SUBSCRIBE", 1, { extra: ["Event: presence", "Expires: 1"] });
    const accepted = await ctx.peer.response(202, "SUBSCRIBE");
    const toTag = tagOf(accepted.headers.get("to") ?? "");
    expect(ctx.engine.stats().dialogs).toBe(1);
    const deadline = Date.now() + 14_000; // expiry 1 s + grace 1 s, swept every 5 s; slack for a loaded machine
    while (ctx.engine.stats().dialogs > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(ctx.engine.stats().dialogs).toBe(0);
    call.send("SUBSCRIBE", 2, { toTag, extra: ["Event: presence"] });
    await ctx.peer.response(481, "SUBSCRIBE");
  }, 25_000);

  it("the app as UAC: an UPDATE from the callee in its early dialog reaches srf, which answers it", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    let provisional = 0;
    const uacP = srf.createUAC(
      `sip:bob@127.0.0.1:${ctx.peer.port}`,
      { localSdp: sdp(50000) },
      { cbProvisional: () => provisional++ },
    );
    const inv = await ctx.peer.request("INVITE");
    const contact = `<sip:bob@127.0.0.1:${ctx.peer.port}>`;
    ctx.peer.send(
      respond(inv, 183, "Session Progress", { toTag: "e1", contact, body: sdp(3) }),
      ctx.engine.sipPort,
    );
    // the engine relays the 183 to the app after it has set up the early dialog the UPDATE is sent in
    await until(() => provisional > 0);
    const ourTag = tagOf(inv.headers.get("from") ?? "") ?? "";
    const update = [
      `UPDATE sip:x@127.0.0.1:${ctx.engine.sipPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${ctx.peer.port};branch=z9hG4bKupd1;rport`,
      "Max-Forwards: 70",
      `From: <sip:bob@127.0.0.1:${ctx.peer.port}>;tag=e1`,
      `To: ${inv.headers.get("from")}`,
      `Call-ID: ${inv.headers.get("call-id")}`,
      "CSeq: 1 UPDATE",
      `Contact: ${contact}`,
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    expect(ourTag).not.toBe("");
    ctx.peer.send(update, ctx.engine.sipPort);
    const updOk = await ctx.peer.response(200, "UPDATE");
    expect(updOk.body.toString()).toContain("m=audio 50000"); // srf answers with its offer
    ctx.peer.send(respond(inv, 200, "OK", { toTag: "e1", contact, body: sdp(3) }), ctx.engine.sipPort);
    const uac = await uacP;
    expect(dialogId(uac)).toContain(ourTag);
    await ctx.peer.request("ACK");
  });

  it("the app as UAC gets the failure when the peer rejects", async () => {
    const ctx = await setup();
    const srf = await connectApp(ctx, () => undefined);
    const uacP = srf.createUAC(`sip:bob@127.0.0.1:${ctx.peer.port}`, { localSdp: sdp(50000) });
    const inv = await ctx.peer.request("INVITE");
    ctx.peer.send(respond(inv, 603, "Decline", { toTag: "x" }), ctx.engine.sipPort);
    await expect(uacP).rejects.toMatchObject({ status: 603 });
    await ctx.peer.request("ACK"); // the stack's ACK for the non-2xx final
  });

  it("B2BUA: caller → app → callee, ACKs on both legs, the caller's BYE is relayed to the callee", async () => {
    const ctx = await setup();
    const b = await UdpPeer.open();
    try {
      let connected = false;
      await connectApp(ctx, (srf) =>
        srf.invite(async (req, res) => {
          const { uas, uac } = await srf.createB2BUA(req, res, `sip:bob@127.0.0.1:${b.port}`, {
            localSdpB: req.body,
          });
          connected = true;
          uas.on("destroy", () => uac.destroy());
          uac.on("destroy", () => uas.destroy());
        }),
      );
      const call = caller(ctx, "b2bua");
      const { callId } = call;
      call.send("INVITE", 1, { body: sdp(1000) });
      const inv = await b.request("INVITE");
      expect(inv.headers.get("call-id")).not.toBe(callId);
      b.send(respond(inv, 180, "Ringing", { toTag: "tb" }), ctx.engine.sipPort);
      await ctx.peer.response(180, "INVITE");
      b.send(
        respond(inv, 200, "OK", { toTag: "tb", contact: `<sip:bob@127.0.0.1:${b.port}>`, body: sdp(2000) }),
        ctx.engine.sipPort,
      );
      await b.request("ACK");
      const ok = await ctx.peer.response(200, "INVITE");
      expect(ok.body.toString()).toContain("m=audio 2000");
      const toTag = tagOf(ok.headers.get("to") ?? "");
      call.send("ACK", 1, { toTag });
      await until(() => connected);
      call.send("BYE", 2, { toTag });
      await ctx.peer.response(200, "BYE");
      const bye = await b.request("BYE");
      expect(bye.uri).toBe(`sip:bob@127.0.0.1:${b.port}`);
      b.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
    } finally {
      b.close();
    }
  });

  it("a 200 never ACKed: the engine sends BYE to the peer and the app's dialog is destroyed", async () => {
    const ctx = await setup({ T1: 40 });
    let reason = "";
    let destroyed = false;
    await connectApp(ctx, (srf) =>
      srf.invite(async (req, res) => {
        const uas = await srf.createUAS(req, res, { localSdp: sdp(40000) });
        (uas as EventEmitter).on("destroy", (_msg: unknown, r: string) => {
          reason = r;
          destroyed = true;
        });
      }),
    );
    const call = caller(ctx, "100");
    call.send("INVITE", 1, { body: sdp(1) });
    await ctx.peer.response(200, "INVITE");
    const bye = await ctx.peer.request("BYE", 10_000);
    expect(bye.headers.get("reason")).toContain("ACK timeout");
    ctx.peer.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
    await until(() => destroyed);
    expect(reason).toBe("ACK timeout");
  });

  it("a BYE in a dialog whose 200 was never ACKed ends the 200's retransmissions", async () => {
    // T1 = 40 ms: without the stop, the 200 would be retransmitted at 40, 120, 280, 600, 1240 ms...
    const ctx = await setup({ T1: 40 });
    const { dialog } = await answeringApp(ctx);
    const call = caller(ctx, "100");
    call.send("INVITE", 1, { body: sdp(1) });
    const ok = await ctx.peer.response(200, "INVITE");
    await ctx.peer.response(200, "INVITE"); // a retransmission: the engine is waiting for the ACK
    const destroyed = new Promise<void>(
      (resolve) => void dialog.then((d) => d.on("destroy", () => resolve())),
    );
    call.send("BYE", 2, { toTag: tagOf(ok.headers.get("to") ?? "") });
    await ctx.peer.response(200, "BYE");
    await destroyed;
    const inviteOk = (r: Received): boolean =>
      r.msg.kind === "response" &&
      r.msg.status === 200 &&
      (r.msg.headers.get("cseq") ?? "").endsWith("INVITE");
    await new Promise((r) => setTimeout(r, 20)); // a copy already in flight may still land
    while (await ctx.peer.sees(inviteOk, 0)) {
      // drop the copies sent before the BYE
    }
    expect(await ctx.peer.sees(inviteOk, 1000)).toBe(false);
  });

  it("survives garbage from an authenticated app (bad SIP, unknown ids, bad tokens) and keeps serving", async () => {
    const ctx = await setup();
    const sock = connect(ctx.engine.adminPort, "127.0.0.1");
    await new Promise<void>((r) => sock.once("connect", () => r()));
    const replies: string[] = [];
    const dec = new FrameDecoder(
      (p) => replies.push(p.toString("utf8")),
      () => undefined,
    );
    sock.on("data", (c: Buffer) => dec.push(c));
    sock.write(encodeFrame(`a1|authenticate|${SECRET}|`));
    let rnd = 42;
    const next = (): number => {
      rnd = (rnd * 1103515245 + 12345) % 2147483648;
      return rnd;
    };
    const samples = [
      "SIP/2.0 200 OK\r\ncall-id: x\r\n\r\n",
      "BYE sip:placeholder SIP/2.0\r\n\r\n",
      "INVITE sip:bob@127.0.0.1:1 SIP/2.0\r\ncseq: nope\r\n\r\n",
      "CANCEL sip:x SIP/2.0\r\n\r\n",
      "OPTIONS not-a-uri SIP/2.0\r\n\r\n",
      "garbage without start line",
      "REGISTER sip:127.0.0.1:1 SIP/2.0\r\nbad header line\r\n\r\n",
      "MESSAGE sip:a@[::1 SIP/2.0\r\n\r\n",
    ];
    const frames: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const sample = samples[next() % samples.length] ?? "";
      const ids = [
        ["", ""],
        ["t-unknown", ""],
        ["", "d-unknown"],
        ["t-unknown", "d-unknown"],
      ][next() % 4] ?? ["", ""];
      const bytes = Buffer.from(sample);
      if (next() % 3 === 0 && bytes.length > 0) bytes[next() % bytes.length] = next() % 256;
      frames.push(encodeFrame(`g${i}|sip|${ids[0]}|${ids[1]}\r\n`, bytes));
    }
    frames.push(encodeFrame("z1|proxy|x|remainInDialog||||||sip:a@b"));
    sock.write(Buffer.concat(frames));
    await until(() => replies.length >= 402);
    expect(replies.filter((r) => /\|response\|g\d+\|(OK|NO)/.test(r)).length).toBe(400);
    sock.destroy();
    // a well-behaved app still works
    await connectApp(ctx, (srf) => srf.use("options", (_req, res) => res.send(200)));
    const call = caller(ctx, "probe");
    call.send("OPTIONS", 1);
    await ctx.peer.response(200, "OPTIONS");
  });

  it("an app that disconnects: its pending request gets 503 and its call is hung up with BYE", async () => {
    const ctx = await setup();
    let messages = 0;
    const app = await connectApp(ctx, (srf) => {
      srf.invite((req, res) => void srf.createUAS(req, res, { localSdp: sdp(40000) }));
      srf.use("message", () => {
        messages++; // never answers
      });
    });
    const call = caller(ctx, "100");
    const { callId } = call;
    await call.call(1, sdp(1));
    caller(ctx, "100").send("MESSAGE", 1);
    await until(() => messages > 0); // a request the app has not answered yet
    app.disconnect();
    await ctx.peer.response(503, "MESSAGE");
    const bye = await ctx.peer.request("BYE");
    expect(bye.headers.get("call-id")).toBe(callId);
    expect(bye.uri).toBe(`sip:alice@127.0.0.1:${ctx.peer.port}`);
    ctx.peer.send(respond(bye, 200, "OK"), ctx.engine.sipPort);
  });
});
