// Microphone recording: MediaRecorder captures (webm/opus or ogg), then the take is decoded and
// re-encoded as 16-bit mono WAV, which every server accepts without FFmpeg. When the browser cannot
// decode its own recording, the original webm/ogg is sent instead (the server decodes it with FFmpeg).

/** Why recording is unavailable here, or null when it is available. */
export function recordingUnavailableReason() {
  if (!window.isSecureContext) {
    return "Recording needs a secure page (https:// or http://localhost). Upload files instead.";
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
    return "This browser cannot record audio. Upload files instead.";
  }
  return null;
}

function pickMime() {
  for (const t of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"]) {
    if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(t)) return t;
  }
  return "";
}

/** 16-bit PCM mono WAV bytes of Float32 samples. */
export function encodeWav(samples, sr) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const str = (o, t) => [...t].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
  str(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 2, true);
  str(8, "WAVE");
  str(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, sr, true);
  v.setUint32(28, sr * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  str(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, x < 0 ? x * 0x8000 : x * 0x7fff, true);
  }
  return new Blob([buf], { type: "audio/wav" });
}

async function toWav(blob) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  const ctx = new Ctx();
  try {
    const audio = await ctx.decodeAudioData(await blob.arrayBuffer());
    const mono = new Float32Array(audio.length);
    for (let c = 0; c < audio.numberOfChannels; c++) {
      const ch = audio.getChannelData(c);
      for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / audio.numberOfChannels;
    }
    return { blob: encodeWav(mono, audio.sampleRate), duration: audio.duration, ext: "wav" };
  } finally {
    ctx.close();
  }
}

export class Recorder {
  constructor() {
    this.stream = null;
    this.rec = null;
    this.chunks = [];
    this.startedAt = 0;
  }

  get recording() {
    return Boolean(this.rec && this.rec.state === "recording");
  }

  get elapsed() {
    return this.recording ? (performance.now() - this.startedAt) / 1000 : 0;
  }

  /** Ask for the microphone and start; raises an Error with a readable message. */
  async start() {
    try {
      // Raw audio: the browser's voice-call processing would colour the voice the profile learns.
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
    } catch (err) {
      const name = err && err.name;
      const msg = name === "NotAllowedError" || name === "SecurityError"
        ? "Microphone access was denied. Allow it in the browser's site settings, or upload files instead."
        : name === "NotFoundError"
          ? "No microphone was found. Connect one, or upload files instead."
          : `The microphone could not be opened (${name || err}).`;
      const e = new Error(msg);
      e.code = "microphone_unavailable";
      throw e;
    }
    const mimeType = pickMime();
    this.rec = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    this.chunks = [];
    this.rec.addEventListener("dataavailable", (ev) => ev.data && ev.data.size && this.chunks.push(ev.data));
    this.rec.start(250);
    this.startedAt = performance.now();
  }

  /** Stop; resolves to {blob, ext, duration} (WAV when the browser can decode its recording). */
  stop() {
    return new Promise((resolve, reject) => {
      if (!this.rec) {
        reject(new Error("Not recording."));
        return;
      }
      const rec = this.rec;
      rec.addEventListener("stop", async () => {
        this.stream.getTracks().forEach((t) => t.stop());
        const type = rec.mimeType || "audio/webm";
        const raw = new Blob(this.chunks, { type });
        this.rec = null;
        this.stream = null;
        try {
          resolve(await toWav(raw));
        } catch {
          const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
          resolve({ blob: raw, duration: NaN, ext });
        }
      }, { once: true });
      rec.stop();
    });
  }
}
