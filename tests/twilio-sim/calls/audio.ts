/**
 * The audio a simulated caller leaves in a <Record>: a real 8 kHz mono 16-bit PCM WAV (what Twilio's
 * recordings are), either a steady tone or a speech-like signal (a few formant-like partials whose
 * loudness rises and falls at syllable rate), so what GoSIP stores can be checked for length and content.
 */

export const RECORDING_SAMPLE_RATE = 8000;

export interface SpokenAudio {
  /** The whole WAV file. */
  wav: Uint8Array;
  durationSeconds: number;
  /** The dominant frequency of the signal (for `tone`, the tone itself). */
  frequencyHz: number;
}

/** A 16-bit PCM mono WAV around `pcm`. */
export function wavFile(pcm: Int16Array, sampleRate = RECORDING_SAMPLE_RATE): Uint8Array {
  const data = pcm.length * 2;
  const buf = new ArrayBuffer(44 + data);
  const v = new DataView(buf);
  const ascii = (at: number, s: string): void => {
    for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
  };
  ascii(0, "RIFF");
  v.setUint32(4, 36 + data, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  ascii(36, "data");
  v.setUint32(40, data, true);
  for (let i = 0; i < pcm.length; i++) v.setInt16(44 + i * 2, pcm[i] ?? 0, true);
  return new Uint8Array(buf);
}

/** `seconds` of a steady sine at `hz`. */
export function toneRecording(seconds: number, hz = 440): SpokenAudio {
  const n = Math.round(seconds * RECORDING_SAMPLE_RATE);
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++)
    pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / RECORDING_SAMPLE_RATE));
  return { wav: wavFile(pcm), durationSeconds: seconds, frequencyHz: hz };
}

/**
 * `seconds` of a speech-like signal: a 150 Hz voice with partials near the first two formants, its
 * envelope pulsing at about 4 syllables a second with short gaps, like someone talking.
 */
export function speechLikeRecording(seconds: number): SpokenAudio {
  const n = Math.round(seconds * RECORDING_SAMPLE_RATE);
  const pcm = new Int16Array(n);
  const partials: [number, number][] = [
    [150, 0.5],
    [450, 1],
    [600, 0.6],
    [1200, 0.35],
  ];
  for (let i = 0; i < n; i++) {
    const t = i / RECORDING_SAMPLE_RATE;
    const syllable = Math.max(0, Math.sin(2 * Math.PI * 4 * t));
    let s = 0;
    for (const [hz, gain] of partials) s += gain * Math.sin(2 * Math.PI * hz * t);
    pcm[i] = Math.round(3500 * syllable * s);
  }
  return { wav: wavFile(pcm), durationSeconds: seconds, frequencyHz: 450 };
}

/** Length in seconds of a PCM WAV (from its fmt and data chunks); undefined when it is not one. */
export function wavDurationSeconds(wav: Uint8Array): number | undefined {
  const v = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  if (wav.byteLength < 12 || v.getUint32(0) !== 0x52494646 || v.getUint32(8) !== 0x57415645) return undefined;
  let off = 12;
  let byteRate = 0;
  while (off + 8 <= wav.byteLength) {
    const id = String.fromCharCode(wav[off] ?? 0, wav[off + 1] ?? 0, wav[off + 2] ?? 0, wav[off + 3] ?? 0);
    const size = v.getUint32(off + 4, true);
    if (id === "fmt ") byteRate = v.getUint32(off + 16, true);
    if (id === "data") return byteRate > 0 ? Math.min(size, wav.byteLength - off - 8) / byteRate : undefined;
    off += 8 + size + (size % 2);
  }
  return undefined;
}
