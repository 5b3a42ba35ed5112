// A test RTP endpoint playing a phone's media side: it offers/answers SDP for itself, sends G.711 tones and
// RFC 4733 (2833) DTMF events paced like a phone (20 ms packets, real sequence numbers, timestamps, SSRC and
// marker), and reports what it received decoded: packets, PCM, dominant frequency, duration, loss, digits.
// With `behindNat` it advertises one port in its SDP but sends and receives on another, the way a phone
// behind NAT looks from outside; only symmetric RTP gets audio back to it.
import { randomInt } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import {
  codecOfPayloadType,
  decodeG711,
  encodeG711,
  type G711Codec,
  payloadTypeOf,
} from "../pbx/media/g711.ts";
import { dominantFrequency, SAMPLE_RATE, tone } from "./rtp-audio.ts";

export const DTMF_PAYLOAD_TYPE = 101;
const PACKET_MS = 20;
const SAMPLES_PER_PACKET = (SAMPLE_RATE * PACKET_MS) / 1000;
const DTMF_EVENTS = "0123456789*#ABCD";

export interface MediaTarget {
  address: string;
  port: number;
}

export interface RtpPacket {
  payloadType: number;
  marker: boolean;
  seq: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
  /** ms since the peer opened. */
  at: number;
  from: MediaTarget;
}

export interface ReceivedMedia {
  packets: RtpPacket[];
  /** Audio packets (G.711) only. */
  audioPackets: number;
  /** Decoded audio, placed by RTP timestamp per SSRC run (gaps filled with silence). */
  pcm: Int16Array;
  frequency: number | undefined;
  /** Milliseconds of audio received (audio packets × their samples). */
  durationMs: number;
  /** Audio packets missing from the sequence number runs. */
  lost: number;
  /** DTMF digits received as RFC 4733 events, in order, one per event. */
  dtmf: string;
  /** Distinct source addresses packets came from ("host:port"). */
  sources: string[];
}

export interface SdpOptions {
  codec?: G711Codec;
  /** Offer both G.711 codecs, `codec` first. */
  bothCodecs?: boolean;
  dtmf?: boolean;
  direction?: "sendrecv" | "sendonly" | "recvonly" | "inactive";
}

/** The audio destination an SDP names (first m=audio port, its or the session's c= address). */
export function sdpMediaTarget(sdp: string): MediaTarget {
  const port = /^m=audio (\d+)/m.exec(sdp)?.[1];
  const address = /^c=IN IP[46] ([^\s/]+)/m.exec(sdp)?.[1];
  if (!port || !address) throw new Error(`no audio target in SDP:\n${sdp}`);
  return { address, port: Number(port) };
}

/** The direction attribute of an SDP's audio (sendrecv when absent). */
export function sdpDirection(sdp: string): string {
  return /^a=(sendrecv|sendonly|recvonly|inactive)\r?$/m.exec(sdp)?.[1] ?? "sendrecv";
}

function parseRtp(buf: Buffer): Omit<RtpPacket, "at" | "from"> | undefined {
  if (buf.length < 12 || buf[0] === undefined || buf[0] >> 6 !== 2) return undefined;
  const b0 = buf[0];
  const b1 = buf[1] ?? 0;
  let offset = 12 + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (buf.length < offset + 4) return undefined;
    offset += 4 + buf.readUInt16BE(offset + 2) * 4;
  }
  let end = buf.length;
  if (b0 & 0x20) end -= buf[buf.length - 1] ?? 0;
  if (offset > end) return undefined;
  const payloadType = b1 & 0x7f;
  // RTCP multiplexed on the RTP port (payload types 72-76 with the marker bit) is not media.
  if (payloadType >= 72 && payloadType <= 76) return undefined;
  return {
    payloadType,
    marker: (b1 & 0x80) !== 0,
    seq: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    payload: buf.subarray(offset, end),
  };
}

function bindUdp(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket(address.includes(":") ? "udp6" : "udp4");
    s.once("error", reject);
    s.bind(0, address, () => {
      s.off("error", reject);
      resolve(s);
    });
  });
}

export class RtpPeer {
  readonly address: string;
  /** The port this peer's SDP names. */
  readonly port: number;
  /** The port it really sends and receives media on (differs from `port` behind NAT). */
  readonly mediaPort: number;
  codec: G711Codec = "PCMU";
  private readonly packets: RtpPacket[] = [];
  /** Packets that reached the advertised port while media runs elsewhere (behind NAT). */
  readonly strayPackets: RtpPacket[] = [];
  private readonly opened = performance.now();
  private readonly ssrc = randomInt(1, 0xffffffff);
  private seq = randomInt(0, 0xffff);
  private readonly ts0 = randomInt(0, 0x7fffffff);
  private lastTs: number | undefined;
  private sampleClock = 0;
  private sessionVersion = 1;
  private readonly sessionId = randomInt(1, 0x7fffffff);

