// The browser half of the recorder: MediaRecorder → numbered chunks → NiceGUI's own socket.io connection.
// Every chunk stays in memory until the server acknowledges that it is durable; unacknowledged chunks
// are resent on reconnect and with backoff, and Stop finalizes only once everything is uploaded.
// Controls are plain NiceGUI elements inside this one; they act here, in the browser, so Pause and Stop
// still work while the websocket is down.

const MIME_TYPES = [
  "audio/webm;codecs=opus",
  "audio/webm",
  "audio/ogg;codecs=opus",
  "audio/mp4;codecs=mp4a.40.2",
  "audio/mp4",
];
const ACK_TIMEOUT_MS = 10000;
const FINALIZE_TIMEOUT_MS = 180000;
const MAX_BACKOFF_MS = 8000;
const FATAL_STATUSES = [400, 403, 404, 409, 413, 422];

function formatClock(ms) {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${String(m).padStart(2, "0")}:${s}`;
}

function localLabel(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export default {
  template: `
    <div class="vr-recorder" :data-vr-state="state">
      <canvas ref="meter" class="vr-meter" width="320" height="14" data-testid="level-meter" role="meter"
              aria-label="microphone level"></canvas>
      <slot></slot>
    </div>`,
  props: {
    elementId: Number,
    maxChunkBytes: Number,
    timesliceMs: Number,
  },
  data() {
    return { state: "idle" };
  },
  mounted() {
    this.reset();
    this.ticker = setInterval(() => this.tick(), 250);
    this.onConnect = () => this.flush();
    this.onBeforeUnload = (event) => {
      if (this.state === "recording" || this.state === "paused" || this.pending.size > 0) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", this.onBeforeUnload);
    this.tick();
  },
  unmounted() {
    clearInterval(this.ticker);
    window.removeEventListener("beforeunload", this.onBeforeUnload);
    this.boundSocket?.off("connect", this.onConnect);
    this.releaseMicrophone();
  },
  methods: {
    reset() {
      this.pending = new Map(); // seq -> {blob, ms}
      this.inflight = new Set();
      this.nextSeq = 0;
      this.recordingId = null;
      this.creating = false;
      this.finalizing = false;
      this.stopped = false;
      this.elapsedBefore = 0;
      this.segmentStart = null;
      this.lastDataAt = null;
      this.backoffMs = 250;
      this.retryTimer = null;
      this.message = null;
    },

    // ---- controls -------------------------------------------------------------------------------
    async record() {
      if (["recording", "paused", "starting", "uploading", "finalizing"].includes(this.state)) return;
      if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
        return this.fail("This page cannot use the microphone: open it over https (or on localhost) in a current browser.");
      }
      this.reset();
      this.setState("starting");
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
      } catch (error) {
        const why = {
          NotAllowedError: "Microphone access was denied. Allow it in your browser's site settings and try again.",
          NotFoundError: "No microphone was found. Connect one and try again.",
          NotReadableError: "The microphone is busy in another application.",
        }[error.name];
        return this.fail(why || `The microphone could not be opened (${error.message}).`);
      }
      const mimeType = MIME_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
      this.stream = stream;
      this.recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
      this.mimeType = this.recorder.mimeType || mimeType || "audio/webm";
      this.recorder.ondataavailable = (event) => this.onData(event.data);
      this.recorder.onstop = () => this.onRecorderStopped();
      this.recorder.onerror = (event) => this.fail(`Recording failed: ${event.error?.message || "unknown error"}`);
      this.recorder.start(this.timesliceMs);
      this.segmentStart = this.lastDataAt = performance.now();
      this.startMeter(stream);
      this.setState("recording");
      this.createRecording();
    },
    pause() {
      if (this.state !== "recording") return;
      this.recorder.pause();
      this.elapsedBefore += performance.now() - this.segmentStart;
      this.segmentStart = null;
      this.setState("paused");
    },
    resume() {
      if (this.state !== "paused") return;
      this.recorder.resume();
      this.segmentStart = this.lastDataAt = performance.now();
      this.setState("recording");
    },
    stop() {
      if (this.state !== "recording" && this.state !== "paused") return;
      if (this.segmentStart !== null) this.elapsedBefore += performance.now() - this.segmentStart;
      this.segmentStart = null;
      this.setState("uploading");
      this.recorder.stop(); // fires the last dataavailable, then stop
    },

    // ---- chunks ---------------------------------------------------------------------------------
    onData(blob) {
      if (!blob || blob.size === 0) return;
      const now = performance.now();
      const ms = Math.max(0, now - this.lastDataAt);
      this.lastDataAt = now;
      // Seqs are taken synchronously, in event order; a large blob is split, which is lossless
      // because the server joins chunks byte for byte in seq order.
      const pieces = Math.ceil(blob.size / this.maxChunkBytes);
      for (let i = 0; i < pieces; i++) {
        const seq = this.nextSeq++;
        const piece = blob.slice(i * this.maxChunkBytes, (i + 1) * this.maxChunkBytes);
        this.pending.set(seq, { blob: piece, ms: ms / pieces });
        this.send(seq);
      }
    },
    onRecorderStopped() {
      this.stopped = true;
      this.releaseMicrophone();
      this.maybeFinalize();
    },
    socketReady() {
      const socket = window.socket;
      if (socket && this.boundSocket !== socket) {
        this.boundSocket?.off("connect", this.onConnect);
        socket.on("connect", this.onConnect);
        this.boundSocket = socket;
      }
      return Boolean(socket?.connected);
    },
    request(event, payload, timeoutMs) {
      return new Promise((resolve) => {
        if (!this.socketReady()) return resolve({ ok: false, retry: true, error: "offline" });
        const message = { client_id: window.clientId, element_id: this.elementId, ...payload };
        window.socket.timeout(timeoutMs).emit(event, message, (error, response) => {
          resolve(error ? { ok: false, retry: true, error: "no answer from the server" } : response);
        });
      });
    },
    async createRecording() {
      if (this.recordingId || this.creating) return;
      this.creating = true;
      const title = `Recording ${localLabel(new Date())}`;
      const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const response = await this.request("vr_create", { mime_type: this.mimeType, title, time_zone: timeZone }, ACK_TIMEOUT_MS);
      this.creating = false;
      if (response.ok) {
        this.recordingId = response.recording_id;
        this.backoffMs = 250;
        this.$emit("started", { recording_id: this.recordingId, time_zone: timeZone });
        this.flush();
      } else {
        this.handleFailure(response);
      }
    },
    flush() {
      if (!this.recordingId) return this.createRecording();
      for (const seq of this.pending.keys()) this.send(seq);
      this.maybeFinalize();
    },
    async send(seq) {
      if (!this.recordingId || this.inflight.has(seq) || !this.pending.has(seq)) return;
      this.inflight.add(seq);
      const data = await this.pending.get(seq).blob.arrayBuffer();
      const response = await this.request("vr_chunk", { recording_id: this.recordingId, seq, data }, ACK_TIMEOUT_MS);
      this.inflight.delete(seq);
      if (response.ok) {
        this.pending.delete(seq);
        this.backoffMs = 250;
        this.message = null;
        this.maybeFinalize();
      } else {
        this.handleFailure(response);
      }
    },
    async maybeFinalize() {
      if (!this.stopped || this.finalizing || !this.recordingId || this.pending.size > 0) return;
      if (this.nextSeq === 0) return this.fail("No audio was recorded.");
      this.finalizing = true;
      this.setState("finalizing");
      const response = await this.request("vr_finalize", { recording_id: this.recordingId, chunk_count: this.nextSeq }, FINALIZE_TIMEOUT_MS);
      this.finalizing = false;
      if (response.ok) {
        this.setState("saved");
        this.$emit("saved", response.recording);
      } else {
        this.setState("uploading");
        this.handleFailure(response);
      }
    },
    handleFailure(response) {
      if (!response.retry && FATAL_STATUSES.includes(response.status)) {
        return this.fail(`The server refused the audio: ${response.error}`);
      }
      this.message = response.error === "offline" ? null : `retrying: ${response.error}`;
      if (this.retryTimer) return;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.flush();
      }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    },
    fail(message) {
      this.releaseMicrophone();
      this.message = message;
      this.setState("error");
      this.$emit("failed", { message });
    },

    // ---- display --------------------------------------------------------------------------------
    setState(state) {
      this.state = state;
      this.tick();
      this.$emit("state", { state, recording_id: this.recordingId });
    },
    elapsedMs() {
      return this.elapsedBefore + (this.segmentStart === null ? 0 : performance.now() - this.segmentStart);
    },
    statusText() {
      if (this.state === "error") return this.message;
      if (this.state === "idle") return "Ready to record";
      if (this.state === "starting") return "Opening the microphone…";
      if (this.state === "saved") return "All audio saved";
      const waitingMs = [...this.pending.values()].reduce((sum, chunk) => sum + chunk.ms, 0);
      const seconds = Math.round(waitingMs / 1000);
      if (!this.socketReady()) return `Offline – ${seconds} s waiting to upload`;
      if (this.message) return `${seconds} s waiting to upload (${this.message})`;
      if (this.state === "finalizing") return "Saving…";
      if (seconds >= 2) return `${seconds} seconds waiting to upload`;
      return this.pending.size > 0 && this.stopped ? "Saving…" : "All audio saved";
    },
    tick() {
      const timer = this.$el?.querySelector('[data-testid="recording-timer"]');
      const status = this.$el?.querySelector('[data-testid="upload-status"]');
      if (timer) timer.textContent = formatClock(this.elapsedMs());
      if (status) status.textContent = this.statusText();
    },

    // ---- microphone and level meter -----------------------------------------------------------
    startMeter(stream) {
      try {
        this.audioContext = new AudioContext();
        const analyser = this.audioContext.createAnalyser();
        analyser.fftSize = 1024;
        this.audioContext.createMediaStreamSource(stream).connect(analyser);
        const samples = new Uint8Array(analyser.fftSize);
        const draw = () => {
          if (!this.audioContext) return;
          analyser.getByteTimeDomainData(samples);
          let sum = 0;
          for (const value of samples) sum += ((value - 128) / 128) ** 2;
          const level = this.state === "recording" ? Math.min(1, Math.sqrt(sum / samples.length) * 4) : 0;
          this.drawLevel(level);
          this.meterFrame = requestAnimationFrame(draw);
        };
        draw();
      } catch (error) {
        console.warn("level meter unavailable", error);
      }
    },
    drawLevel(level) {
      const canvas = this.$refs.meter;
      if (!canvas) return;
      const context = canvas.getContext("2d");
      context.clearRect(0, 0, canvas.width, canvas.height);
      context.fillStyle = level > 0.85 ? "#d32f2f" : "#43a047";
      context.fillRect(0, 0, canvas.width * level, canvas.height);
      canvas.setAttribute("aria-valuenow", Math.round(level * 100));
    },
    releaseMicrophone() {
      if (this.meterFrame) cancelAnimationFrame(this.meterFrame);
      this.audioContext?.close();
      this.audioContext = null;
      this.stream?.getTracks().forEach((track) => track.stop());
      this.stream = null;
      this.drawLevel(0);
    },
  },
};
