// G.711 µ-law (PCMU, RTP payload type 0) and A-law (PCMA, type 8) between 16-bit linear PCM and one byte per
// sample, as ITU-T G.711 defines them. Used to turn recorded RTP into WAV and by the test RTP peers.

const ULAW_BIAS = 0x84;
const ULAW_CLIP = 32635;

/** One 16-bit linear sample to µ-law. */
export function linearToUlaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > ULAW_CLIP) s = ULAW_CLIP;
  s += ULAW_BIAS;
  // The segment is the position of the highest set bit above bit 7 (bias keeps bit 7 set at least).
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function ulawToLinearSlow(byte: number): number {
  const u = ~byte & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
  return u & 0x80 ? -magnitude : magnitude;
}

/** One 16-bit linear sample to A-law. */
export function linearToAlaw(sample: number): number {
  // A-law works on 13 significant bits; the even bits are inverted on the wire (the 0x55 mask).
  let v = Math.max(-32768, Math.min(32767, Math.round(sample))) >> 3;
  let mask: number;
  if (v >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    v = -v - 1;
  }
  let segment = 0;
  while (segment < 8 && v >= 0x20 << segment) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  const mantissa = segment < 2 ? (v >> 1) & 0x0f : (v >> segment) & 0x0f;
  return ((segment << 4) | mantissa) ^ mask;
}

function alawToLinearSlow(byte: number): number {
  const a = byte ^ 0x55;
  const segment = (a & 0x70) >> 4;
  let t = (a & 0x0f) << 4;
  if (segment === 0) t += 8;
  else t = (t + 0x108) << (segment - 1);
  return a & 0x80 ? t : -t;
}

const ULAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => ulawToLinearSlow(i));
const ALAW_TABLE = Int16Array.from({ length: 256 }, (_, i) => alawToLinearSlow(i));

export function ulawToLinear(byte: number): number {
  return ULAW_TABLE[byte & 0xff] ?? 0;
}

export function alawToLinear(byte: number): number {
  return ALAW_TABLE[byte & 0xff] ?? 0;
}

export type G711Codec = "PCMU" | "PCMA";

/** The static RTP payload type of a G.711 codec (RFC 3551). */
export function payloadTypeOf(codec: G711Codec): number {
  return codec === "PCMU" ? 0 : 8;
}

/** The G.711 codec of a static RTP payload type, if it is one. */
export function codecOfPayloadType(pt: number): G711Codec | undefined {
  return pt === 0 ? "PCMU" : pt === 8 ? "PCMA" : undefined;
}

export function encodeG711(codec: G711Codec, pcm: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(pcm.length);
  const enc = codec === "PCMU" ? linearToUlaw : linearToAlaw;
  for (let i = 0; i < pcm.length; i++) out[i] = enc(pcm[i] ?? 0);
  return out;
}

export function decodeG711(codec: G711Codec, payload: Uint8Array): Int16Array {
  const table = codec === "PCMU" ? ULAW_TABLE : ALAW_TABLE;
  const out = new Int16Array(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = table[payload[i] ?? 0] ?? 0;
  return out;
}
