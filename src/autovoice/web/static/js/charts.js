// SVG charts drawn by hand (no library): the piano-roll range strip and the F0 contour plot.

import { hzToMidi, isBlackKey, midiName } from "./pitch.js";
import { el } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const s = (tag, attrs = {}, ...children) => el(tag, { ns: SVG, ...attrs }, ...children);

/**
 * A piano-roll strip of a vocal range: keys from C2 to C6 (wider when the voice is), the full range
 * (lowest..highest) as a light bar, the tessitura as a solid band and the median as a line.
 * `range` is the profile's `vocal_range` document.
 */
export function pianoRoll(range, { compact = false } = {}) {
  const lo = hzToMidi(range.lowest_hz);
  const hi = hzToMidi(range.highest_hz);
  const tLo = hzToMidi(range.tessitura_low_hz);
  const tHi = hzToMidi(range.tessitura_high_hz);
  const med = hzToMidi(range.median_hz);
  // C2..C6 (wider when the voice is), so strips of different profiles line up; compact: the voice's octaves.
  let first = Math.min(36, 12 * Math.floor((lo - 1) / 12));
  let last = Math.max(84, 12 * Math.ceil((hi + 1) / 12));
  if (compact) {
    first = 12 * Math.floor((lo - 2) / 12);
    last = Math.max(first + 24, 12 * Math.ceil((hi + 2) / 12));
  }
  const keyW = 10;
  const W = (last - first + 1) * keyW;
  const H = 74;
  const keysTop = 22;
  const keysH = 34;
  const x = (m) => (m - first + 0.5) * keyW; // centre of a key

  const label = `Vocal range ${range.lowest_note} to ${range.highest_note} (${Number(range.span_semitones).toFixed(1)} semitones), `
    + `tessitura ${range.tessitura_notes.join(" to ")}, median ${range.median_note}.`;
  const pad = 12; // room for the outermost labels
  const svg = s("svg", { viewBox: `${-pad} 0 ${W + 2 * pad} ${H}`, class: "piano-roll", role: "img", "aria-label": label });
  svg.append(s("title", { text: label }));

  const keys = s("g", { class: "keys" });
  for (let m = first; m <= last; m++) {
    const inRange = m >= Math.round(lo) && m <= Math.round(hi);
    keys.append(s("rect", {
      x: (m - first) * keyW, y: keysTop, width: keyW, height: keysH,
      class: `key ${isBlackKey(m) ? "black" : "white"}${inRange ? " in-range" : ""}`,
    }));
    if (m % 12 === 0) {
      keys.append(s("line", { x1: (m - first) * keyW, x2: (m - first) * keyW, y1: keysTop, y2: keysTop + keysH + 4, class: "octave-line" }));
      keys.append(s("text", { x: (m - first) * keyW, y: H - 2, "text-anchor": "middle", class: "key-label", text: midiName(m) }));
    }
  }
  svg.append(keys);

  svg.append(s("rect", { x: x(lo) - keyW / 2, y: keysTop + 4, width: Math.max(keyW, x(hi) - x(lo) + keyW), height: keysH - 8, rx: 4, class: "range-bar" }));
  svg.append(s("rect", { x: x(tLo) - keyW / 2, y: keysTop + 9, width: Math.max(keyW / 2, x(tHi) - x(tLo) + keyW), height: keysH - 18, rx: 3, class: "tessitura-bar" }));
  svg.append(s("line", { x1: x(med), x2: x(med), y1: keysTop, y2: keysTop + keysH, class: "median-line" }));

  // Labels above the strip: lowest, median, highest (nudged apart when they would collide).
  const marks = [
    { m: lo, text: range.lowest_note, anchor: "end", cls: "mark-label" },
    { m: med, text: `median ${range.median_note}`, anchor: "middle", cls: "mark-label median" },
    { m: hi, text: range.highest_note, anchor: "start", cls: "mark-label" },
  ];
  const xs = [x(lo) - keyW / 2 - 2, x(med), x(hi) + keyW / 2 + 2];
  marks.forEach((mk, i) => svg.append(s("text", { x: xs[i], y: 15, "text-anchor": mk.anchor, class: mk.cls, text: mk.text })));
  return svg;
}

function niceStep(span, target = 6) {
  for (const step of [1, 2, 3, 4, 6, 12, 24]) if (span / step <= target) return step;
  return 24;
}

