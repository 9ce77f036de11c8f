// Convert: the choices come from GET /api/v1/engines; submit a song, follow the job (WebSocket, polling
// as the fallback), then the warnings, the A/B players, downloads, the quality report and the F0 contours.

import { ApiError, api } from "./api.js";
import { contourChart, legend } from "./charts.js";
import { decodeMono, trackF0 } from "./pitch.js";
import { dropZone } from "./voices.js";
import {
  $, clearError, downloadBlob, el, fillProfileSelect, fmt, formatBytes, profileStore, setBusy, showError, signed,
} from "./ui.js";

const FINAL = new Set(["completed", "failed", "cancelled"]);
const STAGES = {
  queued: "Waiting in the queue",
  starting: "Starting",
  separate: "Separating the vocals",
  pitch: "Tracking the pitch",
  convert: "Converting the voice",
  remix: "Mixing",
  measure: "Measuring quality",
  metrics: "Measuring quality",
  dnsmos: "Measuring quality (DNSMOS)",
  done: "Finishing",
  completed: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
  interrupted: "Interrupted; waiting to resume",
};

const state = {
  file: null,
  originalUrl: null,
  jobId: null,
  resultUrl: null,
  job: null,
  series: null,
  catalog: null,
};

export const stageLabel = (stage) => STAGES[stage] || (stage ? stage.charAt(0).toUpperCase() + stage.slice(1).replaceAll("_", " ") : "");

function jobError(doc) {
  const e = doc.error || {};
  return new ApiError({ status: 200, code: e.code || doc.status || "failed", message: e.message || "The conversion failed.", details: e.details });
}

/**
 * Follow a job until it ends: resolves with the final job document (completed) or rejects with an
 * ApiError (failed, cancelled, or the API refused). Uses the WebSocket and falls back to polling
 * GET /api/v1/conversions/{id} when the socket cannot be opened or drops before the end.
 */
export function followJob(id, onUpdate, { pollMs = 1000 } = {}) {
  return new Promise((resolve, reject) => {
    let done = false;
    let polling = false;
    let timer = null;
    let ws = null;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ws && ws.readyState <= 1) ws.close();
      fn(value);
    };
    const poll = () => {
      if (polling || done) return;
      polling = true;
      onUpdate({ transport: "polling" });
      const tick = async () => {
        if (done) return;
        try {
          const job = await api.getJob(id);
          onUpdate({ type: "progress", status: job.status, progress: job.progress, stage: job.stage });
          if (job.status === "completed") finish(resolve, job);
          else if (FINAL.has(job.status)) finish(reject, jobError(job));
          else timer = setTimeout(tick, pollMs);
        } catch (err) {
          if (err.status === 429 || err.status === 0 || err.status >= 500) {
            timer = setTimeout(tick, Math.max(pollMs, 1000 * (err.retryAfter || 3))); // transient: keep trying
          } else {
            finish(reject, err);
          }
        }
      };
      tick();
    };
    try {
      ws = new WebSocket(api.eventsUrl(id));
    } catch {
      poll();
      return;
    }
    ws.addEventListener("open", () => onUpdate({ transport: "websocket" }));
    ws.addEventListener("message", async (msg) => {
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (ev.type === "progress") {
        onUpdate(ev);
      } else if (ev.type === "completed") {
        onUpdate({ ...ev, progress: 1 });
        try {
          finish(resolve, ev.job && ev.job.metrics !== undefined ? ev.job : await api.getJob(id));
        } catch (err) {
          finish(reject, err);
        }
      } else if (ev.type === "failed") {
        finish(reject, jobError(ev));
      } else if (ev.type === "error") {
        finish(reject, new ApiError({ status: 400, ...(ev.error || {}) }));
      }
    });
    ws.addEventListener("error", () => poll());
    ws.addEventListener("close", () => {
      if (!done) poll();
    });
  });
}

