// Test-only: reads what a phone recorded (baresip's sndfile module writes 16-bit PCM WAV at its own rate) as
// 8 kHz mono PCM, so the audio checks can run on it.

/** The first channel of a 16-bit PCM WAV, brought to 8 kHz (by taking every n-th frame). */
export function wavTo8k(buf: Buffer): Int16Array {
  let off = 12;
  let rate = 8000;
  let channels = 1;
  while (off + 8 <= buf.length) {
    const id = buf.toString("ascii", off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === "fmt ") {
      channels = buf.readUInt16LE(off + 10);
      rate = buf.readUInt32LE(off + 12);
    } else if (id === "data") {
      const end = Math.min(buf.length, off + 8 + size);
      const frames = Math.floor((end - off - 8) / (2 * channels));
      const step = Math.max(1, Math.round(rate / 8000));
      const out = new Int16Array(Math.floor(frames / step));
      for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(off + 8 + i * step * 2 * channels);
      return out;
    }
    off += 8 + size + (size % 2);
  }
  return new Int16Array(0);
}
