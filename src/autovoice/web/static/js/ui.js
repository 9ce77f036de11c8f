// Small DOM helpers shared by the sections of the page.

import { ApiError, describeError } from "./api.js";

export const $ = (sel, root = document) => root.querySelector(sel);

/** el("p", {class: "hint", text: "hi"}, child, ...) -> HTMLElement (SVG when ns is given). */
export function el(tag, attrs = {}, ...children) {
  const node = attrs.ns ? document.createElementNS(attrs.ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false || k === "ns") continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.setAttribute("class", v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const authListeners = new Set();
/** Called with the error whenever a request is refused for a missing or bad key. */
export function onAuthError(fn) {
  authListeners.add(fn);
}

/**
 * Show an error readably (message, then the code) in `box`; returns the text shown. Key errors are
 * also passed to the onAuthError listeners unless `notify` is false.
 */
export function showError(box, err, { notify = true } = {}) {
  const text = describeError(err);
  box.replaceChildren();
  const code = err && err.code ? err.code : "client_error";
  const message = err && err.message ? err.message : String(err);
  box.append(
    el("p", { class: "error-message" }, el("strong", { text: "Error: " }), message, " ", el("code", { class: "error-code", text: `(${code})` })),
  );
  const details = err && err.details && err.details.errors;
  if (Array.isArray(details) && details.length > 1) {
    box.append(el("ul", {}, details.map((d) => el("li", { text: `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}` }))));
  }
  box.classList.add("shown");
  if (notify && err instanceof ApiError && (err.code === "api_key_required" || err.code === "invalid_api_key")) {
    authListeners.forEach((fn) => fn(err));
  }
  return text;
}

export function clearError(box) {
  box.replaceChildren();
  box.classList.remove("shown");
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

export function formatSeconds(s) {
  if (!Number.isFinite(s)) return "–";
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, "0")}`;
}

export function fmt(x, digits = 2) {
  return x === null || x === undefined || !Number.isFinite(Number(x)) ? "–" : Number(x).toFixed(digits);
}

export function signed(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(Number(x))) return "–";
  const v = Number(x);
  return `${v > 0 ? "+" : v < 0 ? "−" : "±"}${Math.abs(v).toFixed(digits)}`;
}

/** Save a Blob under `filename` through a temporary link (works for fetched, authenticated audio). */
export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Toggle a busy state: disable `button`, show `indicator`. */
export function setBusy(button, indicator, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", busy ? "true" : "false");
  if (indicator) indicator.hidden = !busy;
}

// -- a tiny shared store of profiles, so every select on the page stays in step -------------------
// Until the first list arrives nothing is rendered from it: an empty array before the answer would
// read "No voice profiles yet" while the page is still loading.
const profileListeners = new Set();
let profiles = [];
let profilesLoaded = false;
export const profileStore = {
  get: () => profiles,
  loaded: () => profilesLoaded,
  set(list) {
    profiles = list;
    profilesLoaded = true;
    profileListeners.forEach((fn) => fn(profiles));
  },
  subscribe(fn) {
    profileListeners.add(fn);
    if (profilesLoaded) fn(profiles);
  },
};

/** Fill a <select> with profiles, keeping the current choice when it still exists. */
export function fillProfileSelect(select, list, { emptyLabel = null, noneLabel = null } = {}) {
  const keep = select.value;
  select.replaceChildren();
  if (noneLabel) select.append(el("option", { value: "", text: noneLabel }));
  if (!list.length && emptyLabel && !noneLabel) select.append(el("option", { value: "", text: emptyLabel }));
  for (const p of list) {
    const range = p.vocal_range ? ` (${p.vocal_range.lowest_note}–${p.vocal_range.highest_note})` : "";
    select.append(el("option", { value: p.id, text: `${p.name}${range}` }));
  }
  if ([...select.options].some((o) => o.value === keep && keep)) select.value = keep;
}