// -- choices (GET /api/v1/engines) -------------------------------------------------------------------
// The names come from the server's catalog; these only word the report levels and presets, which the
// catalog lists by name. A name missing here is shown as it is.
const LEVEL_TEXT = {
  fast: ["Fast", "Pitch accuracy, voice similarity and DNSMOS, measured on bounded windows of the result."],
  full: ["Full", "The same measures over the whole result; slower on long songs."],
  off: ["Off", "No quality report: the job finishes sooner; only timings are shown."],
};
const PRESET_TEXT = { fast: "Fast", balanced: "Balanced", quality: "Quality" };
const CONTENT_TEXT = { auto: "Decide from the input", speech: "Speech", song: "Song" };
const PRESET_F0 = "Preset's choice";
const titleCase = (name) => (name ? name.charAt(0).toUpperCase() + name.slice(1).replaceAll("_", " ") : "");

/** Each select: where its choices are in the catalog, and how an entry becomes {value, text, description}. */
const CHOICES = [
  { select: "#convert-engine", help: "#engine-help", list: (c) => c.engines, def: (c) => c.defaults.engine },
  {
    select: "#convert-f0", help: "#f0-help", list: (c) => c.f0_methods, def: () => "",
    // Left out of the form, the preset picks the tracker.
    first: { name: "", text: PRESET_F0, description: "Each preset picks its own pitch tracker; choose one to override it." },
  },
  {
    select: "#convert-preset", help: null, list: (c) => (c.presets || []).map((n) => ({ name: n, text: PRESET_TEXT[n] || titleCase(n) })),
    def: (c) => c.defaults.preset,
  },
  { select: "#convert-separation", help: "#separation-help", list: (c) => c.separation, def: (c) => c.defaults.separation },
  {
    select: "#convert-content", help: "#content-help", def: (c) => c.defaults.content,
    list: (c) => (c.contents || []).map((e) => ({ ...e, text: CONTENT_TEXT[e.name] || titleCase(e.name) })),
  },
  {
    select: "#convert-metrics", help: "#metrics-help",
    list: (c) => (c.metrics_levels || []).map((n) => ({ name: n, text: (LEVEL_TEXT[n] || [titleCase(n)])[0], description: (LEVEL_TEXT[n] || [])[1] || "" })),
    def: (c) => c.defaults.metrics,
  },
];

function showChoiceHelp(spec) {
  if (!spec.help) return;
  const opt = $(spec.select).selectedOptions[0];
  $(spec.help).textContent = (opt && opt.title) || "";
}

/** The selected engine's own options (from its JSON schema) as a hint under the JSON field. */
function showEngineOptions() {
  const help = $("#engine-options-help");
  const engine = (state.catalog && state.catalog.engines || []).find((e) => e.name === $("#convert-engine").value);
  const props = (engine && engine.options && engine.options.properties) || {};
  const names = Object.keys(props);
  help.replaceChildren(`Leave empty for the engine's defaults.${names.length ? ` ${engine.name} accepts:` : ""}`);
  if (!names.length) return;
  help.append(el("ul", { class: "option-list" }, names.map((n) => {
    const p = props[n];
    const type = p.type || (p.anyOf || []).map((b) => b.type).filter((t) => t && t !== "null").join(" | ");
    const range = [p.minimum ?? p.exclusiveMinimum, p.maximum ?? p.exclusiveMaximum];
    const bits = [type, range.some((v) => v !== undefined) ? `${range[0] ?? "…"}..${range[1] ?? "…"}` : null,
      p.default !== undefined ? `default ${JSON.stringify(p.default)}` : null].filter(Boolean).join(", ");
    return el("li", {}, el("code", { text: n }), bits ? ` (${bits})` : "", p.description ? `: ${p.description}` : "");
  })));
}

function fillChoices(catalog) {
  for (const spec of CHOICES) {
    const sel = $(spec.select);
    const keep = sel.dataset.loaded ? sel.value : null;
    const entries = [...(spec.first ? [spec.first] : []), ...(spec.list(catalog) || [])];
    sel.replaceChildren(...entries.map((c) => el("option", {
      value: c.name, text: c.text || c.name, title: c.description || null,
    })));
    const want = keep ?? spec.def(catalog) ?? "";
    if ([...sel.options].some((o) => o.value === want)) sel.value = want;
    sel.disabled = false;
    sel.dataset.loaded = "true";
    showChoiceHelp(spec);
  }
  showEngineOptions();
}

