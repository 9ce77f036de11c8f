// Voices: build a profile from uploaded or recorded samples and/or a trained model (RVC, Applio,
// so-vits-svc); list profiles (range strip, sample quality report, trained models); import and delete
// models; delete profiles.

import { api, request } from "./api.js";
import { pianoRoll } from "./charts.js";
import { Recorder, recordingUnavailableReason } from "./recorder.js";
import { $, clearError, el, fmt, formatBytes, formatSeconds, profileStore, setBusy, showError } from "./ui.js";

// On a phone the strip shows the octaves around the voice only; wider screens show C2..C6 for all.
const narrow = window.matchMedia("(max-width: 560px)");
const samples = []; // [{name, blob, url?, duration?, recorded}]
let takeCount = 0;

function renderSamples() {
  const list = $("#sample-list");
  list.replaceChildren();
  samples.forEach((sm, i) => {
    const remove = el("button", {
      type: "button", class: "btn btn-small btn-quiet", "aria-label": `Remove ${sm.name}`,
      onclick: () => {
        if (sm.url) URL.revokeObjectURL(sm.url);
        samples.splice(i, 1);
        renderSamples();
        $("#profile-files").focus();
      },
    }, "Remove");
    const meta = [formatBytes(sm.blob.size), Number.isFinite(sm.duration) ? `${sm.duration.toFixed(1)} s` : null].filter(Boolean).join(" · ");
    list.append(el("li", { class: "sample" },
      el("span", { class: "sample-name" }, sm.name, sm.recorded ? el("span", { class: "tag", text: "recorded" }) : null),
      el("span", { class: "hint" }, meta),
      remove,
      sm.url ? el("audio", { controls: true, src: sm.url, preload: "metadata", "aria-label": `Listen to ${sm.name}` }) : null));
  });
  const total = samples.reduce((a, sm) => a + (Number.isFinite(sm.duration) ? sm.duration : 0), 0);
  list.setAttribute("aria-description", `${samples.length} recordings${total ? `, ${total.toFixed(0)} s` : ""}`);
}

function addFiles(files) {
  for (const f of files) {
    if (!f.type.startsWith("audio/") && !/\.(wav|flac|ogg|oga|mp3|m4a|aac|opus|webm|aiff?)$/i.test(f.name)) {
      showError($("#profile-error"), { code: "unsupported_format", message: `'${f.name}' does not look like an audio file.` });
      continue;
    }
    samples.push({ name: f.name, blob: f, recorded: false });
  }
  renderSamples();
}

/** Make a drop zone out of `zone` that feeds `onFiles` (the inner file input stays the keyboard path). */
export function dropZone(zone, input, onFiles) {
  input.addEventListener("change", () => {
    onFiles([...input.files]);
    input.value = "";
  });
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("dragover");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragover"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("dragover");
    if (ev.dataTransfer && ev.dataTransfer.files.length) onFiles([...ev.dataTransfer.files]);
  });
}

function setupRecorder() {
  const btn = $("#record-btn");
  const status = $("#record-status");
  const time = $("#record-time");
  const reason = recordingUnavailableReason();
  if (reason) {
    btn.disabled = true;
    status.textContent = reason;
    time.hidden = true;
    return;
  }
  const rec = new Recorder();
  let timer = null;
  btn.addEventListener("click", async () => {
    clearError($("#profile-error"));
    if (!rec.recording) {
      try {
        await rec.start();
      } catch (err) {
        showError($("#profile-error"), err);
        return;
      }
      btn.setAttribute("aria-pressed", "true");
      btn.classList.add("recording");
      $(".btn-text", btn).textContent = "Stop recording";
      status.textContent = "Recording… speak or sing, then press Stop.";
      timer = setInterval(() => { time.textContent = formatSeconds(rec.elapsed); }, 250);
      return;
    }
    clearInterval(timer);
    btn.disabled = true;
    status.textContent = "Preparing the take…";
    try {
      const take = await rec.stop();
      takeCount += 1;
      const name = `recording-${takeCount}.${take.ext}`;
      samples.push({ name, blob: take.blob, url: URL.createObjectURL(take.blob), duration: take.duration, recorded: true });
      renderSamples();
      status.textContent = `Added ${name}${Number.isFinite(take.duration) ? ` (${take.duration.toFixed(1)} s)` : ""}.`;
    } catch (err) {
      showError($("#profile-error"), err);
      status.textContent = "";
    } finally {
      btn.disabled = false;
      btn.setAttribute("aria-pressed", "false");
      btn.classList.remove("recording");
      $(".btn-text", btn).textContent = "Record with microphone";
      time.textContent = "0:00";
    }
  });
}

