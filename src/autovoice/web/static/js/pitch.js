// Pitch helpers: note names (same spelling as the server: C, C#, ..., B; A4 = 440 Hz = MIDI 69) and a
// small in-browser F0 tracker (YIN), used only when the server does not send F0 contours.

const NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

export const hzToMidi = (hz) => 69 + 12 * Math.log2(hz / 440);
export const midiToHz = (m) => 440 * 2 ** ((m - 69) / 12);

export function midiName(m) {
  const r = Math.round(m);
  return `${NAMES[((r % 12) + 12) % 12]}${Math.floor(r / 12) - 1}`;
}

export const isBlackKey = (m) => [1, 3, 6, 8, 10].includes(((Math.round(m) % 12) + 12) % 12);

/** Decode an audio Blob to mono Float32 samples at `sr` Hz (Web Audio does the resampling). */
export async function decodeMono(blob, sr = 8000) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx || !window.OfflineAudioContext) throw new Error("This browser cannot decode audio (no Web Audio).");
  const ctx = new Ctx();
  let decoded;
  try {
    decoded = await ctx.decodeAudioData(await blob.arrayBuffer());
  } finally {
    ctx.close();
  }
  const length = Math.max(1, Math.ceil((decoded.duration * sr)));
  const off = new OfflineAudioContext(1, length, sr);
  const src = off.createBufferSource();
  src.buffer = decoded; // channels are down-mixed to the single output channel
  src.connect(off.destination);
  src.start();
  const rendered = await off.startRendering();
  return { samples: rendered.getChannelData(0), sr, duration: decoded.duration };
}

/**
 * F0 per frame with YIN (de Cheveigné & Kawahara 2002), 0 where unvoiced or too quiet.
 *
 * Cheap enough for a song at 8 kHz (a few seconds for 3 minutes); it yields to the event loop every
 * few hundred frames so the page stays responsive.
 */
export async function trackF0(samples, sr, { hopS = 0.02, fmin = 65, fmax = 1000, threshold = 0.2 } = {}) {
  const hop = Math.max(1, Math.round(hopS * sr));
  const tauMin = Math.max(2, Math.floor(sr / fmax));
  const tauMax = Math.ceil(sr / fmin);
  const win = 2 * tauMax; // integration window: two periods of the lowest pitch
  const n = Math.max(0, Math.floor((samples.length - win - tauMax) / hop) + 1);
  const f0 = new Float32Array(n);
  const rms = new Float32Array(n);
  const d = new Float32Array(tauMax + 1);
  let peakRms = 0;
  for (let i = 0; i < n; i++) {
    const start = i * hop;
    let e = 0;
    for (let j = 0; j < win; j++) e += samples[start + j] * samples[start + j];
    rms[i] = Math.sqrt(e / win);
    if (rms[i] > peakRms) peakRms = rms[i];
  }
  const gate = peakRms * 10 ** (-35 / 20); // frames 35 dB below the loudest are silence
  for (let i = 0; i < n; i++) {
    if (i % 400 === 399) await new Promise((r) => setTimeout(r, 0));
    if (rms[i] < gate) continue;
    const start = i * hop;
    // Difference function and its cumulative-mean normalisation.
    let running = 0;
    d[0] = 1;
    let best = -1;
    let minTau = -1;
    for (let tau = 1; tau <= tauMax; tau++) {
      let s = 0;
      for (let j = 0; j < win; j++) {
        const diff = samples[start + j] - samples[start + j + tau];
        s += diff * diff;
      }
      running += s;
      d[tau] = running > 0 ? (s * tau) / running : 1;
      if (tau > tauMin && (minTau < 0 || d[tau] < d[minTau])) minTau = tau;
      if (tau > tauMin + 1 && d[tau - 1] < threshold && d[tau - 1] <= d[tau]) {
        best = tau - 1; // the first dip under the threshold (YIN step 4)
        break;
      }
    }
    // No dip under the threshold: the deepest one, if it is still clearly periodic.
    if (best < 0 && minTau > 0 && minTau < tauMax && d[minTau] < 2 * threshold) best = minTau;
    if (best <= 0) continue;
    // Parabolic interpolation around the dip.
    const a = d[best - 1];
    const b = d[best];
    const c = d[best + 1] ?? b;
    const denom = a - 2 * b + c;
    const shift = denom !== 0 ? (0.5 * (a - c)) / denom : 0;
    const hz = sr / (best + Math.max(-1, Math.min(1, shift)));
    if (hz >= fmin && hz <= fmax) f0[i] = hz;
  }
  return { hop_s: hop / sr, f0: clean(f0, Math.max(3, Math.round(0.05 / (hop / sr)))) };
}

/** Drop voiced runs shorter than `minRun` frames and median-filter (5 frames) inside voiced runs. */
function clean(f0, minRun) {
  const out = new Float32Array(f0.length);
  let i = 0;
  while (i < f0.length) {
    if (!f0[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < f0.length && f0[j]) j++;
    if (j - i >= minRun) {
      for (let k = i; k < j; k++) {
        const w = [];
        for (let t = Math.max(i, k - 2); t <= Math.min(j - 1, k + 2); t++) w.push(f0[t]);
        w.sort((a, b) => a - b);
        out[k] = w[w.length >> 1];
      }
    }
    i = j;
  }
  return out;
}
