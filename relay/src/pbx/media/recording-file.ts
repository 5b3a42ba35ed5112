// Turns rtpengine's pcap recording of a call into a standard WAV file (8 kHz, 16-bit, stereo: left = caller,
// right = callee, or mono with both mixed), with its SHA-256 and duration.
//
// What rtpengine 10.5 writes with --recording-method=pcap (daemon/recording.c):
//  - on `start recording` (or `record call` in offer/answer): <dir>/pcaps/<call-id>-<16 hex>.pcap, where the
//    call-id is URI-escaped (glib g_uri_escape_string) and the 16 hex digits are random per recording, so a
//    call recorded twice has two files; and a metadata file <dir>/tmp/rtpengine-meta-<same>.tmp.
//  - every packet rtpengine receives on the call's ports, both directions, as it receives it: libpcap format,
//    link type RAW (no Ethernet header; --recording-format=eth would add one), a synthetic IPv4/IPv6 + UDP
//    header whose source is the sender and whose destination is rtpengine's own port facing that sender.
//    The packets are the RTP as sent by the phone (G.711 payload, telephone-events, and any RTCP).
//  - the pcap is written through stdio buffers and only flushed and closed when the recording ends:
//    `stop recording`, or `delete` / timeout of the call. At that same moment the metadata file (first line:
//    the pcap's path, then the SDPs seen while recording, start/end times, the `metadata` string) moves to
//    <dir>/metadata/rtpengine-meta-<call-id>-<16 hex>.txt, before rtpengine answers the command. So once stopRecording (or
//    delete) has returned, or that .txt exists, the pcap is complete.
import { createHash } from "node:crypto";
import { access, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { codecOfPayloadType, decodeG711 } from "./g711.ts";

const SAMPLE_RATE = 8000;
/** A sender's RTP clock further than this from the capture clock is re-anchored to the capture clock. */
const MAX_CLOCK_SKEW_SAMPLES = SAMPLE_RATE;

export interface RecordedPacket {
  /** Capture time, seconds (with fraction). */
  time: number;
  srcAddress: string;
  srcPort: number;
  dstPort: number;
  payloadType: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

/** The RTP packets of a pcap written by rtpengine (RAW, Ethernet, IPv4 or IPv6 link types). */
export function parsePcap(buf: Buffer): RecordedPacket[] {
  if (buf.length < 24) throw new Error("not a pcap file: too short");
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nanos: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nanos = magicLE === 0xa1b23c4d;
  } else {
    const magicBE = buf.readUInt32BE(0);
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) throw new Error("not a pcap file: bad magic");
    le = false;
    nanos = magicBE === 0xa1b23c4d;
  }
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  // 101 = LINKTYPE_RAW, 12/14 = DLT_RAW on some systems, 1 = Ethernet, 228/229 = bare IPv4/IPv6.
  const linkHeader = linkType === 1 ? 14 : [101, 12, 14, 228, 229].includes(linkType) ? 0 : -1;
  if (linkHeader < 0) throw new Error(`unsupported pcap link type ${linkType}`);
  const out: RecordedPacket[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const start = off + 16;
    off = start + incl;
    if (off > buf.length) break; // a record cut short (file still being written): ignore the tail
    const pkt = parseIpUdp(buf.subarray(start + linkHeader, start + incl));
    if (!pkt) continue;
    const rtp = parseRtpPayload(pkt.udp);
    if (!rtp) continue;
    out.push({
      time: sec + frac / (nanos ? 1e9 : 1e6),
      srcAddress: pkt.src,
      srcPort: pkt.srcPort,
      dstPort: pkt.dstPort,
      ...rtp,
    });
  }
  return out;
}

