// Leaving or hiding the page: MediaRecorder hands over the audio it holds, so that chunk reaches IndexedDB instead
// of dying with the page. A reload keeps the old page alive until the next one answers (after the "leave?"
// dialog), so audio is handed over every 100 ms meanwhile, and only the last few ms are lost when the page goes.

const EVERY_MS = 100;
const FOR_AT_MOST_MS = 2000; // in case the user chose to stay

export class HandOver {
  constructor(recorder) {
    this.recorder = recorder; // a function: the MediaRecorder of the moment, if any
    this.leaving = null; // {until} while the page is being left
    this.timer = null;
  }
  now() {
    const recorder = this.recorder();
    if (recorder && recorder.state !== "inactive") recorder.requestData();
  }
  pageLeaving() {
    if (this.recorder()?.state === "recording") this.leaving = { until: null };
    this.now();
  }
  /** A chunk arrived: while the page is being left, ask for the next one soon. */
  chunkArrived() {
    if (!this.leaving) return;
    const now = performance.now();
    this.leaving.until ??= now + FOR_AT_MOST_MS;
    if (now > this.leaving.until) return (this.leaving = null);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(), EVERY_MS);
  }
  cancel() {
    clearTimeout(this.timer);
  }
}
