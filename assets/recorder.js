// The browser half of the recorder: MediaRecorder → numbered chunks → the server, losing nothing.
//
// Every chunk is written to IndexedDB before it is sent and deleted only when the server acknowledges
// that it is durable. Chunks travel as binary events on the `/vr` socket.io namespace, multiplexed on
// NiceGUI's own websocket but authenticated by a signed upload token, so uploads resume after a dropped
// network or a restarted server. A page opened later uploads and finalizes whatever an earlier page of
// the same user left behind (a reload, a crashed tab). The controls act here, in the browser, so Pause
// and Stop work while the connection is down.

const MIME_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4;codecs=mp4a.40.2", "audio/mp4"];
const ACK_TIMEOUT_MS = 10000;
const FINALIZE_TIMEOUT_MS = 180000;
const MAX_BACKOFF_MS = 8000;
const FATAL_STATUSES = [400, 401, 403, 404, 409, 413, 422];
const ACTIVE_STATES = ["starting", "recording", "paused", "uploading", "finalizing"];

function formatClock(ms) {
  const total = Math.floor(ms / 1000);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

function localLabel(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// ---- IndexedDB: the browser's durable copy of every unacknowledged chunk ---------------------------------------
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = transaction.onabort = () => reject(transaction.error);
  });
}

class ChunkStore {
  static async open() {
    try {
      const request = indexedDB.open("voice-recorder", 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore("sessions", { keyPath: "localId" });
        request.result.createObjectStore("chunks", { keyPath: ["localId", "seq"] });
      };
      return new ChunkStore(await done(request));
    } catch (error) {
      console.warn("IndexedDB unavailable: unsent audio is kept in memory only", error);
      return new ChunkStore(null);
    }
  }
  constructor(db) {
    this.db = db;
  }
  async saveSession(session) {
    if (!this.db) return;
    const tx = this.db.transaction("sessions", "readwrite");
    tx.objectStore("sessions").put(session);
    await committed(tx);
  }
  async addChunk(session, chunk) {
    if (!this.db) return;
    const tx = this.db.transaction(["sessions", "chunks"], "readwrite");
    tx.objectStore("chunks").put({ localId: session.localId, ...chunk });
    tx.objectStore("sessions").put(session);
    await committed(tx);
  }
  async deleteChunk(localId, seq) {
    if (!this.db) return;
    const tx = this.db.transaction("chunks", "readwrite");
    tx.objectStore("chunks").delete([localId, seq]);
    await committed(tx);
  }
  async deleteSession(localId) {
    if (!this.db) return;
    const tx = this.db.transaction(["sessions", "chunks"], "readwrite");
    tx.objectStore("sessions").delete(localId);
    tx.objectStore("chunks").delete(IDBKeyRange.bound([localId, -Infinity], [localId, Infinity]));
    await committed(tx);
  }
  async sessions() {
    if (!this.db) return [];
    return done(this.db.transaction("sessions").objectStore("sessions").getAll());
  }
  async chunks(localId) {
    if (!this.db) return [];
    const range = IDBKeyRange.bound([localId, -Infinity], [localId, Infinity]);
    return done(this.db.transaction("chunks").objectStore("chunks").getAll(range));
  }
}

// ---- the audio channel: /vr on NiceGUI's socket.io connection ----------------------------------------------------
class AudioChannel {
  constructor(token) {
    this.token = token;
    this.socket = null;
    this.connectListeners = [];
    this.disconnectListeners = [];
  }
  ensure() {
    if (!this.socket && window.socket) {
      this.socket = window.socket.io.socket("/vr", { auth: { token: this.token } });
      this.socket.on("connect", () => this.connectListeners.forEach((listener) => listener()));
      this.socket.on("disconnect", () => this.disconnectListeners.forEach((listener) => listener()));
      if (!this.socket.active) this.socket.connect();
    }
    return this.socket;
  }
  get connected() {
    return Boolean(this.socket?.connected);
  }
  request(event, payload, timeoutMs) {
    return new Promise((resolve) => {
      if (!this.ensure()?.connected) return resolve({ ok: false, retry: true, error: "offline" });
      this.socket.timeout(timeoutMs).emit(event, payload, (error, response) => {
        resolve(error ? { ok: false, retry: true, error: "no answer from the server" } : response);
      });
    });
  }
  close() {
    this.socket?.disconnect();
  }
}

