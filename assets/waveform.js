// A recording's waveform: bars from stored peaks, the played part highlighted, a click or a key seeks the player.
export default {
  template: `
    <canvas ref="canvas" class="vr-waveform" height="48" role="slider" tabindex="0"
            aria-label="Waveform: click to seek" aria-valuemin="0" aria-valuemax="100" :aria-valuenow="percent"
            @click="seekTo($event)" @keydown.left.prevent="step(-5)" @keydown.right.prevent="step(5)"></canvas>`,
  props: { peaks: Array, audioId: Number },
  data() {
    return { percent: 0 };
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
    this.audio?.removeEventListener("timeupdate", this.onTime);
  },
  methods: {
    attach() {
      const audio = getHtmlElement(this.audioId); // NiceGUI's global (api/nicegui_internals.py lists it)
      if (audio && audio !== this.audio) {
        this.audio?.removeEventListener("timeupdate", this.onTime);
        this.audio = audio;
        audio.addEventListener("timeupdate", this.onTime);
        audio.addEventListener("loadedmetadata", this.onTime);
        this.draw();
      }
    },
    fraction() {
      const audio = this.audio;
      return audio && isFinite(audio.duration) && audio.duration > 0 ? audio.currentTime / audio.duration : 0;
    },
    seekFraction(fraction) {
      const audio = this.audio;
      if (!audio) return;
      const go = () => (audio.currentTime = Math.max(0, Math.min(1, fraction)) * audio.duration);
      if (isFinite(audio.duration)) go();
      else audio.addEventListener("loadedmetadata", go, { once: true });
    },
    seekTo(event) {
      const box = this.$refs.canvas.getBoundingClientRect();
      this.seekFraction((event.clientX - box.left) / box.width);
    },
    step(percent) {
      this.seekFraction(this.fraction() + percent / 100);
    },
    draw() {
      const canvas = this.$refs.canvas;
      if (!canvas || !this.peaks?.length) return;
      const width = canvas.clientWidth || 300;
      canvas.width = width * devicePixelRatio;
      canvas.height = 48 * devicePixelRatio;
      const context = canvas.getContext("2d");
      context.scale(devicePixelRatio, devicePixelRatio);
      const played = this.fraction();
      this.percent = Math.round(played * 100);
      const bar = width / this.peaks.length;
      const dark = document.body.classList.contains("body--dark");
      this.peaks.forEach((peak, i) => {
        const height = Math.max(2, peak * 44);
        context.fillStyle = i / this.peaks.length < played ? "#e53935" : dark ? "#78909c" : "#b0bec5";
        context.fillRect(i * bar + bar * 0.15, (48 - height) / 2, Math.max(1, bar * 0.7), height);
      });
    },
  },
};
