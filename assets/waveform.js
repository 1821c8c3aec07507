// A recording's waveform, the player's one seek bar: bars from stored peaks (a flat line until they exist), the played
// part highlighted. A click or a drag seeks, and it is a slider for the keyboard: arrows step 5 s, Page Up/Down 15 s,
// Home and End go to the ends.
import { clock } from "duration";

export default {
  template: `
    <canvas ref="canvas" class="vr-waveform" height="48" role="slider" tabindex="0" :aria-label="label"
            aria-valuemin="0" :aria-valuemax="Math.floor(duration)" :aria-valuenow="Math.floor(position)"
            :aria-valuetext="clock(position) + ' of ' + clock(duration)"
            @pointerdown="press($event)" @pointermove="drag($event)" @pointerup="release($event)"
            @pointercancel="release($event)" @keydown="key($event)"></canvas>`,
  props: { peaks: Array, audioId: Number, durationMs: Number, label: { type: String, default: "Seek" } },
  data() {
    return { position: 0, duration: (this.durationMs || 0) / 1000 };
  },
  mounted() {
    this.onTime = () => this.draw();
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.$refs.canvas);
    this.timer = setInterval(() => this.attach(), 250);
    this.attach();
  },
  unmounted() {
    clearInterval(this.timer);
    this.resize.disconnect();
    for (const name of ["timeupdate", "seeking", "loadedmetadata"]) this.audio?.removeEventListener(name, this.onTime);
  },
  methods: {
    clock,
    attach() {
      const audio = getHtmlElement(this.audioId); // NiceGUI's global (api/nicegui_internals.py lists it)
      if (audio && audio !== this.audio) {
        for (const name of ["timeupdate", "seeking", "loadedmetadata"]) {
          this.audio?.removeEventListener(name, this.onTime);
          audio.addEventListener(name, this.onTime);
        }
        this.audio = audio;
        this.draw();
      }
    },
    length() {
      // seeking needs the file's own length; the label says the stored one, as the row and the player do
      const audio = this.audio;
      return audio && isFinite(audio.duration) && audio.duration > 0 ? audio.duration : this.durationMs / 1000;
    },
    seekSeconds(seconds) {
      this.attach();
      const audio = this.audio;
      if (!audio) return;
      const go = () => {
        audio.currentTime = Math.max(0, Math.min(this.length(), seconds));
        this.draw();
      };
      if (audio.readyState >= 1) go();
      else {
        audio.addEventListener("loadedmetadata", go, { once: true });
        if (audio.networkState === HTMLMediaElement.NETWORK_EMPTY) audio.load();
      }
    },
    seekAt(event) {
      const box = this.$refs.canvas.getBoundingClientRect();
      this.seekSeconds(((event.clientX - box.left) / box.width) * this.length());
    },
    press(event) {
      this.dragging = true;
      this.$refs.canvas.setPointerCapture?.(event.pointerId);
      this.seekAt(event);
    },
    drag(event) {
      if (this.dragging) this.seekAt(event);
    },
    release(event) {
      this.dragging = false;
      this.$refs.canvas.releasePointerCapture?.(event.pointerId);
    },
    key(event) {
      const now = this.audio ? this.audio.currentTime : 0;
      const targets = {
        ArrowLeft: now - 5, ArrowDown: now - 5, ArrowRight: now + 5, ArrowUp: now + 5,
        PageDown: now - 15, PageUp: now + 15, Home: 0, End: this.length(),
      };
      if (!(event.key in targets)) return;
      event.preventDefault();
      this.seekSeconds(targets[event.key]);
    },
    draw() {
      const canvas = this.$refs.canvas;
      if (!canvas) return;
      this.duration = this.durationMs ? this.durationMs / 1000 : this.length();
      this.position = this.audio ? this.audio.currentTime : 0;
      const width = canvas.clientWidth || 300;
      canvas.width = width * devicePixelRatio;
      canvas.height = 48 * devicePixelRatio;
      const context = canvas.getContext("2d");
      context.scale(devicePixelRatio, devicePixelRatio);
      const played = this.length() > 0 ? this.position / this.length() : 0;
      const dark = document.body.classList.contains("body--dark");
      const peaks = this.peaks?.length ? this.peaks : new Array(100).fill(0.04);
      const bar = width / peaks.length;
      peaks.forEach((peak, i) => {
        const height = Math.max(2, peak * 44);
        context.fillStyle = i / peaks.length < played ? "#e53935" : dark ? "#78909c" : "#90a4ae";
        context.fillRect(i * bar + bar * 0.15, (48 - height) / 2, Math.max(1, bar * 0.7), height);
      });
    },
  },
};
