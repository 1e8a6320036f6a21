// Copies the processed microphone (first channel) to the page, 128 samples at a time.
class Recorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.on = true;
    this.port.onmessage = () => (this.on = false);
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (this.on && ch) this.port.postMessage({ t: currentTime, x: ch.slice() });
    return this.on;
  }
}
registerProcessor('recorder', Recorder);
