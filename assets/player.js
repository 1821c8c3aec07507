// A recording's own controls around a hidden <audio> (no native scrubber: the waveform is the one seek bar): play or
// pause, back and forward 15 s, the speed, and where it is. It also keeps the signed audio URL playable on a page
// left open for hours: a URL near the end of its lifetime is swapped for a fresh one before playing, and a load that
// fails (a 403 once it expired) is retried with a fresh one, resuming at the same moment.
import { clock } from "duration";
import { signedAt } from "signed_url";

const SPEEDS = [1, 1.25, 1.5, 2, 0.75];
const RETRIES = 2; // fresh URLs asked for in a row after errors, before the page says it cannot play


export default {
  template: `
    <div class="vr-player">
      <q-btn flat round icon="replay" class="vr-skip" aria-label="Back 15 seconds" data-testid="player-back"
             @click="skip(-15)"><span class="vr-skip-label" aria-hidden="true">15</span></q-btn>
      <q-btn round unelevated color="primary" :icon="playing ? 'pause' : 'play_arrow'" data-testid="player-play"
             :aria-label="playing ? 'Pause' : 'Play'" @click="toggle()" />
      <q-btn flat round icon="replay" class="vr-skip vr-skip--forward" aria-label="Forward 15 seconds"
             data-testid="player-forward" @click="skip(15)"><span class="vr-skip-label" aria-hidden="true">15</span></q-btn>
      <q-btn flat no-caps class="vr-speed" :label="rate + '×'" data-testid="player-speed"
             :aria-label="'Playback speed ' + rate + '×, change'" @click="nextSpeed()" />
      <span class="vr-player-time" data-testid="player-time">{{ clock(position) }} / {{ clock(duration) }}</span>
      <span v-if="failed" class="vr-player-error" role="alert">This recording cannot be played right now.</span>
    </div>`,
  props: { audioId: Number, durationMs: Number, lifetimeS: Number },
  data() {
    return { playing: false, position: 0, duration: (this.durationMs || 0) / 1000, rate: 1, failed: false };
  },
  mounted() {
    this.issued = Date.now(); // when the URL was signed: taken from the URL itself once the <audio> is attached
    this.retries = 0;
    this.handlers = {
      timeupdate: () => (this.position = this.audio.currentTime),
      seeking: () => (this.position = this.audio.currentTime),
      loadedmetadata: () => {
        // the stored length (counted from the sound itself) is the one the row shows; the file's only without it
        if (!this.durationMs && isFinite(this.audio.duration)) this.duration = this.audio.duration;
      },
      play: () => (this.playing = true),
      pause: () => (this.playing = false),
      playing: () => (this.retries = 0),
      error: () => this.recover(),
    };
    this.timer = setInterval(() => this.attach(), 250);
    this.attach();
  },
  unmounted() {
    clearInterval(this.timer);
    this.detach();
  },
  methods: {
    clock,
    attach() {
      const audio = getHtmlElement(this.audioId); // NiceGUI's global (api/nicegui_internals.py lists it)
      if (!audio || audio === this.audio) return;
      this.detach();
      this.audio = audio;
      this.issued = signedAt(audio.src, this.lifetimeS, this.askedAt || performance.timeOrigin);
      for (const [name, handler] of Object.entries(this.handlers)) audio.addEventListener(name, handler);
      if (audio.error) this.recover(); // it failed before this element was there to hear it
    },
    detach() {
      if (!this.audio) return;
      for (const [name, handler] of Object.entries(this.handlers)) this.audio.removeEventListener(name, handler);
    },
    stale() {
      // swapped a little before the server's expiry: the URL was signed before this page was shown
      const margin = Math.min(60, this.lifetimeS / 4);
      return Date.now() - this.issued > (this.lifetimeS - margin) * 1000;
    },
    toggle() {
      this.attach();
      if (!this.audio) return;
      if (!this.audio.paused) return this.audio.pause();
      if (this.stale()) return this.refresh(this.audio.currentTime, true);
      this.audio.play().catch(() => {}); // a failure arrives as an error event
    },
    skip(seconds) {
      this.attach();
      const audio = this.audio;
      if (!audio) return;
      const end = isFinite(audio.duration) ? audio.duration : this.duration;
      const target = Math.max(0, Math.min(end, audio.currentTime + seconds));
      if (this.stale()) return this.refresh(target, !audio.paused);
      audio.currentTime = target;
      this.position = target;
    },
    nextSpeed() {
      this.rate = SPEEDS[(SPEEDS.indexOf(this.rate) + 1) % SPEEDS.length];
      if (this.audio) this.audio.playbackRate = this.rate;
    },
    recover() {
      if (this.asking) return;
      if (this.retries >= RETRIES) {
        this.failed = true;
        return;
      }
      this.retries += 1;
      this.refresh(this.position, this.playing);
    },
    refresh(position, play) {
      // the server answers with useUrl(); until then a second request would only repeat the first
      this.resumeAt = { position, play };
      if (this.asking) return;
      this.asking = true;
      this.askedAt = Date.now();
      this.$emit("refresh");
    },
    useUrl(url) {
      const audio = this.audio;
      this.asking = false;
      this.issued = signedAt(url, this.lifetimeS, this.askedAt);
      if (!audio) return;
      const { position, play } = this.resumeAt || { position: audio.currentTime, play: false };
      this.resumeAt = null;
      this.failed = false;
      audio.addEventListener(
        "loadedmetadata",
        () => {
          audio.currentTime = position;
          audio.playbackRate = this.rate;
          if (play) audio.play().catch(() => {});
        },
        { once: true },
      );
      audio.src = url;
      audio.load();
    },
  },
};
