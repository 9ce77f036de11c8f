// Voices: build a profile from uploaded or recorded samples; list profiles (range strip + sample
// quality report); delete.

import { api } from "./api.js";
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

function profileCard(p, { onDelete, onUse }) {
  const r = p.vocal_range || {};
  const q = p.quality || {};
  const headingId = `profile-${p.id}-name`;
  const created = p.created_at ? new Date(p.created_at) : null;
  const warnings = (q.warnings || []).length
    ? el("ul", { class: "warnings", "aria-label": "Sample warnings" }, q.warnings.map((w) => el("li", { text: w })))
    : el("p", { class: "ok", text: "No problems found in the samples." });
  const actions = el("div", { class: "actions" });
  const useBtn = el("button", { type: "button", class: "btn btn-small", onclick: () => onUse(p) }, "Convert with this voice");
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
      r.lowest_hz ? pianoRoll(r, { compact: narrow.matches }) : el("p", { class: "hint", text: "No range measured." }),
      r.lowest_hz
        ? el("p", { class: "range-text" },
          el("strong", { text: `${r.lowest_note}–${r.highest_note}` }),
          ` (${fmt(r.lowest_hz, 0)}–${fmt(r.highest_hz, 0)} Hz, ${fmt(r.span_semitones, 1)} semitones) · tessitura ${(r.tessitura_notes || []).join("–")} · median ${r.median_note} · confidence ${r.confidence}`)
        : null,
      el("details", { class: "quality" },
        el("summary", {}, "Sample quality", (q.warnings || []).length ? el("span", { class: "badge warn", text: `${q.warnings.length} warning${q.warnings.length > 1 ? "s" : ""}` }) : el("span", { class: "badge good", text: "good" })),
        qualityList(q),
        warnings,
        el("p", { class: "hint" }, `Samples: ${(p.samples || []).join(", ")}`)),
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
    return null;
  }
}

function renderProfiles(list, { onUse }) {
  const ul = $("#profile-list");
  const status = $("#profiles-status");
  ul.replaceChildren();
  status.textContent = list.length ? `${list.length} profile${list.length > 1 ? "s" : ""}.` : "No voice profiles yet: create one above.";
  for (const p of list) {
    ul.append(profileCard(p, {
      onUse,
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
  setupRecorder();
  profileStore.subscribe((list) => renderProfiles(list, { onUse }));
  narrow.addEventListener("change", () => renderProfiles(profileStore.get(), { onUse }));
  $("#profiles-refresh").addEventListener("click", () => {
    $("#profiles-status").textContent = "Loading…";
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
    if (!samples.length) {
      showError(box, { code: "no_samples", message: "Add at least one recording (choose files, drop them, or record)." });
      $("#profile-files").focus();
      return;
    }
    const btn = $("#profile-submit");
    setBusy(btn, $("#profile-busy"), true);
    $("#profile-busy-text").textContent = `Uploading and analysing ${samples.length} recording${samples.length > 1 ? "s" : ""}… this can take a minute.`;
    try {
      const prof = await api.createProfile(name, samples.map((sm) => ({ blob: sm.blob, name: sm.name })));
      samples.forEach((sm) => sm.url && URL.revokeObjectURL(sm.url));
      samples.length = 0;
      renderSamples();
      nameInput.value = "";
      await refreshProfiles();
      $("#profiles-status").textContent = `Created ${prof.name} (${prof.vocal_range.lowest_note}–${prof.vocal_range.highest_note}).`;
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