/** Load the choices; when the catalog cannot be read the form still works with the server's defaults. */
export async function refreshCatalog() {
  const status = $("#catalog-status");
  try {
    state.catalog = await api.catalog();
    fillChoices(state.catalog);
    status.textContent = "";
    $("#convert-form").dataset.catalog = "ready";
  } catch (err) {
    state.catalog = null;
    for (const spec of CHOICES) {
      const sel = $(spec.select);
      if (sel.dataset.loaded) continue;
      sel.replaceChildren(el("option", { value: "", text: "Server default" }));
      sel.disabled = false;
      if (spec.help) $(spec.help).textContent = "";
    }
    status.textContent = `The choices could not be loaded (${err.message}); the server's defaults will be used.`;
    $("#convert-form").dataset.catalog = "failed";
  }
}

// -- form ---------------------------------------------------------------------------------------------
function pitchMode() {
  return document.querySelector('input[name="pitch-mode"]:checked').value;
}

function updatePitchPlan(known = null) {
  const out = $("#pitch-plan");
  if (known) {
    out.textContent = known;
    return;
  }
  if (pitchMode() === "auto") {
    out.textContent = "Auto key: the shift that moves the song into the voice's range is chosen when the job runs, and shown here then.";
    $("#pitch-manual").hidden = true;
    return;
  }
  $("#pitch-manual").hidden = false;
  const v = Number($("#pitch-shift").value) || 0;
  out.textContent = v === 0 ? "No shift." : `Planned shift: ${signed(v, 1)} semitones (${v > 0 ? "up" : "down"}).`;
}

function setFile(file) {
  if (!file) return;
  state.file = file;
  if (state.originalUrl) URL.revokeObjectURL(state.originalUrl);
  state.originalUrl = URL.createObjectURL(file);
  $("#song-chosen").textContent = `${file.name} · ${formatBytes(file.size)}`;
  clearError($("#convert-error"));
}

const isNum = (x) => x !== null && x !== undefined && x !== "" && Number.isFinite(Number(x));

/** The pitch plan in one line ("Planned shift: +2.00 semitones (auto key; ideal +1.63); …"), or null. */
function planText(metrics) {
  const plan = metrics.pitch_plan || {};
  const shift = metrics.pitch_shift_semitones ?? plan.shift_semitones;
  if (!isNum(shift)) return null;
  let text = `Planned shift: ${signed(shift, 2)} semitones`;
  if (plan.auto_key) text += ` (auto key${isNum(plan.ideal_shift_semitones) ? `; ideal ${signed(plan.ideal_shift_semitones, 2)}` : ""})`;
  const moved = movedText(plan);
  if (moved) text += `; ${moved}`;
  return `${text}.`;
}

/** "8.0 % of voiced frames moved by an octave" from moved_share (0..1), else from capped_frames. */
function movedText(plan) {
  if (isNum(plan.moved_share)) {
    const share = Number(plan.moved_share);
    return share > 0 ? `${fmt(100 * share, 1)} % of voiced frames moved by an octave` : "no frames moved by an octave";
  }
  if (isNum(plan.capped_frames) && Number(plan.capped_frames) > 0) return `${plan.capped_frames} frames moved by an octave to stay in range`;
  return null;
}

// -- progress -----------------------------------------------------------------------------------------
// The bar only moves forward within a job: a late WebSocket event, or a poll answer older than the
// last event, must not pull it back (the server keeps its row monotonic; the page does not rely on it).
let shownProgress = 0;

function showProgress(progress, stage, { restart = false } = {}) {
  const fraction = Math.max(0, Math.min(1, Number(progress) || 0));
  if (restart) shownProgress = fraction;
  else if (fraction < shownProgress) return;
  else shownProgress = fraction;
  const pct = Math.round(100 * fraction);
  $("#job-progress").value = pct;
  $("#job-progress-text").textContent = `${pct} %`;
  if (stage) $("#job-progress-label").textContent = `${stageLabel(stage)}${FINAL.has(stage) ? "." : "…"}`;
}

// -- results --------------------------------------------------------------------------------------------
function meterRow(id, label, value, { min = 0, max = 1, low, high, optimum, digits = 2, suffix = "" }) {
  const ok = value !== null && value !== undefined && Number.isFinite(Number(value));
  return el("div", { class: "meter-row" },
    el("label", { for: id, text: label }),
    el("meter", { id, min, max, low, high, optimum, value: ok ? Math.max(min, Math.min(max, value)) : min }),
    el("span", { class: "meter-value", text: ok ? `${fmt(value, digits)}${suffix}` : "not measured" }));
}

