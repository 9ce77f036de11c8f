// Speak: text -> POST /api/v1/tts -> play and download.

import { api } from "./api.js";
import { $, clearError, el, fillProfileSelect, profileStore, setBusy, showError } from "./ui.js";

let speechUrl = null;

export async function refreshVoices() {
  const sel = $("#speak-voice");
  try {
    const voices = await api.listVoices();
    const keep = sel.value;
    sel.replaceChildren();
    for (const v of voices) {
      const bits = [v.language_name || v.language, v.quality].filter(Boolean).join(", ");
      sel.append(el("option", { value: v.name, text: `${v.name}${bits ? ` (${bits})` : ""}` }));
    }
    if (!voices.length) sel.append(el("option", { value: "", text: "Server default voice" }));
    if ([...sel.options].some((o) => o.value === keep && keep)) sel.value = keep;
    clearError($("#speak-error"));
  } catch (err) {
    sel.replaceChildren(el("option", { value: "", text: "Server default voice" }));
    showError($("#speak-error"), err);
  }
}

export function initSpeak() {
  const text = $("#speak-text");
  const count = $("#speak-count");
  text.addEventListener("input", () => { count.textContent = `${text.value.length} / 5000 characters`; });
  const speed = $("#speak-speed");
  speed.addEventListener("input", () => { $("#speak-speed-out").textContent = `${Number(speed.value).toFixed(1)}×`; });
  profileStore.subscribe((list) => fillProfileSelect($("#speak-profile"), list, { noneLabel: "None: the voice as it is" }));

  $("#speak-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = $("#speak-error");
    clearError(box);
    const value = text.value.trim();
    if (!value) {
      showError(box, { code: "invalid_parameter", message: "Type a text to speak." });
      text.focus();
      return;
    }
    const btn = $("#speak-submit");
    setBusy(btn, $("#speak-busy"), true);
    try {
      const blob = await api.tts({
        text: value,
        voice: $("#speak-voice").value || null,
        profileId: $("#speak-profile").value || null,
        speed: Number(speed.value),
      });
      if (speechUrl) URL.revokeObjectURL(speechUrl);
      speechUrl = URL.createObjectURL(blob);
      const audio = $("#speech-audio");
      audio.src = speechUrl;
      $("#speech-download").href = speechUrl;
      $("#speech-card").hidden = false;
      audio.play().catch(() => {}); // autoplay may be refused; the controls are there
    } catch (err) {
      showError(box, err);
    } finally {
      setBusy(btn, $("#speak-busy"), false);
    }
  });
}