// -- trained models ------------------------------------------------------------------------------------
const MODEL_PARTS = [
  { role: "model", label: "Model (.pth)", accept: ".pth,.pt", hint: "RVC / Applio .pth, or so-vits-svc G_*.pth" },
  { role: "index", label: "Index (.index, optional)", accept: ".index", hint: "RVC's FAISS index" },
  { role: "config", label: "config.json (so-vits-svc)", accept: ".json,application/json", hint: "needed for so-vits-svc" },
];

/** File inputs for a model's parts, with ids `${prefix}-model`, `${prefix}-index`, `${prefix}-config`. */
function modelInputs(prefix) {
  return MODEL_PARTS.map((part) => el("div", { class: "field" },
    el("label", { for: `${prefix}-${part.role}`, text: part.label }),
    el("input", { id: `${prefix}-${part.role}`, type: "file", accept: part.accept, "aria-describedby": `${prefix}-${part.role}-hint` }),
    el("span", { id: `${prefix}-${part.role}-hint`, class: "hint", text: part.hint })));
}

/** The chosen files of `modelInputs(prefix)` by role (only those chosen). */
function chosenModelFiles(prefix) {
  const out = {};
  for (const part of MODEL_PARTS) {
    const input = document.getElementById(`${prefix}-${part.role}`);
    if (input && input.files && input.files[0]) out[part.role] = input.files[0];
  }
  return out;
}

function clearModelInputs(prefix) {
  for (const part of MODEL_PARTS) {
    const input = document.getElementById(`${prefix}-${part.role}`);
    if (input) input.value = "";
  }
}

function appendModel(form, files) {
  for (const [role, file] of Object.entries(files)) form.append(role, file, file.name);
}

const modelApi = {
  createProfile: async (name, samples, model) => {
    const form = new FormData();
    form.append("name", name);
    for (const sm of samples) form.append("files", sm.blob, sm.name);
    appendModel(form, model);
    return (await request("POST", "api/v1/profiles", { form })).json();
  },
  addModel: async (profileId, model) => {
    const form = new FormData();
    appendModel(form, model);
    return (await request("POST", `api/v1/profiles/${encodeURIComponent(profileId)}/models`, { form })).json();
  },
  deleteModel: (profileId, modelId) =>
    request("DELETE", `api/v1/profiles/${encodeURIComponent(profileId)}/models/${encodeURIComponent(modelId)}`),
};

/** "RVC v2 (rvc-v2) · 48 kHz · F0 · index 768-d · 55.1 MB" */
export function describeModel(m) {
  const kind = m.kind === "sovits" ? "so-vits-svc" : "RVC";
  return [
    `${kind} ${m.variant || ""}`.trim(),
    m.sample_rate ? `${m.sample_rate / 1000} kHz` : null,
    m.f0 ? "F0" : "no F0",
    m.speakers > 1 ? `${m.speakers} speakers` : null,
    m.embedder,
    m.index_dim ? `index ${m.index_dim}-d` : null,
    formatBytes(m.size_bytes),
  ].filter(Boolean).join(" · ");
}

