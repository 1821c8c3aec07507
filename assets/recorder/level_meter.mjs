// The level meter: a bar that moves with the microphone's loudness, so the user sees that audio is coming in.
// It draws only while `isLive()` (recording, not paused) and rests at zero otherwise.
// At most FRAME_MS apart, and only when the level changed: a bar of loudness reads the same at 20 frames a second as
// at the screen's 60, for a third of the drawing (a phone's battery), and a paused meter draws its zero once.
const FRAME_MS = 50;

export class LevelMeter {
  constructor(canvas, isLive) {
    this.canvas = canvas; // a function: the canvas may come and go with the page
    this.isLive = isLive;
    this.audioContext = null;
    this.frame = null;
  }
  start(stream) {
    try {
      this.audioContext = new AudioContext();
      this.audioContext.resume().catch(() => {}); // Safari starts it suspended, and the meter would stay still
      const analyser = this.audioContext.createAnalyser();
      analyser.fftSize = 1024;
      this.audioContext.createMediaStreamSource(stream).connect(analyser);
      const samples = new Uint8Array(analyser.fftSize);
      let drawnAt = -Infinity;
      let shown = null; // [level, canvas]: a canvas the page made again is drawn on at once
      const draw = (now) => {
        if (!this.audioContext) return;
        this.frame = requestAnimationFrame(draw);
        if (now - drawnAt < FRAME_MS) return;
        drawnAt = now;
        analyser.getByteTimeDomainData(samples);
        let sum = 0;
        for (const value of samples) sum += ((value - 128) / 128) ** 2;
        const level = this.isLive() ? Math.min(1, Math.sqrt(sum / samples.length) * 4) : 0;
        if (!shown || shown[0] !== level || shown[1] !== this.canvas()) shown = [level, this.draw(level)];
      };
      this.frame = requestAnimationFrame(draw);
    } catch (error) {
      console.warn("level meter unavailable", error);
    }
  }
  stop() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.audioContext?.close();
    this.audioContext = null;
    this.draw(0);
  }
  draw(level) {
    // Drawn from the middle outwards, on a thin resting line, so it never reads as a progress bar; its colours
    // come from the page's CSS (light or dark theme).
    const canvas = this.canvas();
    if (!canvas) return null;
    const context = canvas.getContext("2d");
    const style = getComputedStyle(canvas);
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    context.fillStyle = style.getPropertyValue("--vr-meter-line").trim() || "#90a4ae";
    context.fillRect(0, height / 2 - 1, width, 2);
    const bar = width * level;
    context.fillStyle = level > 0.85 ? "#e53935" : style.getPropertyValue("--vr-meter-bar").trim() || "#2e7d32";
    if (context.roundRect) {
      context.beginPath();
      context.roundRect((width - bar) / 2, 0, bar, height, height / 2);
      context.fill();
    } else context.fillRect((width - bar) / 2, 0, bar, height);
    const value = String(Math.round(level * 100)); // a screen reader is told a new value only when it is one
    if (canvas.getAttribute("aria-valuenow") !== value) canvas.setAttribute("aria-valuenow", value);
    return canvas;
  }
}