function pitchVerdict(cents) {
  if (!Number.isFinite(cents)) return "not measured";
  if (cents < 10) return "excellent";
  if (cents < 25) return "good";
  if (cents < 50) return "fair";
  return "poor";
}

/** A warning as {code, message}: the result document's are objects, a report's own are strings. */
function asWarning(w) {
  if (w && typeof w === "object") return { code: String(w.code || "warning"), message: String(w.message || w.code || "") };
  const text = String(w);
  const m = /^([a-z][a-z0-9_]*): (.+)$/s.exec(text); // "dnsmos: ..." names the measure it is about
  return m ? { code: m[1], message: m[2] } : { code: "warning", message: text };
}

/** The result's warnings as yellow notices (message first, the code small). Returns their messages. */
function renderWarnings(job) {
  const box = $("#result-warnings");
  const list = ((job.metrics || {}).warnings || []).map(asWarning);
  box.replaceChildren(...list.map((w) => el("div", { class: "notice notice-warn", "data-code": w.code },
    el("span", { class: "notice-icon", "aria-hidden": "true", text: "⚠" }),
    el("div", { class: "notice-body" },
      el("p", { class: "notice-message" }, el("strong", { text: "Warning: " }), w.message),
      el("code", { class: "notice-code", text: w.code })))));
  box.hidden = !list.length;
  return new Set(list.map((w) => w.message));
}

/** The report level: the report's own `level`, else the one asked for. */
function reportLevel(job) {
  const m = job.metrics || {};
  return (m.metrics && m.metrics.level) || (m.options || {}).metrics || job.params.metrics || null;
}

/** What ran: engine, preset, F0 method, separation, pitch, report level, timings. */
function renderFacts(job) {
  const m = job.metrics || {};
  const asked = { ...job.params, ...(m.options || {}) };
  const plan = m.pitch_plan || {};
  const shift = m.pitch_shift_semitones ?? plan.shift_semitones;
  const rows = [];
  const add = (key, label, value, note = null) => {
    if (value === null || value === undefined || value === "") return;
    rows.push(el("div", { class: "fact", "data-key": key },
      el("dt", { text: label }), el("dd", {}, String(value), note ? el("span", { class: "hint", text: ` ${note}` }) : null)));
  };
  add("engine", "Engine", m.engine || asked.engine);
  add("preset", "Preset", m.preset || asked.preset);
  add("f0_method", "F0 method", m.f0_method || asked.f0_method, asked.f0_method ? null : "(the preset's)");
  const sep = m.separation || asked.separation;
  const decided = m.separation_decision;
  const sepNote = decided && decided.decided_by === "auto" ? `(auto: ${decided.reason})`
    : asked.separation && sep !== asked.separation ? `(${asked.separation})`
    : sep === "none" ? (job.params.accompaniment ? "(accompaniment given)" : "(the input is used as the vocal)") : null;
  add("separation", "Separation", sep, sepNote);
  const content = m.content;
  if (content && content.used) {
    add("content", "Planned as", content.used, `(${content.decided_by === "auto" ? "auto" : "chosen"}: ${content.reason})`);
  }
  if (isNum(shift)) {
    const how = [plan.auto_key ? "auto key" : null,
      isNum(plan.ideal_shift_semitones) ? `ideal ${signed(plan.ideal_shift_semitones, 2)} st` : null].filter(Boolean);
    add("pitch", "Pitch shift", `${signed(shift, 2)} st`, how.length ? `(${how.join(", ")})` : null);
    if (isNum(plan.moved_share)) {
      const phrases = Number(plan.phrases) > 0 && isNum(plan.phrases_moved) ? ` (${plan.phrases_moved} of ${plan.phrases} phrases)` : "";
      add("moved", "Octave moves", `${fmt(100 * Number(plan.moved_share), 1)} %`, `of voiced frames moved by an octave${phrases}`);
    } else if (Number(plan.capped_frames) > 0) {
      add("moved", "Octave moves", `${plan.capped_frames} frames`, "moved by an octave to stay in range");
    }
  }
  add("report", "Quality report", reportLevel(job));
  if (isNum(m.processing_seconds)) add("time", "Time", `${fmt(m.processing_seconds, 1)} s`, isNum(m.audio_seconds) ? `for ${fmt(m.audio_seconds, 1)} s of audio` : null);
  $("#result-facts").replaceChildren(...rows);
}