function modelSection(p, { onChanged }) {
  const prefix = `add-${p.id}`;
  const box = el("div", { class: "error-box", role: "alert" });
  const status = el("p", { class: "hint", role: "status" });
  const items = (p.models || []).map((m) => {
    const del = el("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete model ${m.name} of ${p.name}` }, "Delete model");
    del.addEventListener("click", async () => {
      del.disabled = true;
      clearError(box);
      try {
        await modelApi.deleteModel(p.id, m.id);
        await onChanged(`Deleted model ${m.name}.`);
      } catch (err) {
        del.disabled = false;
        showError(box, err);
      }
    });
    return el("li", { class: "model", dataset: { id: m.id } },
      el("span", { class: "model-name" }, el("strong", { text: m.name }), " ", el("span", { class: "tag", text: m.kind })),
      el("span", { class: "hint model-meta", text: describeModel(m) }),
      del);
  });
  const addBtn = el("button", { type: "button", class: "btn btn-small" }, "Import model");
  addBtn.addEventListener("click", async () => {
    clearError(box);
    const files = chosenModelFiles(prefix);
    if (!files.model) {
      showError(box, { code: "invalid_parameter", message: "Choose the model's .pth file." });
      document.getElementById(`${prefix}-model`).focus();
      return;
    }
    addBtn.disabled = true;
    status.textContent = "Uploading and checking the model…";
    try {
      const m = await modelApi.addModel(p.id, files);
      clearModelInputs(prefix);
      await onChanged(`Imported ${m.name} (${describeModel(m)}).`);
    } catch (err) {
      status.textContent = "";
      showError(box, err);
    } finally {
      addBtn.disabled = false;
    }
  });
  return el("div", { class: "models" },
    el("h4", { text: items.length ? "Trained models" : "No trained model" }),
    items.length ? el("ul", { class: "model-list", "aria-label": `Trained models of ${p.name}` }, items) : null,
    el("details", { class: "model-import" },
      el("summary", {}, "Import a trained model"),
      el("div", { class: "model-files" }, modelInputs(prefix)),
      el("div", { class: "actions" }, addBtn),
      status),
    box);
}

/** A profile with a trained model converts with its engine: preselect it in the Convert tab. */
function preselectEngine(p) {
  const kind = p.models && p.models.length ? p.models[0].kind : null;
  const select = document.getElementById("convert-engine");
  if (!kind || !select || ![...select.options].some((o) => o.value === kind)) return;
  select.value = kind;
  select.dispatchEvent(new Event("change"));
}

function qualityList(q) {
  const rows = [
    ["Audio", `${fmt(q.duration_s, 1)} s in ${q.n_samples} file${q.n_samples === 1 ? "" : "s"}`],
    ["Voiced", `${fmt(q.voiced_s, 1)} s`],
    ["Signal to noise", `${fmt(q.snr_db, 1)} dB`],
    ["Clipped", `${fmt(100 * q.clipped_fraction, 2)} %`],
    ["Silence", `${fmt(100 * q.silence_ratio, 0)} %`],
  ];
  return el("dl", { class: "kv" }, rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

function profileCard(p, { onDelete, onUse, onChanged }) {
  const r = p.vocal_range || {};
  const q = p.quality || {};
  const recorded = Boolean(p.quality);
  const headingId = `profile-${p.id}-name`;
  const created = p.created_at ? new Date(p.created_at) : null;
  const warnings = (q.warnings || []).length
    ? el("ul", { class: "warnings", "aria-label": "Sample warnings" }, q.warnings.map((w) => el("li", { text: w })))
    : el("p", { class: "ok", text: "No problems found in the samples." });
  const actions = el("div", { class: "actions" });
  const useBtn = el("button", {
    type: "button", class: "btn btn-small",
    onclick: () => {
      onUse(p);
      preselectEngine(p);
    },
  }, "Convert with this voice");
  const delBtn = el("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete profile ${p.name}` }, "Delete");
  delBtn.addEventListener("click", () => {
    // Inline confirmation instead of window.confirm(): keyboard- and screen-reader-friendly.
    const confirmBtn = el("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `Really delete ${p.name}` }, "Really delete");
    const cancelBtn = el("button", { type: "button", class: "btn btn-small" }, "Keep");
    const box = el("span", { class: "confirm", role: "group", "aria-label": `Confirm deleting ${p.name}` }, `Delete “${p.name}”? `, confirmBtn, cancelBtn);
    actions.replaceChildren(useBtn, box);
    confirmBtn.focus();
    cancelBtn.addEventListener("click", () => {
      actions.replaceChildren(useBtn, delBtn);
      delBtn.focus();
    });
    confirmBtn.addEventListener("click", () => onDelete(p, confirmBtn));
  });
  actions.append(useBtn, delBtn);
  return el("li", { class: "profile", dataset: { id: p.id } },
    el("article", { "aria-labelledby": headingId },
      el("div", { class: "profile-head" },
        el("h3", { id: headingId, text: p.name }),
        el("span", { class: "hint" }, `${p.id}${created && !Number.isNaN(created.valueOf()) ? ` · ${created.toLocaleString()}` : ""}`)),
      r.lowest_hz
        ? pianoRoll(r, { compact: narrow.matches })
        : el("p", { class: "hint", text: recorded ? "No range measured." : "No recordings: a trained model alone. Convert with a manual pitch (auto key needs recordings)." }),
      r.lowest_hz
        ? el("p", { class: "range-text" },
          el("strong", { text: `${r.lowest_note}–${r.highest_note}` }),
          ` (${fmt(r.lowest_hz, 0)}–${fmt(r.highest_hz, 0)} Hz, ${fmt(r.span_semitones, 1)} semitones) · tessitura ${(r.tessitura_notes || []).join("–")} · median ${r.median_note} · confidence ${r.confidence}`)
        : null,
      recorded
        ? el("details", { class: "quality" },
          el("summary", {}, "Sample quality", (q.warnings || []).length ? el("span", { class: "badge warn", text: `${q.warnings.length} warning${q.warnings.length > 1 ? "s" : ""}` }) : el("span", { class: "badge good", text: "good" })),
          qualityList(q),
          warnings,
          el("p", { class: "hint" }, `Samples: ${(p.samples || []).join(", ")}`))
        : null,
      modelSection(p, { onChanged }),
      actions));
}

export async function refreshProfiles() {
  const status = $("#profiles-status");
  const box = $("#profiles-error");
  try {
    const list = await api.listProfiles();
    clearError(box);
    profileStore.set(list);
    return list;
  } catch (err) {
    showError(box, err);
    status.textContent = "";
    $("#profile-list").setAttribute("aria-busy", "false");
    return null;
  }
}

function renderProfiles(list, { onUse }) {
  const ul = $("#profile-list");
  const status = $("#profiles-status");
  ul.replaceChildren();
  ul.setAttribute("aria-busy", "false");
  status.textContent = list.length ? `${list.length} profile${list.length > 1 ? "s" : ""}.` : "No voice profiles yet: create one above.";
  for (const p of list) {
    ul.append(profileCard(p, {
      onUse,
      onChanged: async (message) => {
        await refreshProfiles();
        $("#profiles-status").textContent = message;
      },
      onDelete: async (prof, btn) => {
        btn.disabled = true;
        try {
          await api.deleteProfile(prof.id);
          status.textContent = `Deleted ${prof.name}.`;
          await refreshProfiles();
          $("#profiles-heading").focus?.();
        } catch (err) {
          btn.disabled = false;
          showError($("#profiles-error"), err);
        }
      },
    }));
  }
}

export function initVoices({ onUse }) {
  dropZone($("#samples-drop"), $("#profile-files"), addFiles);
  $("#profile-model-files").append(...modelInputs("new-model"));
  setupRecorder();
  profileStore.subscribe((list) => renderProfiles(list, { onUse }));
  // Only the range strips change with the width: redrawing whole cards would close open panels and
  // drop chosen files (a full-page screenshot or a rotation flips the query back and forth).
  narrow.addEventListener("change", () => {
    for (const p of profileStore.get()) {
      const old = document.querySelector(`.profile[data-id="${p.id}"] .piano-roll`);
      if (old && p.vocal_range) old.replaceWith(pianoRoll(p.vocal_range, { compact: narrow.matches }));
    }
  });
  $("#profiles-refresh").addEventListener("click", () => {
    $("#profiles-status").textContent = "Loading…";
    $("#profile-list").setAttribute("aria-busy", "true");
    refreshProfiles();
  });

  $("#profile-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = $("#profile-error");
    clearError(box);
    const nameInput = $("#profile-name");
    const name = nameInput.value.trim();
    if (!name) {
      showError(box, { code: "invalid_parameter", message: "Give the profile a name." });
      nameInput.focus();
      return;
    }
    const model = chosenModelFiles("new-model");
    if ((model.index || model.config) && !model.model) {
      showError(box, { code: "invalid_parameter", message: "Choose the model's .pth file too (the index and config go with it)." });
      $("#profile-model").open = true;
      $("#new-model-model").focus();
      return;
    }
    if (!samples.length && !model.model) {
      showError(box, { code: "no_samples", message: "Add at least one recording (choose files, drop them, or record), or a trained model." });
      $("#profile-files").focus();
      return;
    }
    const btn = $("#profile-submit");
    setBusy(btn, $("#profile-busy"), true);
    $("#profile-busy-text").textContent = samples.length
      ? `Uploading and analysing ${samples.length} recording${samples.length > 1 ? "s" : ""}… this can take a minute.`
      : "Uploading and checking the model…";
    try {
      const prof = await modelApi.createProfile(name, samples, model);
      samples.forEach((sm) => sm.url && URL.revokeObjectURL(sm.url));
      samples.length = 0;
      renderSamples();
      clearModelInputs("new-model");
      nameInput.value = "";
      await refreshProfiles();
      const r = prof.vocal_range;
      const what = [r ? `${r.lowest_note}–${r.highest_note}` : null, ...(prof.models || []).map((m) => `${m.kind} model`)].filter(Boolean).join(", ");
      $("#profiles-status").textContent = `Created ${prof.name} (${what}).`;
      const card = document.querySelector(`.profile[data-id="${prof.id}"]`);
      if (card) {
        card.classList.add("fresh");
        card.scrollIntoView({ block: "nearest" });
      }
    } catch (err) {
      showError(box, err);
    } finally {
      setBusy(btn, $("#profile-busy"), false);
    }
  });
}
