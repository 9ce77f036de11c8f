// AudioWorklet processor for the Live tab: microphone samples out to the page (in chunks), converted
// samples in from the page (a small queue played as they come), and the levels of both.

class LiveIoProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.chunk = o.chunk || 640; // samples per message to the page
    this.prebuffer = o.prebuffer || 640; // samples queued before playback starts (a jitter margin)
    this.pending = new Float32Array(this.chunk);
    this.filled = 0;
    this.queue = []; // Float32Arrays of converted audio
    this.head = 0; // read position in queue[0]
    this.queued = 0;
    this.playing = false;
    this.underruns = 0;
    this.inPeak = 0;
    this.outPeak = 0;
    this.frames = 0;
    this.port.onmessage = (ev) => {
      const m = ev.data;
      if (m.type === "out") {
        this.queue.push(m.samples);
        this.queued += m.samples.length;
      } else if (m.type === "reset") {
        this.queue = [];
        this.head = 0;
        this.queued = 0;
        this.playing = false;
        this.filled = 0;
      }
    };
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    const output = outputs[0] && outputs[0][0];
    const n = output ? output.length : 128;
    if (input) {
      for (let i = 0; i < input.length; i++) {
        const v = input[i];
        const a = v < 0 ? -v : v;
        if (a > this.inPeak) this.inPeak = a;
        this.pending[this.filled++] = v;
        if (this.filled === this.chunk) {
          this.port.postMessage({ type: "in", samples: this.pending }, [this.pending.buffer]);
          this.pending = new Float32Array(this.chunk);
          this.filled = 0;
        }
      }
    }
    if (output) {
      if (!this.playing && this.queued >= this.prebuffer) this.playing = true;
      for (let i = 0; i < n; i++) {
        let v = 0;
        if (this.playing && this.queue.length) {
          const cur = this.queue[0];
          v = cur[this.head++];
          this.queued--;
          if (this.head >= cur.length) {
            this.queue.shift();
            this.head = 0;
          }
        } else if (this.playing) {
          this.underruns++;
          this.playing = false; // wait for the prebuffer again rather than crackle
        }
        output[i] = v;
        const a = v < 0 ? -v : v;
        if (a > this.outPeak) this.outPeak = a;
      }
    }
    this.frames += n;
    if (this.frames >= sampleRate / 20) { // levels 20 times a second
      this.port.postMessage({
        type: "levels", input: this.inPeak, output: this.outPeak, queued: this.queued, underruns: this.underruns,
      });
      this.inPeak = 0;
      this.outPeak = 0;
      this.frames = 0;
    }
    return true;
  }
}

registerProcessor("live-io", LiveIoProcessor);