function speedSection(job) {
  const m = job.metrics || {};
  const q = m.metrics || {};
  const r = m.rtf ?? q.rtf;
  return el("section", { class: "metric", "aria-labelledby": "m-speed" },
    el("h4", { id: "m-speed", text: "Speed" }),
    el("p", { class: "big" }, `RTF ${fmt(r, 2)}`,
      el("span", { class: "hint", text: Number(r) > 0 && Number(r) < 1 ? ` · ${fmt(1 / r, 1)}× faster than real time` : isNum(r) ? " · slower than real time" : "" })),
    el("dl", { class: "kv" },
      el("dt", { text: "Processing" }), el("dd", { text: `${fmt(m.processing_seconds, 1)} s for ${fmt(m.audio_seconds, 1)} s of audio` }),
      m.metrics ? [el("dt", { text: "Quality metrics" }), el("dd", { text: `${fmt(q.metrics_seconds, 1)} s` })] : null,
      el("dt", { text: "Engine / device" }), el("dd", { text: `${m.engine || job.params.engine || "–"} on ${m.device || job.device || "–"}` })));
}

function renderReport(job, shown = new Set()) {
  const m = job.metrics || {};
  const q = m.metrics;
  const level = reportLevel(job);
  const tag = $("#report-level");
  tag.hidden = !level;
  tag.textContent = level ? `level: ${level}` : "";
  const box = $("#report");
  box.replaceChildren();
  box.dataset.state = q ? "report" : "none";
  if (!q || typeof q !== "object" || !Object.keys(q).length) {
    box.append(el("p", { class: "hint report-none", text: level === "off"
      ? "No quality report: it was turned off for this conversion (Quality report: off). The timings are below."
      : "This job has no quality report." }));
    box.append(speedSection(job));
    return;
  }
  const p = q.pitch || {};
  const d = q.dnsmos || {};
  const gain = q.similarity_gain;
  box.append(
    el("section", { class: "metric", "aria-labelledby": "m-pitch" },
      el("h4", { id: "m-pitch", text: "Pitch accuracy" }),
      el("p", { class: "big" }, `${fmt(p.median_abs_cents, 1)} cents`, el("span", { class: "hint", text: ` median error · ${pitchVerdict(p.median_abs_cents)}` })),
      el("dl", { class: "kv" },
        el("dt", { text: "RMS error" }), el("dd", { text: `${fmt(p.rmse_cents, 1)} cents (${fmt(p.rmse_hz, 1)} Hz)` }),
        el("dt", { text: "Off by > 50 cents" }), el("dd", { text: `${fmt(100 * p.frac_off_50_cents, 1)} % of frames` }),
        el("dt", { text: "Melody correlation" }), el("dd", { text: fmt(p.correlation, 3) }),
        el("dt", { text: "Voicing agreement" }), el("dd", { text: `${fmt(100 * p.voicing_agreement, 1)} %` }),
        el("dt", { text: "Bias" }), el("dd", { text: `${signed(p.mean_cents, 1)} cents` }))),
    el("section", { class: "metric", "aria-labelledby": "m-sim" },
      el("h4", { id: "m-sim", text: "Similarity to the target voice" }),
      meterRow("meter-sim-out", "Converted", q.similarity_to_target, { low: 0.5, high: 0.75, optimum: 1 }),
      meterRow("meter-sim-src", "Source (floor)", q.similarity_source_to_target, { low: 0.5, high: 0.75, optimum: 1 }),
      isNum(gain)
        ? el("p", { class: Number(gain) > 0 ? "ok" : "warn-text" },
          `Gain ${signed(gain, 3)}: `,
          Number(gain) > 0 ? "the voice moved toward the target." : "the result is no closer to the target than the source.")
        : el("p", { class: "hint", text: "Gain not measured." })),
    el("section", { class: "metric", "aria-labelledby": "m-dnsmos" },
      el("h4", { id: "m-dnsmos", text: "DNSMOS (1–5, higher is better)" }),
      meterRow("meter-sig", "SIG (voice)", d.sig, { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5 }),
      meterRow("meter-bak", "BAK (background)", d.bak, { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5 }),
      meterRow("meter-ovrl", "OVRL (overall)", d.ovrl, { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5 }),
      d.windows ? el("p", { class: "hint", text: `${d.windows} window${d.windows > 1 ? "s" : ""} scored · P.808 ${fmt(d.p808, 2)}` }) : null),
    speedSection(job),
  );
  // The report's own notes (measures it could not take), unless the notices above already say them.
  const notes = (q.warnings || []).map(asWarning).filter((w) => !shown.has(w.message));
  if (notes.length) {
    box.append(el("ul", { class: "warnings", "aria-label": "Report notes" }, notes.map((w) => el("li", { text: w.message }))));
  }
}

