// Admin server tests: a raw TCP client speaking the drachtio framing, and the real drachtio-srf connecting.
import { connect, type Socket } from "node:net";
import Srf from "drachtio-srf";
import { afterEach, describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "./framing.ts";
import type { AppMessage } from "./protocol.ts";
import { AdminServer, type AppSession } from "./server.ts";

const SECRET = "s3cret-for-tests";

interface Recorder {
  sip: AppMessage[];
  closed: AppSession[];
}

async function startServer(): Promise<{ admin: AdminServer; rec: Recorder }> {
  const rec: Recorder = { sip: [], closed: [] };
  const admin = await AdminServer.listen({
    host: "127.0.0.1",
    port: 0,
    secret: SECRET,
    hostports: "udp/127.0.0.1:5060,tcp/127.0.0.1:5060",
    version: "v0.9.5-gosip",
    handler: {
      onSip: (_app, msg) => rec.sip.push(msg),
      onProxy: () => undefined,
      onAppClosed: (app) => rec.closed.push(app),
    },
  });
  return { admin, rec };
}

/** Raw client: sends frames, collects reply frames as strings. */
async function rawClient(
  port: number,
): Promise<{ sock: Socket; frames: string[]; next: () => Promise<string> }> {
  const sock = connect(port, "127.0.0.1");
  await new Promise<void>((r) => sock.once("connect", () => r()));
  const frames: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  const dec = new FrameDecoder(
    (p) => {
      const s = p.toString("utf8");
      const w = waiters.shift();
      if (w) w(s);
      else frames.push(s);
    },
    () => undefined,
  );
  sock.on("data", (c: Buffer) => dec.push(c));
  const next = (): Promise<string> => {
    const f = frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    return new Promise((r) => waiters.push(r));
  };
  return { sock, frames, next };
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0)) await fn();
});

describe("AdminServer", () => {
  it("authenticates with the secret, answers ping, routes and round-robins", async () => {
    const { admin, rec } = await startServer();
    cleanup.push(() => admin.close());
    const a = await rawClient(admin.port);
    const b = await rawClient(admin.port);
    cleanup.push(() => {
      a.sock.destroy();
      b.sock.destroy();
    });
    // auth + route sent in one TCP write (joined frames)
    a.sock.write(
      Buffer.concat([encodeFrame("m1|authenticate|s3cret-for-tests|"), encodeFrame("m2|route|options")]),
    );
    expect(await a.next()).toMatch(
      /^[^|]+\|response\|m1\|OK\|udp\/127\.0\.0\.1:5060,tcp\/127\.0\.0\.1:5060\|v0\.9\.5/,
    );
    expect(await a.next()).toMatch(/\|response\|m2\|OK$/);
    b.sock.write(encodeFrame("n1|authenticate|s3cret-for-tests|tag1"));
    await b.next();
    b.sock.write(encodeFrame("n2|route|OPTIONS"));
    await b.next();
    const picks = [admin.selectApp("OPTIONS"), admin.selectApp("options"), admin.selectApp("OPTIONS")];
    expect(picks[0]).toBeDefined();
    expect(picks[0]).not.toBe(picks[1]);
    expect(picks[2]).toBe(picks[0]);
    expect(admin.selectApp("INVITE")).toBeUndefined();

    a.sock.write(encodeFrame("m3|ping"));
    expect(await a.next()).toMatch(/\|response\|m3\|OK\|pong$/);

    a.sock.write(encodeFrame("m4|sip|||\r\n", "OPTIONS sip:x@y SIP/2.0\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 50));
    expect(rec.sip).toHaveLength(1);
    expect(rec.sip[0]?.sip?.toString()).toBe("OPTIONS sip:x@y SIP/2.0\r\n\r\n");

    // a disconnect removes the app from the routes and is reported
    a.sock.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(rec.closed).toHaveLength(1);
    const only = admin.selectApp("options");
    expect(admin.selectApp("options")).toBe(only);
  });

  it("rejects a wrong secret and closes the connection; bad framing closes too", async () => {
    const { admin } = await startServer();
    cleanup.push(() => admin.close());
    const c = await rawClient(admin.port);
    const closed = new Promise<void>((r) => c.sock.once("close", () => r()));
    c.sock.write(encodeFrame("x1|authenticate|wrong|"));
    expect(await c.next()).toMatch(/\|response\|x1\|NO\|incorrect secret$/);
    await closed;

    const d = await rawClient(admin.port);
    const closedD = new Promise<void>((r) => d.sock.once("close", () => r()));
    d.sock.write("abc#garbage");
    await closedD;

    // an unauthenticated connection announcing a huge frame is dropped at once
    const big = await rawClient(admin.port);
    const closedBig = new Promise<void>((r) => big.sock.once("close", () => r()));
    big.sock.write("100000#");
    await closedBig;

    const e = await rawClient(admin.port);
    const closedE = new Promise<void>((r) => e.sock.once("close", () => r()));
    e.sock.write(encodeFrame("y1|route|invite"));
    expect(await e.next()).toMatch(/\|NO\|/);
    await closedE;
  });

  it("accepts drachtio-srf: connect event with hostport, routes from srf.use", async () => {
    const { admin } = await startServer();
    cleanup.push(() => admin.close());
    const srf = new Srf();
    cleanup.push(() => srf.disconnect());
    srf.use("options", (_req, res) => res.send(200));
    srf.invite((_req, res) => res.send(486));
    const hostport = await new Promise<string>((resolve, reject) => {
      srf.on("connect", (err: Error | null, hp: string) => (err ? reject(err) : resolve(hp)));
      srf.connect({ host: "127.0.0.1", port: admin.port, secret: SECRET });
    });
    expect(hostport).toBe("udp/127.0.0.1:5060,tcp/127.0.0.1:5060");
    await new Promise((r) => setTimeout(r, 50));
    expect(admin.selectApp("OPTIONS")).toBeDefined();
    expect(admin.selectApp("INVITE")).toBeDefined();
    expect(admin.selectApp("REGISTER")).toBeUndefined();
  });

  it("srf with a wrong secret gets a connect error", async () => {
    const { admin } = await startServer();
    cleanup.push(() => admin.close());
    const srf = new Srf();
    cleanup.push(() => srf.disconnect());
    const err = await new Promise<Error | null>((resolve) => {
      srf.on("connect", (e: Error | null) => resolve(e));
      srf.on("error", () => undefined);
      srf.connect({ host: "127.0.0.1", port: admin.port, secret: "nope" });
    });
    expect(err?.message).toMatch(/authenticate/);
  });
});
