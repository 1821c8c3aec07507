// A recording's transcript: words as text, a click plays from that word, the spoken word is highlighted while
// playing. Collapsed to a few lines until the reader asks for all of it. Words are rendered as text, never markup.
import { clock } from "duration";

export default {
  template: `
    <div class="vr-transcript" :class="{ 'vr-transcript--collapsed': collapsed }">
      <p class="vr-transcript-text" ref="text">
        <template v-for="(segment, s) in segments" :key="s">
          <span v-for="(word, w) in segment[1]" :key="w" class="vr-word" :data-start="word[0]"
                :class="{ 'vr-word--current': current === word[0] }" role="button" tabindex="0"
                :title="'Play from ' + clock(word[0])" @click="playFrom(word[0])"
                @keydown.enter.prevent="playFrom(word[0])">{{ word[1] + " " }}</span>
        </template>
      </p>
      <button v-if="long" type="button" class="vr-transcript-toggle" data-testid="transcript-toggle"
              @click="collapsed = !collapsed">{{ collapsed ? "Show the whole transcript" : "Show less" }}</button>
    </div>`,
  props: { segments: Array, audioId: Number },
  data() {
    return { current: null, collapsed: true, long: false };
  },
  mounted() {
    this.starts = this.segments.flatMap((segment) => segment[1].map((word) => word[0]));
    this.onTime = () => this.follow();
    this.timer = setInterval(() => this.attach(), 250);
    this.attach();
    this.$nextTick(() => (this.long = this.$refs.text.scrollHeight > this.$refs.text.clientHeight + 4));
  },
  unmounted() {
    clearInterval(this.timer);
    this.audio?.removeEventListener("timeupdate", this.onTime);
  },
  methods: {
    attach() {
      const audio = getHtmlElement(this.audioId); // NiceGUI's global (api/nicegui_internals.py lists it)
      if (audio && audio !== this.audio) {
        this.audio?.removeEventListener("timeupdate", this.onTime);
        this.audio = audio;
        audio.addEventListener("timeupdate", this.onTime);
      }
    },
    follow() {
      // the last word that has started; a binary search keeps an hour's 9,000 words cheap at every tick
      const now = this.audio.currentTime * 1000;
      let low = 0;
      let high = this.starts.length - 1;
      let found = null;
      while (low <= high) {
        const middle = (low + high) >> 1;
        if (this.starts[middle] <= now) {
          found = this.starts[middle];
          low = middle + 1;
        } else high = middle - 1;
      }
      this.current = this.audio.paused && now === 0 ? null : found;
    },
    playFrom(ms) {
      this.attach();
      const audio = this.audio;
      if (!audio) return;
      const go = () => {
        audio.currentTime = ms / 1000;
        audio.play().catch(() => {});
      };
      if (audio.readyState >= 1) go();
      else {
        audio.addEventListener("loadedmetadata", go, { once: true });
        audio.load();
      }
    },
    clock(ms) {
      return clock(ms / 1000);
    },
  },
};