/**
 * Everything about a finished job that needs no audio: summary line, warnings, what ran, the pitch
 * plan and the quality report. Exported for rendering tests (a job document in, the DOM out).
 */
export function renderOutcome(job) {
  const m = job.metrics || {};
  const profile = profileStore.get().find((p) => p.id === job.params.profile_id);
  const source = job.params.filename || (state.file && state.file.name) || "input";
  const plan = planText(m);
  if (plan) updatePitchPlan(plan);
  $("#result-summary").textContent = `${source} → ${profile ? profile.name : job.params.profile_id}`;
  const shown = renderWarnings(job);
  renderFacts(job);
  renderReport(job, shown);
  $("#result-json").textContent = JSON.stringify(job, null, 2);
  return { source, profile };
}

/** The contours the server sent, if any: metrics.f0 = {hop_s, source, intended?, output?}
 * (output is null when the report was off: the server did not re-track the result). */
function serverContours(job) {
  const m = job.metrics || {};
  const c = m.f0 || m.contours || (m.metrics && (m.metrics.f0 || m.metrics.contours));
  if (c && Array.isArray(c.source) && Number(c.hop_s) > 0) return c;
  return null;
}

/** The converted vocal (separated jobs) or the mix, to track in the browser. */
async function outputForTracking(job, resultBlob) {
  const m = job.metrics || {};
  if (m.separation && m.separation !== "none" && job.result && job.result.vocals) {
    try {
      return await api.jobAudio(job.id, "vocals");
    } catch {
      return resultBlob;
    }
  }
  return resultBlob;
}

async function drawContours(job, originalFile, resultBlob) {
  const box = $("#f0-chart");
  const note = $("#f0-note");
  box.dataset.state = "working";
  state.series = null;
  box.replaceChildren(el("p", { class: "hint", text: "Measuring pitch…" }));
  const m = job.metrics || {};
  const shift = Number(m.pitch_shift_semitones ?? (m.pitch_plan || {}).shift_semitones ?? 0) || 0;
  let series;
  const fromServer = serverContours(job);
  try {
    if (fromServer) {
      const hop = Number(fromServer.hop_s);
      series = [{ name: "Source", f0: fromServer.source, hop_s: hop, className: "c-source" }];
      if (Array.isArray(fromServer.intended)) series.push({ name: "Intended (pitch plan)", f0: fromServer.intended, hop_s: hop, className: "c-intended", dashed: true });
      const tracker = m.f0_method || (m.metrics || {}).f0_method || "F0 tracker";
      if (Array.isArray(fromServer.output)) {
        series.push({ name: "Converted (achieved)", f0: fromServer.output, hop_s: hop, className: "c-output" });
        note.textContent = `Contours measured by the server (${tracker}).`;
      } else {
        // No report, so the server did not track the result: track it here.
        const out = await decodeMono(await outputForTracking(job, resultBlob));
        const b = await trackF0(out.samples, out.sr, { hopS: Math.max(0.01, out.duration / 1500) });
        series.push({ name: "Converted (achieved)", f0: b.f0, hop_s: b.hop_s, className: "c-output" });
        note.textContent = `Source and plan from the server (${tracker}); the converted line is measured in your browser `
          + "with a simple pitch tracker, because the quality report was off.";
      }
    } else {
      // The API sends no contours: measure both in the browser (converted vocals when separated).
      const outBlob = await outputForTracking(job, resultBlob);
      const [src, out] = await Promise.all([decodeMono(originalFile), decodeMono(outBlob)]);
      const hopS = Math.max(0.01, Math.max(src.duration, out.duration) / 1500);
      const a = await trackF0(src.samples, src.sr, { hopS });
      const b = await trackF0(out.samples, out.sr, { hopS });
      const ratio = 2 ** (shift / 12);
      series = [
        { name: "Source", f0: a.f0, hop_s: a.hop_s, className: "c-source" },
        { name: `Intended (source ${signed(shift, 1)} st)`, f0: a.f0.map((v) => v * ratio), hop_s: a.hop_s, className: "c-intended", dashed: true },
        { name: "Converted (achieved)", f0: b.f0, hop_s: b.hop_s, className: "c-output" },
      ];
      note.textContent = "Measured in your browser with a simple pitch tracker (the server sent no contours)"
        + (m.separation && m.separation !== "none" ? "; the source line comes from the full mix, so music can add stray points." : ".");
    }
    state.series = series;
    renderChart();
    box.dataset.state = "ready";
  } catch (err) {
    box.replaceChildren(el("p", { class: "hint", text: `The pitch contours could not be drawn: ${err.message || err}.` }));
    box.dataset.state = "failed";
  }
}

