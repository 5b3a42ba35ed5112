// Micro-benchmark of the SIP parser and serializer (a script, not a test):
//   npx tsx relay/src/engine/sip/parse.bench.ts
// Prints operations per CPU-second (and per wall-clock second; they differ when other processes load the
// machine) for a typical REGISTER (with and without Authorization), an INVITE with SDP,
// and the serializer.

import { parseMessage, serializeMessage } from "./message.ts";

const REGISTER = Buffer.from(
  [
    "REGISTER sip:192.168.1.10 SIP/2.0",
    "Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK1827364523;rport",
    "From: <sip:201@192.168.1.10>;tag=1928301774",
    "To: <sip:201@192.168.1.10>",
    "Call-ID: a84b4c76e66710@192.168.1.50",
    "CSeq: 314159 REGISTER",
    'Contact: <sip:201@192.168.1.50:5060;transport=udp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";expires=3600',
    "Max-Forwards: 70",
    "User-Agent: Yealink SIP-T46S 66.86.0.15",
    "Expires: 3600",
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO, SUBSCRIBE, UPDATE, MESSAGE",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n"),
);

const REGISTER_AUTH = Buffer.from(
  REGISTER.toString().replace(
    "Content-Length: 0",
    'Authorization: Digest username="201", realm="gosip", nonce="5f0c1d2e3f4a5b6c7d8e9f00", uri="sip:192.168.1.10", response="0a4f113b2b3c4d5e6f708192a3b4c5d6", algorithm=MD5\r\nContent-Length: 0',
  ),
);

const SDP = [
  "v=0",
  "o=- 20518 0 IN IP4 192.168.1.50",
  "s=SDP data",
  "c=IN IP4 192.168.1.50",
  "t=0 0",
  "m=audio 11796 RTP/AVP 0 8 18 101",
  "a=rtpmap:0 PCMU/8000",
  "a=rtpmap:8 PCMA/8000",
  "a=rtpmap:18 G729/8000",
  "a=rtpmap:101 telephone-event/8000",
  "a=fmtp:101 0-15",
  "a=ptime:20",
  "a=sendrecv",
  "",
].join("\r\n");

const INVITE = Buffer.from(
  [
    "INVITE sip:+15551234567@192.168.1.10 SIP/2.0",
    "Via: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    "To: <sip:+15551234567@192.168.1.10>",
    'From: "Office 201" <sip:201@192.168.1.10>;tag=1928301774',
    "Call-ID: a84b4c76e66710@192.168.1.50",
    "CSeq: 314159 INVITE",
    "Contact: <sip:201@192.168.1.50:5060>",
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO, SUBSCRIBE, UPDATE",
    "Supported: replaces, timer",
    "User-Agent: Yealink SIP-T46S 66.86.0.15",
    "Content-Type: application/sdp",
    `Content-Length: ${Buffer.byteLength(SDP)}`,
    "",
    SDP,
  ].join("\r\n"),
);

/** CPU time of this process in microseconds: robust against other processes competing for the cores. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function bench(name: string, fn: () => void, ms = 1500): number {
  for (let i = 0; i < 20_000; i++) fn(); // warm-up
  let n = 0;
  const wallStart = Date.now();
  const cpuStart = cpuMicros();
  while (Date.now() - wallStart < ms) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
  }
  const perCpuSec = (n * 1e6) / (cpuMicros() - cpuStart);
  const perWallSec = (n * 1e3) / (Date.now() - wallStart);
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US").padStart(11);
  console.log(`${name.padEnd(38)} ${fmt(perCpuSec)} ops/CPU-s ${fmt(perWallSec)} ops/wall-s`);
  return perCpuSec;
}

function mustParse(buf: Buffer) {
  const r = parseMessage(buf);
  if (!r.ok) throw new Error(`benchmark message does not parse: ${r.reason}`);
  return r.message;
}

const reg = mustParse(REGISTER);
const inv = mustParse(INVITE);
let sink = 0;
bench("parse REGISTER", () => {
  const r = parseMessage(REGISTER);
  if (r.ok) sink += r.message.headers.size;
});
bench("parse REGISTER + Authorization", () => {
  const r = parseMessage(REGISTER_AUTH);
  if (r.ok) sink += r.message.headers.size;
});
bench("parse INVITE (SDP body)", () => {
  const r = parseMessage(INVITE);
  if (r.ok) sink += r.message.body.length;
});
bench("serialize REGISTER", () => {
  sink += serializeMessage(reg).length;
});
bench("serialize INVITE", () => {
  sink += serializeMessage(inv).length;
});
bench("parse+serialize INVITE (round trip)", () => {
  const r = parseMessage(INVITE);
  if (r.ok) sink += serializeMessage(r.message).length;
});
if (sink === 0) console.log("unexpected: nothing parsed");
