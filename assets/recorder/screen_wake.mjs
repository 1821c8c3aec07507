// Phones: the screen stays on while recording. A phone that locks its screen suspends the page, and the recording
// with it; where the browser cannot keep the screen awake, the user is told to keep it on.

export const SCREEN_HINT =
  "Keep this page open and the screen on while recording: this browser cannot keep the screen awake, " +
  "and a phone may stop recording when its screen locks.";

export class ScreenWake {
  constructor(isRecording, showHint) {
    this.isRecording = isRecording;
    this.showHint = showHint; // called with the hint's text, or null to take it away
    this.lock = null;
    this.pending = false;
  }
  async keep() {
    // The browser lets the lock go whenever the page is hidden, so this runs again when it is shown.
    if (!this.isRecording() || this.lock || this.pending || document.visibilityState !== "visible") return;
    if (!navigator.wakeLock) return this.showHint(SCREEN_HINT);
    this.pending = true;
    try {
      const lock = await navigator.wakeLock.request("screen");
      lock.addEventListener("release", () => {
        if (this.lock === lock) this.lock = null;
      });
      this.lock = lock;
      this.showHint(null);
      if (!this.isRecording()) this.release(); // stopped while the browser was deciding
    } catch (error) {
      if (this.isRecording()) this.showHint(SCREEN_HINT); // refused, e.g. to save the battery
    } finally {
      this.pending = false;
    }
  }
  release() {
    this.lock?.release().catch(() => {});
    this.lock = null;
    this.showHint(null);
  }
}
