// Entry point: tabs, the API key panel, server info, and the three sections.

import { api, getApiKey, isKeyRemembered, loadStoredKey, onKeyChange, setApiKey } from "./api.js";
import { initConvert, refreshCatalog, selectProfile } from "./convert.js";
import { initLive } from "./live.js";
import { initSpeak, refreshVoices } from "./speak.js";
import { $, clearError, onAuthError, showError } from "./ui.js";
import { initVoices, refreshProfiles } from "./voices.js";

// -- tabs (WAI-ARIA tabs pattern: arrows/Home/End move, the URL hash remembers the section) ----------
const tabs = [...document.querySelectorAll('[role="tab"]')];

function selectTab(name, { focus = false } = {}) {
  const tab = tabs.find((t) => t.id === `tab-${name}`) || tabs[0];
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", on ? "true" : "false");
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  const hash = `#${tab.id.slice(4)}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function setupTabs() {
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(t.id.slice(4)));
    t.addEventListener("keydown", (ev) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(ev.key in moves)) return;
      ev.preventDefault();
      const j = (moves[ev.key] + tabs.length) % tabs.length;
      selectTab(tabs[j].id.slice(4), { focus: true });
    });
  });
  window.addEventListener("hashchange", () => selectTab(location.hash.slice(1)));
  selectTab(location.hash.slice(1) || "voices");
}

// -- API key ---------------------------------------------------------------------------------------------
function keyState() {
  const key = getApiKey();
  $("#key-state").textContent = !key ? "none" : isKeyRemembered() ? "remembered" : "this tab only";
}

function openKeyPanel(open) {
  $("#key-panel").hidden = !open;
  $("#key-toggle").setAttribute("aria-expanded", open ? "true" : "false");
  if (open) $("#key-input").focus();
}

async function reloadData() {
  await Promise.all([refreshProfiles(), refreshVoices(), refreshCatalog(), serverInfo()]);
}

function setupKey() {
  loadStoredKey();
  $("#key-input").value = getApiKey() || "";
  $("#key-remember").checked = isKeyRemembered();
  keyState();
  onKeyChange(keyState);
  $("#key-toggle").addEventListener("click", () => openKeyPanel($("#key-panel").hidden));
  $("#key-panel").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      openKeyPanel(false);
      $("#key-toggle").focus();
    }
  });
  $("#key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    setApiKey($("#key-input").value, { remember: $("#key-remember").checked });
    clearError($("#global-error"));
    openKeyPanel(false);
    $("#key-toggle").focus();
    await reloadData();
  });
  $("#key-remember").addEventListener("change", () => {
    // Unticking forgets the stored copy at once; ticking stores it when the key is used.
    if (!$("#key-remember").checked && getApiKey()) setApiKey(getApiKey(), { remember: false });
  });
  $("#key-forget").addEventListener("click", async () => {
    setApiKey(null);
    $("#key-input").value = "";
    $("#key-remember").checked = false;
    await reloadData();
  });
  onAuthError((err) => {
    showError($("#global-error"), err, { notify: false });
    openKeyPanel(true);
  });
}

async function serverInfo() {
  const out = $("#server-info");
  try {
    const h = await api.health();
    const q = h.queue || {};
    out.textContent = `AutoVoice ${h.version} · ${h.device} · ${q.mode || "?"} queue (${q.running ?? 0} running, ${q.depth ?? 0} waiting)`
      + (h.status !== "ok" ? ` · ${h.status}` : "");
  } catch (err) {
    out.textContent = `Server not reachable: ${err.message}`;
  }
}

function main() {
  setupTabs();
  setupKey();
  initVoices({
    onUse: (p) => {
      selectTab("convert", { focus: true });
      selectProfile(p.id);
    },
  });
  initConvert();
  initSpeak();
  initLive();
  reloadData();
  document.documentElement.dataset.ready = "true";
}

main();
