/**
 * Test helpers for the voice webhooks (Node, tests only; never imported by the app):
 * an edge with (obviously fake) Twilio credentials, webhooks posted the way Twilio
 * posts them (form body, X-Twilio-Signature over PUBLIC_URL + path + query), the
 * seed a PBX needs (users, devices, a DID, relay settings, live registrations), and
 * a real relay on the real WebSocket link so the edge sees the relay online.
 */
import type { AddressInfo } from "node:net";
import { computeHa1, devices, dids, registrations, settings } from "@gosip/drizzle";
import { serve } from "@hono/node-server";
import { createNodeWebSocket } from "@hono/node-ws";
import WebSocket from "ws";
import { attachNodeRelayLink } from "../relay/node-link.ts";
import { createTestEdge, createUser, request, signIn, type TestEdge } from "../test-support.ts";
import { twilioSignature } from "../twilio/signature.ts";

export const TEST_ACCOUNT_SID = "AC00000000000000000000000000000a11";
export const TEST_AUTH_TOKEN = "0123456789abcdef0123456789abcdef";
export const TEST_PUBLIC_URL = "http://localhost:8080";

/** A fresh test edge that trusts webhooks signed with TEST_AUTH_TOKEN. */
export function createVoiceEdge(): Promise<TestEdge> {
  return createTestEdge({
    env: { TWILIO_ACCOUNT_SID: TEST_ACCOUNT_SID, TWILIO_AUTH_TOKEN: TEST_AUTH_TOKEN },
  });
}

let sidCounter = 0;
/** A distinct, well-formed CallSid. */
export function callSid(): string {
  sidCounter += 1;
  return `CA${sidCounter.toString(16).padStart(8, "0")}${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;
}

/** POSTs a Twilio webhook: form body, signed (or with `signature` instead, to forge one). */
export async function postWebhook(
  t: TestEdge,
  pathAndQuery: string,
  params: Record<string, string>,
  opts: { signature?: string } = {},
): Promise<Response> {
  const signature =
    opts.signature ?? (await twilioSignature(TEST_AUTH_TOKEN, `${TEST_PUBLIC_URL}${pathAndQuery}`, params));
  return t.app.request(`${TEST_PUBLIC_URL}${pathAndQuery}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature },
    body: new URLSearchParams(params).toString(),
  });
}

/** Path and query of an absolute URL the edge wrote into TwiML (action URLs). */
export function pathOf(url: string): string {
  const u = new URL(url);
  if (`${u.protocol}//${u.host}` !== TEST_PUBLIC_URL) throw new Error(`not an edge URL: ${url}`);
  return `${u.pathname}${u.search}`;
}

export interface VoiceSeed {
  aliceId: string;
  bobId: string;
  /** Alice's desk phone (ext 101) and softphone (102), Bob's desk (201). */
  desk: { id: string; extension: string };
  soft: { id: string; extension: string };
  bobDesk: { id: string; extension: string };
  did: { id: string; e164: string };
}

export const RELAY_SETTING = {
  v: 1,
  publicSipUri: "sip:relay.example.net:5060;transport=udp",
  inboundUsername: "twilio-in",
  inboundPassword: "inbound-password-1",
  trustedNetworks: [],
};

async function device(t: TestEdge, userId: string, extension: string, name: string) {
  const sipUsername = `u${extension}`;
  const [row] = await t.db
    .insert(devices)
    .values({
      userId,
      name,
      extension,
      sipUsername,
      ha1Md5: computeHa1(sipUsername, "gosip", "pw", "MD5"),
      ha1Sha256: computeHa1(sipUsername, "gosip", "pw", "SHA-256"),
    })
    .returning({ id: devices.id, extension: devices.extension });
  if (!row) throw new Error("device insert returned nothing");
  return row;
}

/** Users, devices, a DID ringing Alice's two phones, and the relay's settings. */
export async function seedVoice(t: TestEdge): Promise<VoiceSeed> {
  const alice = await createUser(t, { name: "Alice" });
  const bob = await createUser(t, { name: "Bob" });
  const desk = await device(t, alice.id, "101", "Alice desk");
  const soft = await device(t, alice.id, "102", "Alice soft");
  const bobDesk = await device(t, bob.id, "201", "Bob desk");
  const [did] = await t.db
    .insert(dids)
    .values({ e164: "+15550001000", label: "Main", defaultTargets: { v: 1, deviceIds: [desk.id, soft.id] } })
    .returning({ id: dids.id, e164: dids.e164 });
  if (!did) throw new Error("DID insert returned nothing");
  await t.db.insert(settings).values({ key: "relay", value: RELAY_SETTING });
  return { aliceId: alice.id, bobId: bob.id, desk, soft, bobDesk, did };
}

/** Marks a device registered now (one live contact), as the relay's events would. */
export async function register(t: TestEdge, deviceId: string, extension: string): Promise<void> {
  await t.db.insert(registrations).values({
    deviceId,
    contactUri: `sip:${extension}@192.168.1.${Number(extension) % 250}:5062`,
    sourceAddress: "192.168.1.20",
    sourcePort: 5062,
    transport: "udp",
    expiresAt: new Date(t.deps.clock.now() + 3_600_000),
    lastSeenAt: new Date(t.deps.clock.now()),
  });
}

export interface LiveRelay {
  close(): Promise<void>;
}

/**
 * Serves the edge on loopback and connects a relay over the real link (token, WebSocket,
 * hello), so the edge reports the relay online. Close it to take the relay offline.
 */
export async function connectRelay(t: TestEdge): Promise<LiveRelay> {
  const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app: t.app });
  attachNodeRelayLink(t.deps, upgradeWebSocket);
  let server: ReturnType<typeof serve> | undefined;
  await new Promise<void>((resolve) => {
    server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
    injectWebSocket(server);
  });
  const srv = server;
  if (!srv) throw new Error("server did not start");
  const admin = await createUser(t, { role: "admin" });
  const session = await signIn(t, admin);
  const res = await request(t, "POST", "/api/relay/tokens", { as: session, body: { name: "home" } });
  const { token } = (await res.json()) as { token: string };
  const port = (srv.address() as AddressInfo).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/relay/connect`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const acked = new Promise<void>((resolve) => {
    ws.on("message", (data) => {
      if (String(data).includes('"hello-ack"')) resolve();
    });
  });
  ws.send(JSON.stringify({ type: "hello", v: 1, software: "gosip-relay test", sip: ["udp/127.0.0.1:5060"] }));
  await acked;
  // The hello-ack is sent before the link records the hello as done; wait until the status says so.
  for (let i = 0; i < 100 && !(await t.deps.relayChannel.status()).connected; i++)
    await new Promise((r) => setTimeout(r, 10));
  return {
    close: async () => {
      ws.terminate();
      for (let i = 0; i < 100 && (await t.deps.relayChannel.status()).connected; i++)
        await new Promise((r) => setTimeout(r, 10));
      await new Promise<void>((resolve) => {
        srv.close(() => resolve());
        (srv as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