  private constructor(
    private readonly media: Socket,
    private readonly advertised: Socket | undefined,
  ) {
    const a = media.address();
    this.address = a.address;
    this.mediaPort = a.port;
    this.port = advertised ? advertised.address().port : a.port;
    media.on("message", (msg, rinfo) => this.onPacket(this.packets, msg, rinfo));
    advertised?.on("message", (msg, rinfo) => this.onPacket(this.strayPackets, msg, rinfo));
  }

  static async open(opts: { address?: string; behindNat?: boolean } = {}): Promise<RtpPeer> {
    const address = opts.address ?? "127.0.0.1";
    const media = await bindUdp(address);
    const advertised = opts.behindNat ? await bindUdp(address) : undefined;
    return new RtpPeer(media, advertised);
  }

  private onPacket(into: RtpPacket[], msg: Buffer, rinfo: { address: string; port: number }): void {
    const p = parseRtp(msg);
    if (!p) return;
    into.push({ ...p, payload: Buffer.from(p.payload), at: performance.now() - this.opened, from: rinfo });
  }

  /** An SDP offer or answer for this peer (each call bumps the session version, as re-offers must). */
  sdp(opts: SdpOptions = {}): string {
    const codec = opts.codec ?? this.codec;
    this.codec = codec;
    const codecs: G711Codec[] = opts.bothCodecs ? [codec, codec === "PCMU" ? "PCMA" : "PCMU"] : [codec];
    const pts = codecs.map(payloadTypeOf);
    if (opts.dtmf ?? true) pts.push(DTMF_PAYLOAD_TYPE);
    const ip = this.address.includes(":") ? "IP6" : "IP4";
    const lines = [
      "v=0",
      `o=- ${this.sessionId} ${this.sessionVersion++} IN ${ip} ${this.address}`,
      "s=-",
      `c=IN ${ip} ${this.address}`,
      "t=0 0",
      `m=audio ${this.port} RTP/AVP ${pts.join(" ")}`,
      ...codecs.map((c) => `a=rtpmap:${payloadTypeOf(c)} ${c}/8000`),
    ];
    if (opts.dtmf ?? true)
      lines.push(`a=rtpmap:${DTMF_PAYLOAD_TYPE} telephone-event/8000`, `a=fmtp:${DTMF_PAYLOAD_TYPE} 0-16`);
    lines.push("a=ptime:20", `a=${opts.direction ?? "sendrecv"}`);
    return `${lines.join("\r\n")}\r\n`;
  }

  private header(pt: number, marker: boolean, timestamp: number): Buffer {
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(this.seq, 2);
    h.writeUInt32BE(timestamp >>> 0, 4);
    h.writeUInt32BE(this.ssrc, 8);
    this.seq = (this.seq + 1) & 0xffff;
    return h;
  }

  private send(buf: Buffer, to: MediaTarget): void {
    this.media.send(buf, to.port, to.address);
  }

  /** The RTP timestamp for a new talkspurt: follows wall-clock time since the stream's first packet. */
  private spurtTimestamp(): number {
    const elapsed = Math.round(((performance.now() - this.opened) * SAMPLE_RATE) / 1000);
    const next =
      this.lastTs === undefined ? this.ts0 : Math.max(this.lastTs + SAMPLES_PER_PACKET, this.ts0 + elapsed);
    return next >>> 0;
  }