function parseIpUdp(p: Buffer): { src: string; srcPort: number; dstPort: number; udp: Buffer } | undefined {
  if (p.length < 1) return undefined;
  const version = (p[0] ?? 0) >> 4;
  let udpAt: number;
  let src: string;
  if (version === 4) {
    const ihl = ((p[0] ?? 0) & 0x0f) * 4;
    if (p[9] !== 17 || p.length < ihl + 8) return undefined;
    udpAt = ihl;
    src = `${p[12]}.${p[13]}.${p[14]}.${p[15]}`;
  } else if (version === 6) {
    if (p[6] !== 17 || p.length < 48) return undefined;
    udpAt = 40;
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(p.readUInt16BE(8 + i * 2).toString(16));
    src = words.join(":");
  } else return undefined;
  return {
    src,
    srcPort: p.readUInt16BE(udpAt),
    dstPort: p.readUInt16BE(udpAt + 2),
    udp: p.subarray(udpAt + 8, Math.min(p.length, udpAt + p.readUInt16BE(udpAt + 4))),
  };
}

function parseRtpPayload(
  b: Buffer,
): { payloadType: number; seq: number; timestamp: number; ssrc: number; payload: Buffer } | undefined {
  if (b.length < 12 || (b[0] ?? 0) >> 6 !== 2) return undefined;
  const b0 = b[0] ?? 0;
  const payloadType = (b[1] ?? 0) & 0x7f;
  if (payloadType >= 72 && payloadType <= 76) return undefined; // RTCP
  let at = 12 + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (b.length < at + 4) return undefined;
    at += 4 + b.readUInt16BE(at + 2) * 4;
  }
  let end = b.length;
  if (b0 & 0x20) end -= b[b.length - 1] ?? 0;
  if (at > end) return undefined;
  return {
    payloadType,
    seq: b.readUInt16BE(2),
    timestamp: b.readUInt32BE(4),
    ssrc: b.readUInt32BE(8),
    payload: b.subarray(at, end),
  };
}

export interface WavOptions {
  /**
   * rtpengine's local port(s) facing the caller (LegStats.localPort of the caller's tag): packets sent to
   * them are the caller's. Without it, the party whose audio arrives first counts as the caller.
   */
  callerPorts?: number[];
  /** Both parties mixed into one channel instead of stereo. */
  mono?: boolean;
}

export interface WavResult {
  wavPath: string;
  sha256: string;
  bytes: number;
  durationMs: number;
  sampleRate: number;
  channels: 1 | 2;
  /** Audio packets per party that went into the file. */
  packets: { caller: number; callee: number };
}

/** One party's audio on a common timeline (samples from the recording's first packet). */
function placeParty(packets: RecordedPacket[], t0: number): Int16Array {
  const pieces: { at: number; pcm: Int16Array }[] = [];
  let end = 0;
  const anchors = new Map<number, { at: number; ts: number }>();
  for (const p of packets) {
    const codec = codecOfPayloadType(p.payloadType);
    if (!codec) continue; // DTMF events, comfort noise: silence in the file
    const captured = Math.round((p.time - t0) * SAMPLE_RATE);
    let a = anchors.get(p.ssrc);
    let at = a ? a.at + ((p.timestamp - a.ts) | 0) : captured;
    // The RTP clock places packets exactly (jitter does not smear audio); a sender that jumps its
    // timestamps (or a wrong guess) is re-anchored to when the packet really arrived.
    if (!a || Math.abs(at - captured) > MAX_CLOCK_SKEW_SAMPLES) {
      a = { at: captured, ts: p.timestamp };
      anchors.set(p.ssrc, a);
      at = captured;
    }
    if (at < 0) continue;
    const pcm = decodeG711(codec, p.payload);
    pieces.push({ at, pcm });
    end = Math.max(end, at + pcm.length);
  }
  const out = new Int16Array(end);
  for (const { at, pcm } of pieces) out.set(pcm, at);
  return out;
}

function wavBytes(channels: Int16Array[], length: number): Buffer {
  const n = channels.length;
  const dataBytes = length * n * 2;
  const b = Buffer.alloc(44 + dataBytes);
  b.write("RIFF", 0, "ascii");
  b.writeUInt32LE(36 + dataBytes, 4);
  b.write("WAVE", 8, "ascii");
  b.write("fmt ", 12, "ascii");
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(n, 22);
  b.writeUInt32LE(SAMPLE_RATE, 24);
  b.writeUInt32LE(SAMPLE_RATE * n * 2, 28);
  b.writeUInt16LE(n * 2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36, "ascii");
  b.writeUInt32LE(dataBytes, 40);
  let o = 44;
  for (let i = 0; i < length; i++) {
    for (const ch of channels) {
      b.writeInt16LE(ch[i] ?? 0, o);
      o += 2;
    }
  }
  return b;
}

