// Wire compatibility with drachtio-server: what an unmodified drachtio-srf application sees from the engine
// (reply texts, which responses are reported, CDR contents, headers the server rewrites) must be what
// drachtio-server's own source sends. Each case names the drachtio-server function it was checked against; the
// audit table is in the session notes (wire-audit.md). A scripted UDP peer plays the phones and trunks.

import Srf from "drachtio-srf";
import { afterEach, describe, expect, it } from "vitest";
import { type Engine, startEngine } from "./index.ts";
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

async function connectApp(ctx: Ctx, install: (srf: Srf) => void): Promise<Srf> {
  const srf = new Srf();
  install(srf);
  srf.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    srf.on("connect", (err: Error | null) => (err ? reject(err) : resolve()));
    void srf.connect({ host: "127.0.0.1", port: ctx.engine.adminPort, secret: SECRET });
  });
  ctx.apps.push(srf);
  await new Promise((r) => setTimeout(r, 30)); // let the route messages land
  return srf;
}

/** Resolves once cond() holds (checked every 10 ms), fails after 3 s. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met within 3 s");
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
): { callId: string } {
  seq++;
  const callId = `wire-compat-${seq}-${Date.now()}`;
  const text = request({
    method,
    uri: `sip:${user}@127.0.0.1:${ctx.engine.sipPort}`,
    peerPort: ctx.peer.port,
    callId,
    cseq: 1,
    fromTag: `f${seq}`,
    ...(opts.body === undefined ? {} : { body: opts.body }),
    ...(opts.extra === undefined ? {} : { extra: opts.extra }),
  });
  ctx.peer.send(opts.edit ? opts.edit(text) : text, ctx.engine.sipPort);
  return { callId };
}

interface ProxyResults {
  connected: boolean;
  finalStatus: number;
  responses: { address: string; port: number; msgs: { status: number }[] }[];
}

type ProxyFn = (req: unknown, dest: string[], opts: object) => Promise<ProxyResults>;

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
