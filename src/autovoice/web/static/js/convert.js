// Convert: submit a song, follow the job (WebSocket, polling as the fallback), then the A/B players,
// downloads, the quality report and the F0 contours.

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

function planText(metrics) {
  const plan = metrics.pitch_plan || {};
  const shift = metrics.pitch_shift_semitones ?? plan.shift_semitones;
  if (shift === undefined || shift === null) return null;
  let text = `Planned shift: ${signed(shift, 2)} semitones`;
  if (plan.auto_key) {
    text += ` (auto key${plan.ideal_shift_semitones !== null && plan.ideal_shift_semitones !== undefined ? `; ideal ${signed(plan.ideal_shift_semitones, 2)}` : ""})`;
  }
  if (plan.capped_frames) text += `; ${plan.capped_frames} frames moved by an octave to stay in range`;
  return `${text}.`;
}

// -- progress -----------------------------------------------------------------------------------------
function showProgress(progress, stage) {
  const pct = Math.round(100 * Math.max(0, Math.min(1, Number(progress) || 0)));
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

function renderReport(job) {
  const m = job.metrics || {};
  const q = m.metrics || {};
  const p = q.pitch || {};
  const d = q.dnsmos || {};
  const box = $("#report");
  box.replaceChildren();
  if (!q || !Object.keys(q).length) {
    box.append(el("p", { class: "hint", text: "This job has no quality report." }));
  } else {
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
        el("p", { class: Number(gain) > 0 ? "ok" : "warn-text" },
          `Gain ${signed(gain, 3)}: `,
          Number(gain) > 0 ? "the voice moved toward the target." : "the result is no closer to the target than the source.")),
      el("section", { class: "metric", "aria-labelledby": "m-dnsmos" },
        el("h4", { id: "m-dnsmos", text: "DNSMOS (1–5, higher is better)" }),
        meterRow("meter-sig", "SIG (voice)", d.sig, { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5 }),
        meterRow("meter-bak", "BAK (background)", d.bak, { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5 }),
        meterRow("meter-ovrl", "OVRL (overall)", d.ovrl, { min: 1, max: 5, low: 2.5, high: 3.5, optimum: 5 }),
        d.windows ? el("p", { class: "hint", text: `${d.windows} window${d.windows > 1 ? "s" : ""} scored · P.808 ${fmt(d.p808, 2)}` }) : null),
      el("section", { class: "metric", "aria-labelledby": "m-speed" },
        el("h4", { id: "m-speed", text: "Speed" }),
        el("p", { class: "big" }, `RTF ${fmt(m.rtf ?? q.rtf, 2)}`,
          el("span", { class: "hint", text: Number(m.rtf) > 0 && Number(m.rtf) < 1 ? ` · ${fmt(1 / m.rtf, 1)}× faster than real time` : " · slower than real time" })),
        el("dl", { class: "kv" },
          el("dt", { text: "Processing" }), el("dd", { text: `${fmt(m.processing_seconds, 1)} s for ${fmt(m.audio_seconds, 1)} s of audio` }),
          el("dt", { text: "Quality metrics" }), el("dd", { text: `${fmt(q.metrics_seconds, 1)} s` }),
          el("dt", { text: "Engine / device" }), el("dd", { text: `${m.engine || "–"} on ${m.device || job.device || "–"}` }))),
    );
  }
  const warnings = q.warnings || [];
  if (warnings.length) {
    box.append(el("ul", { class: "warnings", "aria-label": "Report warnings" }, warnings.map((w) => el("li", { text: typeof w === "string" ? w : JSON.stringify(w) }))));
  }
}

/** The contours the server sent, if any: metrics.f0 = {hop_s, source, intended?, output}. */
function serverContours(job) {
  const m = job.metrics || {};
  const c = m.f0 || m.contours || (m.metrics && (m.metrics.f0 || m.metrics.contours));
  if (c && Array.isArray(c.source) && Array.isArray(c.output) && Number(c.hop_s) > 0) return c;
  return null;
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
      series.push({ name: "Converted (achieved)", f0: fromServer.output, hop_s: hop, className: "c-output" });
      note.textContent = `Contours measured by the server (${(m.metrics || {}).f0_method || "F0 tracker"}).`;
    } else {
      // The API sends no contours: measure both in the browser (converted vocals when separated).
      let outBlob = resultBlob;
      if (m.separation && m.separation !== "none" && job.result && job.result.vocals) {
        try {
          outBlob = await api.jobAudio(job.id, "vocals");
        } catch {
          outBlob = resultBlob;
        }
      }
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
  const card = $("#result-card");
  card.hidden = false;
  const profile = profileStore.get().find((p) => p.id === job.params.profile_id);
  const source = job.params.filename || (state.file && state.file.name) || "input";
  const plan = planText(m);
  if (plan) updatePitchPlan(plan);
  $("#result-summary").textContent = [
    `${source} → ${profile ? profile.name : job.params.profile_id}`,
    `preset ${m.preset || job.params.preset}`,
    `separation ${m.separation || job.params.separation}`,
    plan ? plan.replace(/\.$/, "") : null,
  ].filter(Boolean).join(" · ");

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
  renderReport(job);
  $("#result-json").textContent = JSON.stringify(job, null, 2);
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
    showProgress(0, null);
    $("#job-progress-label").textContent = `Uploading ${state.file.name}…`;
    updatePitchPlan();
    let submitted = false;
    try {
      const job = await api.submitConversion({
        file: state.file,
        profileId,
        pitchShift,
        autoKey,
        preset: $("#convert-preset").value,
        separation: $("#convert-separation").value,
        accompaniment: $("#acc-file").files[0] || null,
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
