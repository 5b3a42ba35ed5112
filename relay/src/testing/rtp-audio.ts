// Audio for tests of the media path: sine tones to send, and the dominant frequency of what came back
// (Goertzel over a frequency scan), so a test can tell "B heard A's 440 Hz" from "B heard itself or noise".

export const SAMPLE_RATE = 8000;

/** A sine tone as 16-bit PCM; `startSample` continues the phase of an earlier chunk. */
export function tone(hz: number, samples: number, amplitude = 8000, startSample = 0): Int16Array {
  const out = new Int16Array(samples);
  const w = (2 * Math.PI * hz) / SAMPLE_RATE;
  for (let i = 0; i < samples; i++) out[i] = Math.round(amplitude * Math.sin(w * (startSample + i)));
  return out;
}

/** Signal power at one frequency (Goertzel), normalised by length. */
export function goertzelPower(pcm: ArrayLike<number>, hz: number, from = 0, to = pcm.length): number {
  const w = (2 * Math.PI * hz) / SAMPLE_RATE;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = from; i < to; i++) {
    const s0 = (pcm[i] ?? 0) + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const n = Math.max(1, to - from);
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n);
}

export function rms(pcm: ArrayLike<number>, from = 0, to = pcm.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (pcm[i] ?? 0) ** 2;
  return to > from ? Math.sqrt(sum / (to - from)) : 0;
}

/**
 * The strongest frequency between min and max Hz (to 1 Hz), measured over at most
 * `windowSamples` from the middle of the signal; undefined for silence.
 */
export function dominantFrequency(
  pcm: ArrayLike<number>,
  opts: { min?: number; max?: number; windowSamples?: number } = {},
): number | undefined {
  const min = opts.min ?? 100;
  const max = opts.max ?? 3800;
  const window = Math.min(pcm.length, opts.windowSamples ?? SAMPLE_RATE);
  if (window < 80) return undefined;
  const from = Math.floor((pcm.length - window) / 2);
  const to = from + window;
  if (rms(pcm, from, to) < 50) return undefined;
  // Coarse pass over a 50 ms stretch (its main lobe is ±20 Hz wide, so 10 Hz steps cannot miss a tone),
  // then 1 Hz steps over the whole window around the winner.
  const coarseTo = Math.min(to, from + 400);
  let best = min;
  let bestPower = -1;
  for (let f = min; f <= max; f += 10) {
    const p = goertzelPower(pcm, f, from, coarseTo);
    if (p > bestPower) {
      bestPower = p;
      best = f;
    }
  }
  const centre = best;
  bestPower = -1;
  for (let f = centre - 15; f <= centre + 15; f++) {
    const p = goertzelPower(pcm, f, from, to);
    if (p > bestPower) {
      bestPower = p;
      best = f;
    }
  }
  return best;
}