function renderChart() {
  const box = $("#f0-chart");
  if (!state.series) return;
  const width = box.clientWidth ? box.clientWidth - 16 : 820;
  box.replaceChildren(contourChart(state.series, { width, height: width < 500 ? 220 : 260 }), legend(state.series));
}

async function showResult(job) {
  state.job = job;
  const m = job.metrics || {};
  $("#result-card").hidden = false;
  const { source, profile } = renderOutcome(job);

  $("#audio-a").src = state.originalUrl || "";
  const blob = await api.jobAudio(job.id, "mix");
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  $("#audio-b").src = state.resultUrl;
  const base = source.replace(/\.[^.]+$/, "") || "result";
  const voice = profile ? profile.name.replace(/[^\w.-]+/g, "_") : "converted";
  const link = $("#download-mix");
  link.href = state.resultUrl;
  link.download = `${base}.${voice}.wav`;

  for (const [btnId, stem, label] of [["#download-vocals", "vocals", "vocals"], ["#download-acc", "accompaniment", "accompaniment"]]) {
    const btn = $(btnId);
    btn.hidden = !(job.result && job.result[stem]) || (stem === "vocals" && m.separation === "none");
    btn.onclick = async () => {
      btn.disabled = true;
      try {
        downloadBlob(await api.jobAudio(job.id, stem), `${base}.${voice}.${label}.wav`);
      } catch (err) {
        showError($("#job-error"), err);
      } finally {
        btn.disabled = false;
      }
    };
  }
  drawContours(job, state.file, blob);
}

function setupAB() {
  const a = $("#audio-a");
  const b = $("#audio-b");
  const status = $("#ab-status");
  // Only one plays at a time.
  a.addEventListener("play", () => { b.pause(); status.textContent = "Playing A (original)."; });
  b.addEventListener("play", () => { a.pause(); status.textContent = "Playing B (converted)."; });
  $("#ab-switch").addEventListener("click", async () => {
    const playing = !a.paused ? a : !b.paused ? b : null;
    const next = playing === b ? a : b;
    if (playing) {
      const t = playing.currentTime;
      playing.pause();
      if (Number.isFinite(next.duration)) next.currentTime = Math.min(t, next.duration);
      else next.currentTime = t;
    }
    try {
      await next.play();
    } catch (err) {
      status.textContent = `Could not play: ${err.message || err}`;
    }
  });
}

export function selectProfile(id) {
  const sel = $("#convert-profile");
  if ([...sel.options].some((o) => o.value === id)) sel.value = id;
}

