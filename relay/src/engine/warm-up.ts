// JIT warm-up at start. Until V8 has optimized the hot paths, one REGISTER costs the engine and a drachtio-srf app
// about four times what it costs later (measured: ~0.9 ms engine + ~0.5 ms srf CPU per REGISTER in the first second
// against ~0.25 + ~0.2 ms steady), so the first seconds at 1,000 REGISTER/s queue up to hundreds of ms of delay.
// Before the real listeners open, the engine therefore runs a few thousand REGISTERs (and rejected INVITEs) through
// the same code on a private instance: its own SIP stack, admin server and bridge on ephemeral loopback ports, an
// srf app answering them (srf runs in this process too when the relay hosts the PBX), and a UDP client. Nothing of
// it is reachable from outside, and all of it is closed before startEngine() returns. Once per process.

import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import Srf from "drachtio-srf";
import { SipStack } from "./stack/index.ts";
import { AppBridge } from "./wire/bridge/app-bridge.ts";
import { AdminServer } from "./wire/server.ts";

export interface WarmUpOptions {
  /** Transactions to run (default 3000). */
  transactions?: number;
  /** Stop earlier than that after this long, ms (default 2500): a slow machine must not stall the start. */
  budgetMs?: number;
}

/** How many requests are in flight at once: enough to batch like real traffic, few enough to stay quick. */
const WINDOW = 32;
let done = false;

/**
 * Run the warm-up once per process; later calls resolve at once with 0. Resolves with the number of transactions
 * answered; never throws (a failed warm-up only costs speed).
 */
export async function warmUp(opts: WarmUpOptions = {}): Promise<number> {
  if (done) return 0;
  done = true;
  try {
    return await run(opts.transactions ?? 3000, opts.budgetMs ?? 2500);
  } catch {
    return 0; // the engine works without it, only slower in its first seconds
  }
}

async function run(transactions: number, budgetMs: number): Promise<number> {
  const deadline = Date.now() + budgetMs;
  const stack = await SipStack.listen({ host: "127.0.0.1", port: 0, transports: ["udp"] });
  const bridge = new AppBridge(stack, { warn: () => undefined });
  const secret = randomBytes(16).toString("hex");
  const sipPort = stack.hostports[0]?.port ?? 0;
  let admin: AdminServer | undefined;
  let srf: Srf | undefined;
  let client: Socket | undefined;
  try {
    admin = await AdminServer.listen({
      host: "127.0.0.1",
      port: 0,
      secret,
      hostports: `udp/127.0.0.1:${sipPort}`,
      version: "v0.9.5-warm-up",
      handler: bridge,
    });
    bridge.attach(admin);
    srf = await connectApp(admin, secret, deadline);
    client = await openClient();
    return await traffic(client, sipPort, transactions, deadline);
  } finally {
    srf?.disconnect();
    client?.close();
    bridge.close();
    await admin?.close();
    await stack.close();
  }
}

/** An srf app that answers REGISTER with 200 and INVITE with 486; resolves once the engine has its routes. */
async function connectApp(admin: AdminServer, secret: string, deadline: number): Promise<Srf> {
  const srf = new Srf();
  srf.on("error", () => undefined);
  srf.use("register", (_req, res) => res.send(200, { headers: { Expires: "3600" } }));
  srf.use("invite", (_req, res) => res.send(486));
  void srf.connect({ host: "127.0.0.1", port: admin.port, secret });
  const routed = (): boolean => {
    const methods = [...admin.routedMethods()];
    return methods.includes("register") && methods.includes("invite");
  };
  while (!routed()) {
    if (Date.now() > deadline) throw new Error("warm-up app did not connect in time");
    await new Promise((r) => setTimeout(r, 5));
  }
  return srf;
}

function openClient(): Promise<Socket> {
  const sock = createSocket("udp4");
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, "127.0.0.1", () => {
      sock.off("error", reject);
      resolve(sock);
    });
  });
}

/**
 * Keep WINDOW requests in flight until `transactions` have been answered or the deadline passed; one in eight is
 * an INVITE (rejected, then ACKed), the rest REGISTERs, each with its own Call-ID and branch as real phones send.
 */
async function traffic(sock: Socket, port: number, transactions: number, deadline: number): Promise<number> {
  const local = sock.address().port;
  let sent = 0;
  let answered = 0;
  await new Promise<void>((resolve) => {
    const finish = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    const next = (): void => {
      if (sent >= transactions || Date.now() > deadline) return;
      const n = sent++;
      sock.send(request(n % 8 === 7 ? "INVITE" : "REGISTER", n, local, port), port, "127.0.0.1");
    };
    sock.on("message", (buf) => {
      const text = buf.toString("latin1", 0, Math.min(buf.length, 16));
      if (text.startsWith("SIP/2.0 1")) return; // 100 Trying
      if (text.startsWith("SIP/2.0 486")) sock.send(ackFor(buf), port, "127.0.0.1");
      answered++;
      if (answered >= transactions || Date.now() > deadline) {
        clearTimeout(finish);
        resolve();
        return;
      }
      next();
    });
    for (let i = 0; i < WINDOW; i++) next();
  });
  return answered;
}

const RUN = randomBytes(4).toString("hex");

function request(method: string, n: number, local: number, port: number): string {
  const body =
    method === "INVITE"
      ? "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
      : "";
  return [
    `${method} sip:${method === "INVITE" ? "bob@" : ""}127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-${RUN}-${n};rport`,
    "Max-Forwards: 70",
    `From: "Warm Up" <sip:alice@127.0.0.1:${local}>;tag=${RUN}${n}`,
    `To: <sip:${method === "INVITE" ? "bob" : "alice"}@127.0.0.1:${port}>`,
    `Call-ID: ${RUN}-${n}@127.0.0.1`,
    `CSeq: ${n + 1} ${method}`,
    `Contact: <sip:alice@127.0.0.1:${local};transport=udp>`,
    "User-Agent: gosip-warm-up",
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER",
    ...(method === "REGISTER" ? ["Expires: 3600"] : ["Content-Type: application/sdp"]),
    `Content-Length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

/** The ACK for a non-2xx final response (same branch, the response's To tag, RFC 3261 §17.1.1.3). */
function ackFor(res: Buffer): string {
  const text = res.toString("utf8");
  const header = (name: string): string => new RegExp(`^${name}: *(.*)$`, "im").exec(text)?.[1]?.trim() ?? "";
  const via = header("Via")
    .replace(/;received=[^;]*/, "")
    .replace(/;rport=\d+/, ";rport");
  const cseq = header("CSeq").split(" ")[0] ?? "1";
  const to = header("To");
  const uri = /<([^>]*)>/.exec(to)?.[1] ?? "sip:bob@127.0.0.1";
  return [
    `ACK ${uri} SIP/2.0`,
    `Via: ${via}`,
    "Max-Forwards: 70",
    `From: ${header("From")}`,
    `To: ${to}`,
    `Call-ID: ${header("Call-ID")}`,
    `CSeq: ${cseq} ACK`,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}