// ---- one recording's upload: live, or recovered from an earlier page -------------------------------------------
class UploadSession {
  constructor(record, host) {
    this.record = record; // what IndexedDB keeps: localId, userId, recordingId, mimeType, title, nextSeq, stopped
    this.host = host;
    this.pending = new Map(); // seq -> {blob, ms}
    this.inflight = new Map(); // seq -> attempt marker
    this.backoffMs = 250;
    this.retryTimer = null;
    this.creating = false;
    this.finalizing = false;
    this.finished = false;
    this.problem = null;
    this.whenFinished = new Promise((resolve) => (this.finish = resolve));
  }
  get waitingMs() {
    let total = 0;
    for (const chunk of this.pending.values()) total += chunk.ms;
    return total;
  }
  async addChunk(blob, ms) {
    const seq = this.record.nextSeq++;
    this.record.updatedAt = Date.now();
    this.pending.set(seq, { blob, ms });
    try {
      await this.host.store.addChunk(this.record, { seq, blob, ms });
    } catch (error) {
      console.warn("could not keep chunk", seq, "in IndexedDB", error);
    }
    this.send(seq);
  }
  async stop() {
    this.record.stopped = true;
    await this.host.store.saveSession(this.record).catch(() => {});
    this.flush();
  }
  flush() {
    if (this.finished) return;
    if (!this.record.recordingId) return this.create();
    for (const seq of this.pending.keys()) this.send(seq);
    this.maybeFinalize();
  }
  async create() {
    if (this.creating || this.record.recordingId) return;
    this.creating = true;
    const { mimeType, title, timeZone } = this.record;
    const response = await this.host.channel.request("create", { mime_type: mimeType, title, time_zone: timeZone }, ACK_TIMEOUT_MS);
    this.creating = false;
    if (!response.ok) return this.failed(response);
    this.record.recordingId = response.recording_id;
    await this.host.store.saveSession(this.record).catch(() => {});
    this.host.sessionStarted(this);
    this.succeeded();
    this.flush();
  }
  async send(seq) {
    if (!this.record.recordingId || this.inflight.has(seq) || !this.pending.has(seq)) return;
    const attempt = {};
    this.inflight.set(seq, attempt);
    const data = await this.pending.get(seq).blob.arrayBuffer();
    const payload = { recording_id: this.record.recordingId, seq, data };
    const response = await this.host.channel.request("chunk", payload, ACK_TIMEOUT_MS);
    if (this.inflight.get(seq) === attempt) this.inflight.delete(seq);
    if (!response.ok) return this.failed(response);
    this.pending.delete(seq);
    this.host.store.deleteChunk(this.record.localId, seq).catch(() => {});
    this.succeeded();
    this.maybeFinalize();
  }
  async maybeFinalize() {
    if (!this.record.stopped || this.finalizing || this.finished || !this.record.recordingId || this.pending.size > 0) return;
    if (this.record.nextSeq === 0) return this.close(null);
    this.finalizing = true;
    this.host.refresh();
    const payload = { recording_id: this.record.recordingId, chunk_count: this.record.nextSeq };
    const response = await this.host.channel.request("finalize", payload, FINALIZE_TIMEOUT_MS);
    this.finalizing = false;
    if (response.ok) return this.close(response.recording);
    this.failed(response);
  }
  succeeded() {
    this.backoffMs = 250;
    this.problem = null;
  }
  failed(response) {
    if (!response.retry && FATAL_STATUSES.includes(response.status)) {
      this.problem = `The server refused the audio: ${response.error}`;
      return this.close(null, this.problem);
    }
    this.problem = response.error === "offline" ? null : `retrying: ${response.error}`;
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }
  async close(recording, error = null) {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    await this.host.store.deleteSession(this.record.localId).catch(() => {});
    this.finish();
    this.host.sessionFinished(this, recording, error);
  }
}