export function initConvert() {
  dropZone($("#song-drop"), $("#song-file"), (files) => setFile(files[0]));
  profileStore.subscribe((list) => fillProfileSelect($("#convert-profile"), list, { emptyLabel: "No profiles yet: create one under Voices" }));
  setupAB();
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderChart, 150);
  });

  for (const spec of CHOICES) $(spec.select).addEventListener("change", () => showChoiceHelp(spec));
  $("#convert-engine").addEventListener("change", showEngineOptions);
  // A profile with a trained model converts with that model's engine unless the user picks another.
  $("#convert-profile").addEventListener("change", () => {
    const profile = profileStore.get().find((p) => p.id === $("#convert-profile").value);
    const kind = profile && profile.models && profile.models.length ? profile.models[0].kind : null;
    const engine = $("#convert-engine");
    if (kind && [...engine.options].some((o) => o.value === kind) && engine.value !== kind) {
      engine.value = kind;
      engine.dispatchEvent(new Event("change"));
    }
  });

  const range = $("#pitch-range");
  const num = $("#pitch-shift");
  range.addEventListener("input", () => { num.value = range.value; updatePitchPlan(); });
  num.addEventListener("input", () => { range.value = String(Math.round(Number(num.value) || 0)); updatePitchPlan(); });
  document.querySelectorAll('input[name="pitch-mode"]').forEach((r) => r.addEventListener("change", () => updatePitchPlan()));
  updatePitchPlan();

  $("#job-cancel").addEventListener("click", async () => {
    if (!state.jobId) return;
    $("#job-cancel").disabled = true;
    $("#job-progress-label").textContent = "Cancelling…";
    try {
      await api.cancelJob(state.jobId);
    } catch (err) {
      showError($("#job-error"), err);
      $("#job-cancel").disabled = false;
    }
  });

  $("#convert-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = $("#convert-error");
    clearError(box);
    if (!state.file) {
      showError(box, { code: "invalid_parameter", message: "Choose a song or vocal file first." });
      $("#song-file").focus();
      return;
    }
    const profileId = $("#convert-profile").value;
    if (!profileId) {
      showError(box, { code: "invalid_parameter", message: "Choose a target voice (create a profile under Voices first)." });
      $("#convert-profile").focus();
      return;
    }
    const autoKey = pitchMode() === "auto";
    const pitchShift = autoKey ? null : Number(num.value || 0);
    if (!autoKey && !(Number.isFinite(pitchShift) && pitchShift >= -24 && pitchShift <= 24)) {
      showError(box, { code: "invalid_pitch_shift", message: "The pitch shift must be between −24 and +24 semitones." });
      num.focus();
      return;
    }
    const btn = $("#convert-submit");
    setBusy(btn, null, true);
    $("#result-card").hidden = true;
    const jobCard = $("#job-card");
    jobCard.hidden = false;
    clearError($("#job-error"));
    $("#job-cancel").disabled = true;
    $("#job-cancel").hidden = false;
    jobCard.dataset.state = "uploading";
    showProgress(0, null, { restart: true }); // a new job
    $("#job-progress-label").textContent = `Uploading ${state.file.name}…`;
    updatePitchPlan();
    let submitted = false;
    try {
      const job = await api.submitConversion({
        file: state.file,
        profileId,
        accompaniment: $("#acc-file").files[0] || null,
        options: {
          engine: $("#convert-engine").value,
          f0_method: $("#convert-f0").value,
          preset: $("#convert-preset").value,
          separation: $("#convert-separation").value,
          content: $("#convert-content").value,
          metrics: $("#convert-metrics").value,
          auto_key: autoKey,
          pitch_shift: autoKey ? null : pitchShift,
          engine_options: $("#engine-options").value.trim(),
        },
      });
      submitted = true;
      state.jobId = job.id;
      jobCard.dataset.jobId = job.id;
      jobCard.dataset.state = "running";
      $("#job-cancel").disabled = false;
      showProgress(job.progress, job.stage);
      const final = await followJob(job.id, (u) => {
        if (u.transport) jobCard.dataset.transport = u.transport;
        if (u.progress !== undefined) showProgress(u.progress, u.stage);
      });
      showProgress(1, "completed");
      jobCard.dataset.state = "completed";
      $("#job-cancel").hidden = true;
      await showResult(final);
    } catch (err) {
      jobCard.dataset.state = "failed";
      $("#job-cancel").hidden = true;
      if (err.code === "cancelled") {
        $("#job-progress-label").textContent = "Cancelled.";
      } else if (!submitted) {
        // Refused at submission: the form is where the problem is.
        jobCard.hidden = true;
        showError(box, err);
      } else {
        $("#job-progress-label").textContent = "The conversion did not finish.";
        showError($("#job-error"), err);
      }
    } finally {
      state.jobId = null;
      setBusy(btn, null, false);
    }
  });
}
