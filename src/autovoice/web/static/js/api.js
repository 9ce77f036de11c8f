// The public HTTP API (/api/v1), and nothing else: every request of the page goes through here.
//
// URLs are resolved against the page's own address, so the page also works behind a reverse proxy
// that serves AutoVoice under a path prefix (https://host/autovoice/).

const KEY_STORAGE = "autovoice.apiKey";
let apiKey = null;
const keyListeners = new Set();

/** An API error, normalised from `{"error": {"code", "message", "details"}}` or a transport failure. */
export class ApiError extends Error {
  constructor({ status = 0, code = "error", message = "Something went wrong.", details = {} } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

/** "message (code)", the way errors are shown on the page. */
export function describeError(err) {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  if (err && typeof err === "object" && "message" in err && "code" in err) {
    return `${err.message} (${err.code})`;
  }
  return `${(err && err.message) || String(err)} (client_error)`;
}

// -- API key ----------------------------------------------------------------------------------------
function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled (privacy mode, sandboxed frame)
  }
}

/** Load a remembered key (if the user chose to remember one) and return it. */
export function loadStoredKey() {
  const s = storage();
  apiKey = (s && s.getItem(KEY_STORAGE)) || null;
  return apiKey;
}

export function isKeyRemembered() {
  const s = storage();
  return Boolean(s && s.getItem(KEY_STORAGE));
}

/** Use `key` from now on; keep it in localStorage only when `remember` is true. */
export function setApiKey(key, { remember = false } = {}) {
  apiKey = (key || "").trim() || null;
  const s = storage();
  if (s) {
    if (remember && apiKey) s.setItem(KEY_STORAGE, apiKey);
    else s.removeItem(KEY_STORAGE);
  }
  keyListeners.forEach((fn) => fn(apiKey));
}

export function getApiKey() {
  return apiKey;
}

export function onKeyChange(fn) {
  keyListeners.add(fn);
}

// -- requests ---------------------------------------------------------------------------------------
export function apiUrl(path) {
  return new URL(path.replace(/^\//, ""), document.baseURI).toString();
}

function headers(extra = {}) {
  const h = { ...extra };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

async function errorFrom(res) {
  let body = null;
  let text = "";
  try {
    text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  const e = body && body.error;
  if (e && typeof e === "object") {
    return new ApiError({ status: res.status, code: e.code || `http_${res.status}`, message: e.message || res.statusText, details: e.details });
  }
  if (body && body.detail) {
    return new ApiError({ status: res.status, code: `http_${res.status}`, message: typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail) });
  }
  const reason = res.statusText || "error";
  let message = `The server answered HTTP ${res.status} ${reason}.`;
  if (res.status === 413) message = "The upload is larger than the server accepts.";
  if (res.status === 502 || res.status === 503 || res.status === 504) message = `The server is unavailable (HTTP ${res.status}); try again in a moment.`;
  return new ApiError({ status: res.status, code: `http_${res.status}`, message });
}

/** fetch() with the key, turning every failure into an ApiError. Returns the Response when ok. */
export async function request(method, path, { json, form, signal } = {}) {
  const init = { method, headers: headers({ Accept: "application/json, audio/*" }), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form; // the browser sets the multipart boundary
  }
  let res;
  try {
    res = await fetch(apiUrl(path), init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError({
      status: 0,
      code: "network_error",
      message: "Could not reach the AutoVoice server. Check that it is running and that your connection works.",
    });
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 429) {
      const after = res.headers.get("Retry-After");
      if (after) err.message += ` Try again in ${after} s.`;
      err.retryAfter = Number(after) || 1;
    }
    throw err;
  }
  return res;
}

async function getJson(path, opts) {
  const res = await request("GET", path, opts);
  return res.json();
}

// -- resources --------------------------------------------------------------------------------------
export const api = {
  health: () => getJson("health"),

  listProfiles: async () => (await getJson("api/v1/profiles")).profiles || [],

  /** files: File or Blob objects; a Blob needs a `name` (we pass [blob, name] pairs). */
  createProfile: async (name, files) => {
    const form = new FormData();
    form.append("name", name);
    for (const f of files) form.append("files", f.blob || f, f.name);
    return (await request("POST", "api/v1/profiles", { form })).json();
  },

  deleteProfile: (id) => request("DELETE", `api/v1/profiles/${encodeURIComponent(id)}`),

  listVoices: async () => (await getJson("api/v1/voices")).voices || [],

  /** What a conversion can choose from: {engines, f0_methods, separation, presets, metrics_levels, defaults}. */
  catalog: () => getJson("api/v1/engines"),

  /**
   * Start a conversion. `options` holds ConversionOptions fields (engine, f0_method, preset, pitch_shift,
   * auto_key, separation, metrics, engine_options); empty, null or false values are left out, so the
   * server's defaults apply.
   */
  submitConversion: async ({ file, profileId, accompaniment, options = {} }) => {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("profile_id", profileId);
    for (const [name, value] of Object.entries(options)) {
      if (value === null || value === undefined || value === "" || value === false) continue;
      form.append(name, value === true ? "true" : String(value));
    }
    if (accompaniment) form.append("accompaniment", accompaniment, accompaniment.name);
    return (await request("POST", "api/v1/conversions", { form })).json();
  },

  getJob: (id, opts) => getJson(`api/v1/conversions/${encodeURIComponent(id)}`, opts),

  cancelJob: (id) => request("DELETE", `api/v1/conversions/${encodeURIComponent(id)}`),

  /** The result audio as a Blob (fetched with the key, so it also works when keys are required). */
  jobAudio: async (id, stem = "mix") =>
    (await request("GET", `api/v1/conversions/${encodeURIComponent(id)}/audio?stem=${encodeURIComponent(stem)}`)).blob(),

  /** WebSocket URL of a job's events; browsers cannot set headers there, so the key goes in ?api_key=. */
  eventsUrl: (id) => {
    const u = new URL(apiUrl(`api/v1/conversions/${encodeURIComponent(id)}/events`));
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (apiKey) u.searchParams.set("api_key", apiKey);
    return u.toString();
  },

  tts: async ({ text, voice, profileId, speed }) => {
    const body = { text, format: "wav" };
    if (voice) body.voice = voice;
    if (profileId) body.profile_id = profileId;
    if (speed && Math.abs(speed - 1) > 1e-6) body.speed = speed;
    return (await request("POST", "api/v1/tts", { json: body })).blob();
  },
};
