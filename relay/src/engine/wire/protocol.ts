// drachtio wire protocol messages: splitting an application's frame into its tokens and raw SIP, and building
// the frames the server sends (replies, delivered SIP messages). Formats follow drachtio-server so that
// drachtio-srf's agent (lib/drachtio-agent.js) reads them unchanged; see the notes in each builder.
import { randomBytes } from "node:crypto";

const CR = 0x0d;

/** A frame received from an application: `<msgId>|<type>|<tokens...>` optionally followed by CRLF + raw SIP. */
export interface AppMessage {
  msgId: string;
  type: string;
  /** Tokens after the type. */
  args: string[];
  /** Raw SIP text following the leader line, if any. */
  sip?: Buffer;
}

/** Split a frame payload; undefined when it has no `<msgId>|<type>` leader. */
export function parseAppMessage(payload: Buffer): AppMessage | undefined {
  const cr = payload.indexOf(CR);
  const leader = payload.toString("utf8", 0, cr === -1 ? payload.length : cr);
  const tokens = leader.split("|");
  const msgId = tokens[0];
  const type = tokens[1];
  if (!msgId || !type) return undefined;
  const msg: AppMessage = { msgId, type, args: tokens.slice(2) };
  if (cr !== -1) msg.sip = payload.subarray(cr + 2);
  return msg;
}

// Identifiers (message ids, transaction ids): unique per process, cheap to make. drachtio uses UUIDs; the client
// only uses them as opaque map keys.
const idPrefix = randomBytes(4).toString("hex");
let idCounter = 0;

/** A new opaque identifier, unique within this engine process. */
export function newId(): string {
  idCounter++;
  return `${idPrefix}-${idCounter.toString(36)}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

let cachedSecond = -1;
let cachedPrefix = "";

/** Time of day as drachtio-server writes it: `HH:MM:SS.uuuuuu` (UTC). The HH:MM:SS part is cached per second. */
export function wireTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    cachedSecond = second;
    cachedPrefix = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.`;
  }
  const us = Math.floor((ms - second * 1000) * 1000);
  return cachedPrefix + String(us).padStart(6, "0");
}

/** Where a SIP message came from or went to, as carried in the meta tokens. */
export interface WireMeta {
  source: "network" | "application";
  bytes: number;
  protocol: string;
  address: string;
  port: number;
  time: number;
}

/** Meta of `bytes` of SIP that went between us and `peer` (a network peer's address), at `time` (ms). */
export function metaFor(
  source: WireMeta["source"],
  bytes: number,
  peer: { transport: string; address: string; port: number },
  time = Date.now(),
): WireMeta {
  return { source, bytes, protocol: peer.transport, address: peer.address, port: peer.port, time };
}

/** `source|bytes|protocol|address|port|time` (drachtio SipMsgData_t::toMessageFormat). */
export function formatMeta(m: WireMeta): string {
  return `${m.source}|${m.bytes}|${m.protocol}|${m.address}|${m.port}|${wireTime(m.time)}`;
}

/** Leader of a plain API reply: `<uuid>|response|<msgId>|OK|...` or `...|NO|<reason>`. */
export function replyLeader(msgId: string, ok: boolean, extra?: string): string {
  const base = `${newId()}|response|${msgId}|${ok ? "OK" : "NO"}`;
  return extra === undefined ? base : `${base}|${extra}`;
}

/** Leader of a refused API request: `<uuid>|response|<msgId>|NOK|<reason>` (drachtio route_api_response). */
export function failLeader(msgId: string, reason: string): string {
  return `${newId()}|response|${msgId}|NOK|${reason}`;
}

/**
 * Leader of the reply to a `sip` message the engine sent on the app's behalf; the raw SIP that went on the wire
 * follows. Requests: `...|OK|<meta>|<txnId>|Msg sent:|`; responses add the dialog id:
 * `...|OK|<meta>|<txnId>|<dialogId>||Msg sent:|` (srf reads token 10 = txnId and 11 = dialogId).
 */
export function sentLeader(msgId: string, meta: WireMeta, txnId: string, dialogId?: string): string {
  const head = `${newId()}|response|${msgId}|OK|${formatMeta(meta)}|${txnId}|`;
  return dialogId === undefined ? `${head}Msg sent:|\r\n` : `${head}${dialogId}||Msg sent:|\r\n`;
}

/**
 * Leader of a SIP message delivered to an app: `<uuid>|sip|<meta>|<txnId>|<dialogId>|` plus, for new requests,
 * the local address/port it arrived on (srf's req.receivedOn).
 */
export function sipLeader(meta: WireMeta, txnId: string, dialogId: string, receivedOn?: string): string {
  const head = `${newId()}|sip|${formatMeta(meta)}|${txnId}|${dialogId}|`;
  return receivedOn === undefined ? `${head}\r\n` : `${head}${receivedOn}|\r\n`;
}