/** Converts a finished rtpengine pcap into a WAV file; see the module header for when a pcap is finished. */
export async function pcapToWav(
  pcapPath: string,
  wavPath: string,
  opts: WavOptions = {},
): Promise<WavResult> {
  const packets = parsePcap(await readFile(pcapPath));
  const audio = packets.filter((p) => codecOfPayloadType(p.payloadType) !== undefined);
  const first = audio[0];
  const callerPorts = new Set(opts.callerPorts ?? (first ? [first.dstPort] : []));
  const caller = packets.filter((p) => callerPorts.has(p.dstPort));
  const callee = packets.filter((p) => !callerPorts.has(p.dstPort));
  const t0 = packets[0]?.time ?? 0;
  const left = placeParty(caller, t0);
  const right = placeParty(callee, t0);
  const length = Math.max(left.length, right.length);
  let channels: Int16Array[];
  if (opts.mono) {
    const mix = new Int16Array(length);
    for (let i = 0; i < length; i++)
      mix[i] = Math.max(-32768, Math.min(32767, (left[i] ?? 0) + (right[i] ?? 0)));
    channels = [mix];
  } else channels = [left, right];
  const bytes = wavBytes(channels, length);
  await writeFile(wavPath, bytes);
  const count = (ps: RecordedPacket[]): number => ps.filter((p) => codecOfPayloadType(p.payloadType)).length;
  return {
    wavPath,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes: bytes.length,
    durationMs: (length * 1000) / SAMPLE_RATE,
    sampleRate: SAMPLE_RATE,
    channels: opts.mono ? 1 : 2,
    packets: { caller: count(caller), callee: count(callee) },
  };
}

/** Reads a 16-bit PCM WAV back: its sample rate and one Int16Array per channel. */
export function readWav(buf: Buffer): { sampleRate: number; channels: Int16Array[] } {
  if (buf.toString("ascii", 0, 4) !== "RIFF" || buf.toString("ascii", 8, 12) !== "WAVE") {
    throw new Error("not a WAV file");
  }
  let off = 12;
  let sampleRate = 0;
  let n = 0;
  let bits = 0;
  while (off + 8 <= buf.length) {
    const id = buf.toString("ascii", off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === "fmt ") {
      if (buf.readUInt16LE(body) !== 1) throw new Error("WAV is not PCM");
      n = buf.readUInt16LE(body + 2);
      sampleRate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
    } else if (id === "data") {
      if (bits !== 16 || n < 1) throw new Error("WAV is not 16-bit PCM");
      const frames = Math.floor(size / (2 * n));
      const channels = Array.from({ length: n }, () => new Int16Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < n; c++) {
          const ch = channels[c];
          if (ch) ch[i] = buf.readInt16LE(body + (i * n + c) * 2);
        }
      }
      return { sampleRate, channels };
    }
    off = body + size + (size & 1);
  }
  throw new Error("WAV has no data chunk");
}

/** The metadata file rtpengine moves into place when the recording in `pcapPath` has ended. */
export function recordingMetadataPath(pcapPath: string): string {
  return join(dirname(dirname(pcapPath)), "metadata", `rtpengine-meta-${basename(pcapPath, ".pcap")}.txt`);
}

/** True once rtpengine has finished (flushed and closed) the pcap. */
export async function recordingComplete(pcapPath: string): Promise<boolean> {
  try {
    await access(recordingMetadataPath(pcapPath));
    return true;
  } catch {
    return false;
  }
}

/** Deletes rtpengine's files of one finished recording (the pcap and its metadata), once the WAV is safe. */
export async function removeRecordingFiles(pcapPath: string): Promise<void> {
  await rm(pcapPath, { force: true });
  await rm(recordingMetadataPath(pcapPath), { force: true });
}