// ---- the element -----------------------------------------------------------------------------------------------
export default {
  template: `
    <div class="vr-recorder" :data-vr-state="state">
      <canvas v-if="!recoverOnly" ref="meter" class="vr-meter" width="320" height="14" data-testid="level-meter"
              role="meter" aria-label="microphone level" aria-valuemin="0" aria-valuemax="100"></canvas>
      <slot></slot>
    </div>`,
  props: {
    userId: String,
    uploadToken: String,
    maxChunkBytes: Number,
    timesliceMs: Number,
    maxRecordingMs: Number,
    recoverOnly: Boolean,
  },
  data() {
    return { state: "idle" };
  },
  async mounted() {
    this.sessions = new Set();
    this.live = null;
    this.elapsedBefore = 0;
    this.segmentStart = null;
    this.notice = null;
    this.channel = new AudioChannel(this.uploadToken);
    this.channel.connectListeners.push(() => this.sessions.forEach((session) => session.flush()));
    this.channel.disconnectListeners.push(() => this.sessions.forEach((session) => session.inflight.clear()));
    this.ticker = setInterval(() => this.tick(), 250);
    this.onBeforeUnload = (event) => {
      if (this.holdsUnsavedAudio()) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", this.onBeforeUnload);
    this.onKeyDown = (event) => this.shortcut(event);
    if (!this.recoverOnly) document.addEventListener("keydown", this.onKeyDown);
    this.pageTitle = document.title;
    this.store = await ChunkStore.open();
    this.recoverLeftovers();
  },
  unmounted() {
    clearInterval(this.ticker);
    window.removeEventListener("beforeunload", this.onBeforeUnload);
    document.removeEventListener("keydown", this.onKeyDown);
    this.releaseMicrophone();
    this.channel.close();
  },
  methods: {
    // ---- controls -----------------------------------------------------------------------------------------------
    async record() {
      if (ACTIVE_STATES.includes(this.state) || this.recoverOnly) return;
      if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
        return this.fail("This page cannot use the microphone: open it over https (or on localhost) in a current browser.");
      }
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
      this.tracks = stream.getTracks();
      this.recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
      const record = {
        localId: crypto.randomUUID(),
        userId: this.userId,
        recordingId: null,
        mimeType: this.recorder.mimeType || mimeType || "audio/webm",
        title: `Recording ${localLabel(new Date())}`,
        timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
        nextSeq: 0,
        stopped: false,
        updatedAt: Date.now(),
      };
      const session = new UploadSession(record, this);
      this.live = session;
      this.sessions.add(session);
      this.holdLock(record.localId, session.whenFinished);
      await this.store.saveSession(record).catch(() => {});
      this.recorder.ondataavailable = (event) => this.onData(session, event.data);
      this.recorder.onstop = () => session.stop();
      this.recorder.onerror = (event) => this.fail(`Recording failed: ${event.error?.message || "unknown error"}`);
      this.elapsedBefore = 0;
      this.recorder.start(this.timesliceMs);
      this.segmentStart = this.lastDataAt = performance.now();
      this.startMeter(stream);
      this.setState("recording");
      session.create();
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
      this.releaseMicrophone();
    },
    shortcut(event) {
      // Space records, pauses and resumes; Enter or Escape stops. Typing in a field is left alone.
      if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
      if (event.key === " ") {
        event.preventDefault();
        if (this.state === "recording") this.pause();
        else if (this.state === "paused") this.resume();
        else this.record();
      } else if (event.key === "Enter" || event.key === "Escape") {
        if (this.state === "recording" || this.state === "paused") {
          event.preventDefault();
          this.stop();
        }
      }
    },
    onData(session, blob) {
      if (!blob || blob.size === 0) return;
      const now = performance.now();
      const ms = Math.max(0, now - this.lastDataAt);
      this.lastDataAt = now;
      // Seqs are taken synchronously, in event order; a large blob is split, which is lossless because the
      // server joins chunks byte for byte in seq order.
      const pieces = Math.ceil(blob.size / this.maxChunkBytes);
      for (let i = 0; i < pieces; i++) {
        session.addChunk(blob.slice(i * this.maxChunkBytes, (i + 1) * this.maxChunkBytes), ms / pieces);
      }
    },

    // ---- sessions -----------------------------------------------------------------------------------------------
    holdLock(localId, untilFinished) {
      // A held lock tells other tabs (and the next page) that this recording is alive and not theirs to recover.
      navigator.locks?.request(`vr-session-${localId}`, () => untilFinished);
    },
    async recoverLeftovers() {
      const leftovers = (await this.store.sessions().catch(() => [])).filter((record) => record.userId === this.userId);
      for (const record of leftovers) {
        const recover = async () => {
          const session = new UploadSession({ ...record, stopped: true }, this);
          for (const chunk of await this.store.chunks(record.localId)) session.pending.set(chunk.seq, chunk);
          session.recovered = true;
          this.sessions.add(session);
          this.refresh();
          session.flush();
          return session.whenFinished;
        };
        if (navigator.locks) {
          navigator.locks.request(`vr-session-${record.localId}`, { ifAvailable: true }, (lock) => (lock ? recover() : null));
        } else if (Date.now() - (record.updatedAt || 0) > 15000) {
          recover();
        }
      }
    },
    sessionStarted(session) {
      if (session === this.live) this.$emit("started", { recording_id: session.record.recordingId, time_zone: session.record.timeZone });
    },
    sessionFinished(session, recording, error) {
      this.sessions.delete(session);
      if (session === this.live) {
        this.live = null;
        if (error) return this.fail(error);
        if (!recording) return this.setState("idle");
        this.setState("saved");
        this.$emit("saved", recording);
      } else if (recording) {
        this.notice = `Recovered recording “${recording.title}”`;
        this.$emit("recovered", recording);
      }
      this.navigateIfDeferred(recording);
    },
    holdsUnsavedAudio() {
      return ACTIVE_STATES.includes(this.state) || [...this.sessions].some((session) => session.pending.size > 0);
    },
    navigateIfDeferred(recording) {
      // NiceGUI wanted to reload this page while audio was still uploading (its server-side client is gone);
      // now that everything is saved, open a fresh page that shows the result.
      if (!window.vrReloadDeferred || this.holdsUnsavedAudio()) return;
      const url = new URL(window.location.href);
      if (recording && !this.recoverOnly) url.searchParams.set("saved", recording.id);
      window.location.assign(url.toString());
    },
    guardPageReloads() {
      const socket = window.socket;
      if (!socket || socket.vrGuarded) return;
      const niceguiHandlers = socket.listeners("connect_error");
      socket.off("connect_error");
      socket.on("connect_error", (error) => {
        if (this.holdsUnsavedAudio()) {
          console.log("keeping the page: audio is still being recorded or uploaded");
          window.vrReloadDeferred = true;
          return;
        }
        niceguiHandlers.forEach((handler) => handler(error));
      });
      socket.vrGuarded = true;
    },

    // ---- display ------------------------------------------------------------------------------------------------
    fail(message) {
      this.releaseMicrophone();
      this.notice = message;
      this.setState("error");
      this.$emit("failed", { message });
    },
    setState(state) {
      this.state = state;
      if (!this.recoverOnly) {
        const marks = { recording: "● Recording – ", paused: "❚❚ Paused – " };
        document.title = (marks[state] || "") + this.pageTitle;
      }
      this.refresh();
      this.$emit("state", { state });
    },
    refresh() {
      if (this.live?.finalizing && this.state === "uploading") this.state = "finalizing";
      this.tick();
    },
    elapsedMs() {
      return this.elapsedBefore + (this.segmentStart === null ? 0 : performance.now() - this.segmentStart);
    },
    statusText() {
      if (this.state === "error") return this.notice;
      if (this.state === "starting") return "Opening the microphone…";
      const sessions = [...this.sessions];
      const seconds = Math.round(sessions.reduce((sum, session) => sum + session.waitingMs, 0) / 1000);
      const problem = sessions.map((session) => session.problem).find(Boolean);
      const recovering = sessions.some((session) => session.recovered);
      const live = this.live;
      if (!live && !recovering) {
        if (this.state === "saved") return "All audio saved";
        return this.notice || "Ready to record";
      }
      if (!this.channel.connected) return `Offline – ${seconds} s waiting to upload`;
      if (problem) return `${seconds} s waiting to upload (${problem})`;
      if (!live) return `Recovering an earlier recording – ${seconds} s to upload`;
      if (live.finalizing) return "Saving…";
      if (seconds >= 2) return `${seconds} seconds waiting to upload`;
      return live.pending.size > 0 && live.record.stopped ? "Saving…" : "All audio saved";
    },
    tick() {
      this.guardPageReloads();
      if (this.channel && (!this.recoverOnly || this.sessions.size > 0)) this.channel.ensure();
      if (!this.$el?.querySelector) return;
      const timer = this.$el.querySelector('[data-testid="recording-timer"]');
      const status = this.$el.querySelector('[data-testid="upload-status"]');
      if (timer) timer.textContent = formatClock(this.elapsedMs());
      if (this.state === "recording" && this.maxRecordingMs && this.elapsedMs() >= this.maxRecordingMs) {
        this.stop();
        this.notice = "Stopped at the maximum recording length.";
      }
      if (status) status.textContent = this.statusText();
    },

    // ---- microphone and level meter -----------------------------------------------------------------------------
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
          this.drawLevel(this.state === "recording" ? Math.min(1, Math.sqrt(sum / samples.length) * 4) : 0);
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
