// Live: the microphone through an AudioWorklet to WS /api/v1/live and back, with level meters,
// latency and drop counters. Audio on the socket is float32 little-endian mono at the context's rate.

import { apiUrl, getApiKey } from "./api.js";
import { $, clearError, fillProfileSelect, profileStore, showError } from "./ui.js";

const RATES = [16000, 24000, 32000, 44100, 48000];
let run = null; // the running stream: { ctx, node, ws, stream, ... }

function liveUrl() {
  const u = new URL(apiUrl("api/v1/live"));
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  const key = getApiKey();
  if (key) u.searchParams.set("api_key", key); // browsers cannot set headers on a WebSocket
  return u.toString();
}

function db(peak) {
  return peak > 0 ? Math.max(-60, 20 * Math.log10(peak)) : -60;
}

function setMeter(id, peak) {
  const m = $(id);
  m.value = db(peak) + 60;
  m.title = `${db(peak).toFixed(0)} dBFS`;
}

function show(name, value) {
  $(`#live-${name}`).textContent = value;
}

function setRunning(on) {
  $("#live-start").disabled = on;
  $("#live-stop").disabled = !on;
  for (const id of ["#live-profile", "#live-block"]) $(id).disabled = on;
  $("#live-state").textContent = on ? "Live" : "Stopped";
  $("#live-panel-status").dataset.running = on ? "true" : "false";
}

async function openContext() {
  // 16 kHz keeps the server's work and the socket's traffic small; browsers resample the microphone.
  let ctx = new AudioContext({ sampleRate: 16000, latencyHint: "interactive" });
  if (!RATES.includes(ctx.sampleRate)) {
    await ctx.close();
    ctx = new AudioContext({ latencyHint: "interactive" });
  }
  if (!RATES.includes(ctx.sampleRate)) {
    await ctx.close();
    throw { code: "invalid_sample_rate", message: `This browser's audio runs at ${ctx.sampleRate} Hz; live conversion needs one of ${RATES.join(", ")} Hz.` };
  }
  return ctx;
}

function controls() {
  const auto = $("#live-auto").checked;
  const block = $("#live-block").value;
  const doc = {
    block_ms: block === "auto" ? "auto" : Number(block),
    input_gain_db: Number($("#live-in-gain").value),
    output_gain_db: Number($("#live-out-gain").value),
  };
  if (auto) doc.auto_key = true;
  else doc.pitch_shift = Number($("#live-pitch").value);
  return doc;
}

async function start() {
  const box = $("#live-error");
  clearError(box);
  const profileId = $("#live-profile").value;
  if (!profileId) {
    showError(box, { code: "invalid_parameter", message: "Choose a voice first (create one in Voices)." });
    return;
  }
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    showError(box, { code: "unsupported_browser", message: "This browser has no microphone access or AudioWorklet (use a current browser over https or on localhost)." });
    return;
  }
  setRunning(true);
  const r = { sent: 0, received: 0, nextBlock: 0, sentAt: new Map(), rtts: [], block: 0 };
  run = r;
  try {
    r.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    r.ctx = await openContext();
    await r.ctx.audioWorklet.addModule(new URL("./live-worklet.js", import.meta.url));
    r.ws = new WebSocket(liveUrl());
    r.ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
      r.ws.onopen = resolve;
      r.ws.onerror = () => reject({ code: "live_unreachable", message: "The live connection could not be opened." });
    });
    const asked = controls();
    if (asked.block_ms === "auto") $("#live-state").textContent = "Measuring the server…";
    r.ws.send(JSON.stringify({ type: "start", profile_id: profileId, sample_rate: r.ctx.sampleRate, ...asked }));
    const started = await new Promise((resolve, reject) => {
      r.ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return;
        const m = JSON.parse(ev.data);
        if (m.type === "started") resolve(m);
        else if (m.type === "error") reject(m.error);
      };
      r.ws.onclose = () => reject({ code: "live_closed", message: "The server closed the live connection." });
    });
    r.block = started.block_samples;
    $("#live-state").textContent = "Live";
    show("latency", `${started.latency.total_ms.toFixed(0)} ms`);
    $("#live-latency").dataset.ms = String(started.latency.total_ms);
    showBlock(started);
    r.node = new AudioWorkletNode(r.ctx, "live-io", {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { chunk: Math.max(128, Math.round(r.block / 4)), prebuffer: r.block },
    });
    r.monitor = r.ctx.createGain();
    r.monitor.gain.value = $("#live-monitor").checked ? 1 : 0;
    r.ctx.createMediaStreamSource(r.stream).connect(r.node);
    r.node.connect(r.monitor).connect(r.ctx.destination);
    r.node.port.onmessage = (ev) => onWorklet(r, ev.data);
    r.ws.onmessage = (ev) => onSocket(r, ev.data);
    r.ws.onclose = () => { if (run === r) stop({ error: { code: "live_closed", message: "The server closed the live connection." } }); };
    await r.ctx.resume();
  } catch (err) {
    await stop({ error: err });
  }
}

