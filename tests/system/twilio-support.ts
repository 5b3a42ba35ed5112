/**
 * Shared set-up of the whole-system tests through the Twilio simulator that need no phone: the
 * simulator (REST + call side) on loopback, the real Node edge pointed at it (TWILIO_API_BASE,
 * TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), a real SMTP server on 127.0.0.1 as the admin's mailbox (the
 * `email` setting, provider smtp), one desk device owned by the admin and one DID ringing it whose
 * voice, status and SMS URLs in the simulated account point at the edge's webhooks.
 *
 * The admin (owner@example.com) owns the device, so every email about the DID (voicemail, SMS
 * forward) lands in that one mailbox.
 */
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { startTestSmtpServer, type TestSmtpServer } from "../../edge/src/notifications/test-smtp.ts";
import { type FullTwilioSim, startFullTwilioSim } from "../twilio-sim/index.ts";
import { type CreatedDevice, SystemEdge, until } from "./support.ts";

/** Obviously fake credentials of the simulated account. */
export const SIM_ACCOUNT_SID = "AC5157e3c0ffee5157e3c0ffee5157e3c0";
export const SIM_AUTH_TOKEN = "0badc0de0badc0de0badc0de0badc0de";
export const OWNER_EMAIL = "owner@example.com";

export interface CdrJson {
  id: string;
  direction: string;
  from: string;
  to: string;
  status: string;
  disposition: string | null;
  reason: string | null;
  spamScore: number | null;
  twilioCallSid: string | null;
  voicemailId: string | null;
}

export interface TwilioWorld {
  sim: FullTwilioSim;
  edge: SystemEdge;
  smtp: TestSmtpServer;
  device: CreatedDevice;
  did: { id: string; e164: string };
  /** `${edge.url}/api/webhooks/twilio` */
  hooks: string;
  close(): Promise<void>;
}

/** Starts simulator, edge, SMTP server; configures email, a device and a DID wired to the simulator. */
export async function startTwilioWorld(opts: {
  did: string;
  transcriptionDelayMs?: number;
  /** Settings written before the DID exists, e.g. the relay's. */
  beforeDid?: (edge: SystemEdge) => Promise<void>;
}): Promise<TwilioWorld> {
  const sim = await startFullTwilioSim({
    accountSid: SIM_ACCOUNT_SID,
    authToken: SIM_AUTH_TOKEN,
    calls: { transcriptionDelayMs: opts.transcriptionDelayMs ?? 300 },
  });
  const smtp = await startTestSmtpServer();
  const edge = await SystemEdge.start({
    env: {
      TWILIO_API_BASE: sim.rest.baseUrl,
      TWILIO_ACCOUNT_SID: SIM_ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: SIM_AUTH_TOKEN,
    },
  });
  const close = async (): Promise<void> => {
    await sim.close();
    await edge.close();
    await smtp.close();
  };
  try {
    await edge.signInAdmin();
    await edge.ok("PUT", "/api/settings/twilio", {
      v: 1,
      accountSid: SIM_ACCOUNT_SID,
      authToken: SIM_AUTH_TOKEN,
    });
    await edge.ok("PUT", "/api/settings/email", {
      v: 1,
      provider: "smtp",
      from: "pbx@example.test",
      smtp: { host: "127.0.0.1", port: smtp.port, secure: false },
    });
    await opts.beforeDid?.(edge);
    const device = await edge.createDevice("Front desk", "101");
    const did = await edge.ok<{ id: string; e164: string }>("POST", "/api/dids", {
      e164: opts.did,
      label: "Main line",
      defaultTargets: { v: 1, deviceIds: [device.id] },
    });
    const hooks = `${edge.url}/api/webhooks/twilio`;
    sim.rest.state.addIncomingNumber({
      phoneNumber: opts.did,
      voiceUrl: `${hooks}/voice`,
      statusCallback: `${hooks}/call-status`,
      smsUrl: `${hooks}/sms`,
    });
    return { sim, edge, smtp, device, did, hooks, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Every CDR the admin sees (newest first). */
export async function allCdrs(edge: SystemEdge): Promise<CdrJson[]> {
  return (await edge.ok<{ items: CdrJson[] }>("GET", "/api/cdrs?limit=100")).items;
}

/** The CDRs of one Twilio call. */
export async function cdrsOfCall(edge: SystemEdge, callSid: string): Promise<CdrJson[]> {
  return (await allCdrs(edge)).filter((c) => c.twilioCallSid === callSid);
}

/** Waits for the call's CDR to be ended, then returns it. */
export function endedCdr(edge: SystemEdge, callSid: string, timeoutMs = 20_000): Promise<CdrJson> {
  return until(`the ended CDR of ${callSid}`, timeoutMs, async () => {
    const [c] = await cdrsOfCall(edge, callSid);
    return c?.status === "ended" ? c : undefined;
  });
}

/**
 * The Twilio SID stored on a message row, read from the edge's database file (the API does not show
 * it): what lets the edge match Twilio's status callbacks and never send the message again.
 */
export async function storedMessageSid(edge: SystemEdge, messageId: string): Promise<string | null> {
  const db = createClient({ url: `file:${join(edge.dataDir, "gosip.db")}` });
  try {
    const r = await db.execute({
      sql: "SELECT twilio_message_sid FROM messages WHERE id = ?",
      args: [messageId],
    });
    const v = r.rows[0]?.twilio_message_sid;
    return typeof v === "string" ? v : null;
  } finally {
    db.close();
  }
}