/**
 * F0 contours over time on a semitone (note) axis. `series`: [{name, f0 (Hz, 0/null = unvoiced),
 * hop_s, className, dashed}]. Returns an <svg>; legend and summary are added by the caller.
 */
export function contourChart(series, { width = 820, height = 260 } = {}) {
  // Drawn at the size it is shown (text stays legible on a phone).
  const W = Math.round(Math.max(300, Math.min(1000, width)));
  const H = height;
  const m = { l: 44, r: 10, t: 10, b: 30 };
  const midis = [];
  let duration = 0;
  for (const ser of series) {
    duration = Math.max(duration, ser.f0.length * ser.hop_s);
    for (const v of ser.f0) if (v && v > 0) midis.push(hzToMidi(v));
  }
  const label = `F0 contours over ${duration.toFixed(1)} s: ${series.map((x) => x.name).join(", ")}.`;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "contour-chart", role: "img", "aria-label": label });
  svg.append(s("title", { text: label }));
  if (!midis.length || duration <= 0) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty", text: "No voiced pitch found." }));
    return svg;
  }
  midis.sort((a, b) => a - b);
  const q = (p) => midis[Math.min(midis.length - 1, Math.max(0, Math.floor(p * midis.length)))];
  let yMin = Math.floor(q(0.02)) - 3;
  let yMax = Math.ceil(q(0.98)) + 3;
  if (yMax - yMin < 12) {
    const c = (yMax + yMin) / 2;
    yMin = Math.floor(c - 6);
    yMax = Math.ceil(c + 6);
  }
  const px = (t) => m.l + (t / duration) * (W - m.l - m.r);
  const py = (mi) => m.t + (1 - (mi - yMin) / (yMax - yMin)) * (H - m.t - m.b);

  const grid = s("g", { class: "grid" });
  const step = niceStep(yMax - yMin, H < 240 ? 5 : 6);
  for (let n = Math.ceil(yMin / step) * step; n <= yMax; n += step) {
    grid.append(s("line", { x1: m.l, x2: W - m.r, y1: py(n), y2: py(n), class: n % 12 === 0 ? "grid-c" : "grid-line" }));
    grid.append(s("text", { x: m.l - 6, y: py(n) + 4, "text-anchor": "end", class: "axis-label", text: midiName(n) }));
  }
  const maxTicks = W < 500 ? 5 : 8;
  const tStep = [0.5, 1, 2, 5, 10, 15, 30, 60, 120].find((st) => duration / st <= maxTicks) || 300;
  for (let t = 0; t <= duration + 1e-9; t += tStep) {
    grid.append(s("line", { x1: px(t), x2: px(t), y1: H - m.b, y2: H - m.b + 4, class: "tick" }));
    grid.append(s("text", { x: px(t), y: H - m.b + 17, "text-anchor": "middle", class: "axis-label", text: `${Number(t.toFixed(1))} s` }));
  }
  grid.append(s("rect", { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, class: "plot-frame" }));
  svg.append(grid);

  // Dashed lines last, so a plan that the result follows exactly stays visible on top of it.
  for (const ser of [...series].sort((a, b) => Number(Boolean(a.dashed)) - Number(Boolean(b.dashed)))) {
    // At most ~1600 points per line: plenty for 820 px, cheap for long songs.
    const stride = Math.max(1, Math.ceil(ser.f0.length / 1600));
    let d = "";
    let pen = false;
    let prev = null;
    for (let i = 0; i < ser.f0.length; i += stride) {
      const v = ser.f0[i];
      if (!v || v <= 0) {
        pen = false;
        continue;
      }
      const mi = Math.min(yMax, Math.max(yMin, hzToMidi(v)));
      // A jump of more than 4 semitones between neighbours is a new note (or an octave slip): no line.
      if (pen && Math.abs(mi - prev) > 4) pen = false;
      d += `${pen ? "L" : "M"}${px(i * ser.hop_s).toFixed(1)} ${py(mi).toFixed(1)}`;
      pen = true;
      prev = mi;
    }
    svg.append(s("path", { d, class: `contour ${ser.className}${ser.dashed ? " dashed" : ""}` }));
  }
  return svg;
}

/** A legend for contourChart: swatch + name per series. */
export function legend(series) {
  return el("ul", { class: "legend" }, series.map((ser) => el("li", {},
    el("span", { class: `swatch ${ser.className}${ser.dashed ? " dashed" : ""}`, "aria-hidden": "true" }),
    ser.name)));
}