function onWorklet(r, m) {
  if (m.type === "in") {
    if (!r.ws || r.ws.readyState !== 1) return;
    r.ws.send(m.samples.buffer);
    r.sent += m.samples.length;
    // When a whole block has gone out, remember the time: its converted block's arrival gives the round trip.
    while (r.block && (r.nextBlock + 1) * r.block <= r.sent) r.sentAt.set(r.nextBlock++, performance.now());
  } else if (m.type === "levels") {
    setMeter("#live-in-meter", m.input);
    setMeter("#live-out-meter", m.output);
    show("underruns", String(m.underruns));
  }
}

function onSocket(r, data) {
  if (typeof data === "string") {
    const m = JSON.parse(data);
    if (m.type === "stats") showStats(m.stats);
    else if (m.type === "error") showError($("#live-error"), m.error);
    return;
  }
  const k = r.received++;
  const t = r.sentAt.get(k);
  if (t !== undefined) {
    r.sentAt.delete(k);
    r.rtts.push(performance.now() - t);
    if (r.rtts.length > 200) r.rtts.shift();
    const sorted = [...r.rtts].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)];
    show("rtt", `${p50.toFixed(0)} ms`);
    $("#live-rtt").dataset.ms = String(p50);
  }
  show("blocks-out", String(r.received));
  $("#live-blocks-out").dataset.count = String(r.received);
  r.node.port.postMessage({ type: "out", samples: new Float32Array(data) }, [data]);
}

// The block in use and, when the server chose it, why (its measured p99 per block).
function showBlock(started) {
  const ms = started.latency.block_ms;
  const choice = started.block_choice;
  show("block-chosen", choice ? `${ms} ms (auto)` : `${ms} ms`);
  $("#live-block-chosen").dataset.ms = String(ms);
  $("#live-block-reason").textContent = choice
    ? `Measured on the server in ${choice.seconds.toFixed(1)} s: ${choice.reason}`
    : "Block as chosen above (not measured).";
}

function showStats(s) {
  show("dropped", `${s.dropped} of ${s.blocks}`);
  $("#live-dropped").dataset.count = String(s.dropped);
  show("p99", s.processing_ms_p99 == null ? "–" : `${s.processing_ms_p99.toFixed(1)} ms (${Math.round(100 * s.p99_share)} % of a block)`);
  if (s.pitch_shift != null) show("shift", `${s.pitch_shift > 0 ? "+" : ""}${s.pitch_shift.toFixed(1)} st`);
}

async function stop({ error = null } = {}) {
  const r = run;
  run = null;
  if (r) {
    if (r.ws && r.ws.readyState === 1) {
      r.ws.onclose = null;
      try { r.ws.send(JSON.stringify({ type: "stop" })); } catch { /* closing anyway */ }
      r.ws.close();
    }
    if (r.stream) r.stream.getTracks().forEach((t) => t.stop());
    if (r.ctx) await r.ctx.close().catch(() => {});
  }
  setMeter("#live-in-meter", 0);
  setMeter("#live-out-meter", 0);
  setRunning(false);
  if (error) showError($("#live-error"), error);
}

function sendSet(doc) {
  if (run && run.ws && run.ws.readyState === 1) run.ws.send(JSON.stringify({ type: "set", ...doc }));
}

export function initLive() {
  profileStore.subscribe((list) => fillProfileSelect($("#live-profile"), list, { emptyLabel: "No voices yet" }));
  $("#live-start").addEventListener("click", start);
  $("#live-stop").addEventListener("click", () => stop());
  $("#live-monitor").addEventListener("change", () => {
    if (run && run.monitor) run.monitor.gain.value = $("#live-monitor").checked ? 1 : 0;
  });
  $("#live-auto").addEventListener("change", () => { $("#live-pitch").disabled = $("#live-auto").checked; });
  for (const [id, field] of [["#live-in-gain", "input_gain_db"], ["#live-out-gain", "output_gain_db"]]) {
    $(id).addEventListener("input", () => {
      $(`${id}-out`).textContent = `${Number($(id).value) > 0 ? "+" : ""}${$(id).value} dB`;
      sendSet({ [field]: Number($(id).value) });
    });
  }
  $("#live-pitch").addEventListener("change", () => sendSet({ pitch_shift: Number($("#live-pitch").value) }));
  setRunning(false);
}