  /** Paces `count` packets 20 ms apart (against the clock, so timer lateness does not add up). */
  private async paced(count: number, each: (i: number) => void): Promise<void> {
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const due = start + i * PACKET_MS;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      each(i);
    }
  }

  /** Sends a tone as G.711 RTP in 20 ms packets; resolves when the last packet is sent. Returns packets sent. */
  async sendTone(
    hz: number,
    ms: number,
    to: MediaTarget,
    opts: { amplitude?: number } = {},
  ): Promise<number> {
    const count = Math.round(ms / PACKET_MS);
    const pt = payloadTypeOf(this.codec);
    let ts = this.spurtTimestamp();
    await this.paced(count, (i) => {
      const pcm = tone(hz, SAMPLES_PER_PACKET, opts.amplitude ?? 8000, this.sampleClock);
      this.sampleClock += SAMPLES_PER_PACKET;
      this.send(Buffer.concat([this.header(pt, i === 0, ts), encodeG711(this.codec, pcm)]), to);
      this.lastTs = ts;
      ts = (ts + SAMPLES_PER_PACKET) >>> 0;
    });
    return count;
  }

  /** Sends one digit as RFC 4733 telephone-events (start with marker, updates, three end packets). */
  async sendDtmf(digit: string, to: MediaTarget, opts: { durationMs?: number } = {}): Promise<void> {
    const event = DTMF_EVENTS.indexOf(digit.toUpperCase());
    if (event < 0 || digit.length !== 1) throw new Error(`not a DTMF digit: ${digit}`);
    const steps = Math.max(1, Math.round((opts.durationMs ?? 100) / PACKET_MS));
    const ts = this.spurtTimestamp();
    const payload = (end: boolean, duration: number): Buffer => {
      const b = Buffer.alloc(4);
      b[0] = event;
      b[1] = (end ? 0x80 : 0) | 10; // volume -10 dBm0
      b.writeUInt16BE(Math.min(0xffff, duration), 2);
      return b;
    };
    // All packets of one event carry the event's start timestamp; duration grows, the end is sent 3 times.
    await this.paced(steps + 3, (i) => {
      const end = i >= steps;
      const duration = Math.min(i + 1, steps) * SAMPLES_PER_PACKET;
      this.send(Buffer.concat([this.header(DTMF_PAYLOAD_TYPE, i === 0, ts), payload(end, duration)]), to);
    });
    this.lastTs = (ts + steps * SAMPLES_PER_PACKET) >>> 0;
  }

  /** What arrived so far on the media port. */
  received(): ReceivedMedia {
    const packets = [...this.packets];
    const audio = packets.filter((p) => codecOfPayloadType(p.payloadType) !== undefined);
    // Loss per SSRC over the extended sequence numbers actually seen.
    let lost = 0;
    const bySsrc = new Map<number, RtpPacket[]>();
    for (const p of audio) bySsrc.set(p.ssrc, [...(bySsrc.get(p.ssrc) ?? []), p]);
    const chunks: Int16Array[] = [];
    for (const run of bySsrc.values()) {
      let ext = 0;
      let prev: number | undefined;
      const seqs = new Set<number>();
      for (const p of run) {
        if (prev !== undefined) {
          const d = (p.seq - prev + 0x10000) & 0xffff;
          ext += d < 0x8000 ? d : d - 0x10000;
        }
        prev = p.seq;
        seqs.add(ext);
      }
      const sorted = [...seqs].sort((a, b) => a - b);
      const first = sorted[0] ?? 0;
      const last = sorted[sorted.length - 1] ?? 0;
      lost += last - first + 1 - sorted.length;
      // Place by timestamp relative to the run's first packet.
      const base = run[0]?.timestamp ?? 0;
      let span = 0;
      const placed = run.map((p) => {
        const off = (p.timestamp - base) >>> 0;
        const codec = codecOfPayloadType(p.payloadType) ?? "PCMU";
        const pcm = decodeG711(codec, p.payload);
        span = Math.max(span, off + pcm.length);
        return { off, pcm };
      });
      // A timestamp far off (a new stream reusing the SSRC) would blow up the buffer: cap at 10 minutes.
      const out = new Int16Array(Math.min(span, SAMPLE_RATE * 600));
      for (const { off, pcm } of placed) if (off + pcm.length <= out.length) out.set(pcm, off);
      chunks.push(out);
    }
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const pcm = new Int16Array(total);
    let at = 0;
    for (const c of chunks) {
      pcm.set(c, at);
      at += c.length;
    }
    const samples = audio.reduce((n, p) => n + p.payload.length, 0);
    return {
      packets,
      audioPackets: audio.length,
      pcm,
      frequency: dominantFrequency(pcm),
      durationMs: (samples * 1000) / SAMPLE_RATE,
      lost,
      dtmf: this.digits(packets),
      sources: [...new Set(packets.map((p) => `${p.from.address}:${p.from.port}`))],
    };
  }

  private digits(packets: RtpPacket[]): string {
    const seen = new Set<string>();
    let out = "";
    for (const p of packets) {
      if (p.payloadType !== DTMF_PAYLOAD_TYPE || p.payload.length < 4) continue;
      const key = `${p.ssrc}:${p.timestamp}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out += DTMF_EVENTS[p.payload[0] ?? 0] ?? "?";
    }
    return out;
  }

  /** Forgets what was received (to measure one phase of a call on its own). */
  reset(): void {
    this.packets.length = 0;
    this.strayPackets.length = 0;
  }

  close(): void {
    this.media.close();
    this.advertised?.close();
  }
}
