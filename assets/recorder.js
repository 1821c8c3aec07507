// The browser half of the recorder: MediaRecorder → numbered chunks → the server, losing nothing.
//
// Every chunk is written to IndexedDB before it is sent and deleted only when the server acknowledges
// that it is durable, or when the user discards it: audio the server refuses stays here, and the page offers it
// as a file. Chunks travel as binary events on the `/vr` socket.io namespace, multiplexed on
// NiceGUI's own websocket but authenticated by a signed upload token, so uploads resume after a dropped
// network or a restarted server. A page opened later uploads and finalizes whatever an earlier page of
// the same user left behind (a reload, a crashed tab). The controls act here, in the browser, so Pause
// and Stop work while the connection is down.

const MIME_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4;codecs=mp4a.40.2", "audio/mp4"];
const ACK_TIMEOUT_MS = 10000;
const FINALIZE_TIMEOUT_MS = 180000;
const MAX_BACKOFF_MS = 8000;
const REFUSED_CONNECTION_RETRY_MS = 5000;
const LEAVING_HANDOVER_MS = 100; // while the page is being left, audio is handed over this often…
const LEAVING_HANDOVER_FOR_MS = 2000; // …for at most this long, in case the user chose to stay
const ACTIVE_STATES = ["starting", "recording", "paused", "uploading", "finalizing"];
const SILENT_TIMESLICES = 3; // no chunk for this many timeslices while recording: the browser ignores the timeslice
const ONLY_AT_STOP_TEXT = "This browser saves the audio only when you press Stop, so keep this page open until then";
const SCREEN_HINT =
  "Keep this page open and the screen on while recording: this browser cannot keep the screen awake, " +
  "and a phone may stop recording when its screen locks.";

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

function fileStamp(ms) {
  return localLabel(new Date(ms)).replace(" ", "-").replace(":", ""); // 2025-05-01-1432
}

function fileExtension(mimeType) {
  if (mimeType.includes("ogg")) return "ogg";
  return mimeType.includes("mp4") ? "m4a" : "webm";
}

function plainReason(refused) {
  return (refused.reason || "no reason was given").replace(/[.\s]+$/, "");
}

function refusalText(refused) {
  return `The server refused part of this recording: ${plainReason(refused)}. The audio is kept in this browser.`;
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
    tx.commit?.(); // at once, not after this task: the page may be going away
    await committed(tx);
  }
  async keepAsHead(localId, chunk) {
    // The first chunk holds the file's header: kept (marked sent) until the recording is done, so audio saved to a
    // file after a refusal starts with a header and plays.
    if (!this.db) return;
    const tx = this.db.transaction("chunks", "readwrite");
    tx.objectStore("chunks").put({ localId, ...chunk, acked: true });
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
    this.refusal = null; // the server's reason when it refused the connection itself
    this.lastAttemptAt = 0;
  }
  ensure() {
    if (!this.socket && window.socket) {
      this.socket = window.socket.io.socket("/vr", { auth: { token: this.token } });
      this.socket.on("connect", () => {
        this.refusal = null;
        this.connectListeners.forEach((listener) => listener());
      });
      this.socket.on("connect_error", (error) => {
        if (!this.socket.active) this.refusal = error.message; // refused by the server, not a network error
      });
      this.socket.on("disconnect", () => this.disconnectListeners.forEach((listener) => listener()));
    }
    if (this.socket && !this.socket.active && Date.now() - this.lastAttemptAt > REFUSED_CONNECTION_RETRY_MS) {
      // socket.io gives up on a connection the server refused (busy, an expired token); ask again now and then.
      this.lastAttemptAt = Date.now();
      this.socket.connect();
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
    this.lastAttemptAt = Infinity; // for good: never connect again
    this.socket?.disconnect();
  }
}

// ---- one recording's upload: live, or recovered from an earlier page -------------------------------------------
class UploadSession {
  constructor(record, host) {
    // What IndexedDB keeps: localId, userId, recordingId, mimeType, title, startedAt, nextSeq, stopped, and
    // `refused` ({reason, at}) once the server refused it for good.
    this.record = record;
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
    if (this.record.refused) return this.settleRefused();
    this.flush();
  }
  flush() {
    if (this.finished || this.record.refused) return;
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
    if (!this.record.recordingId || this.record.refused || this.inflight.has(seq) || !this.pending.has(seq)) return;
    const attempt = {};
    this.inflight.set(seq, attempt);
    const data = await this.pending.get(seq).blob.arrayBuffer();
    const payload = { recording_id: this.record.recordingId, seq, data };
    const response = await this.host.channel.request("chunk", payload, ACK_TIMEOUT_MS);
    if (this.inflight.get(seq) === attempt) this.inflight.delete(seq);
    if (!response.ok) return this.failed(response);
    const { blob, ms } = this.pending.get(seq) || {};
    this.pending.delete(seq);
    const { store } = this.host;
    const { localId } = this.record;
    const forget = seq === 0 && blob ? store.keepAsHead(localId, { seq, blob, ms }) : store.deleteChunk(localId, seq);
    forget.catch(() => {});
    this.succeeded();
    this.maybeFinalize();
  }
  async maybeFinalize() {
    if (!this.record.stopped || this.finalizing || this.finished || this.record.refused) return;
    if (!this.record.recordingId || this.pending.size > 0) return;
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
    // The server decides what is worth sending again; what it refuses for good is kept here, never deleted.
    if (!response.retry) return this.refuse(response.error);
    this.problem = response.error === "offline" ? null : `retrying: ${response.error}`;
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }
  async refuse(reason) {
    if (this.record.refused || this.finished) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.problem = null;
    this.record.refused = { reason: reason || "", at: Date.now() };
    await this.host.store.saveSession(this.record).catch(() => {});
    if (this.record.stopped) this.settleRefused();
    else this.host.sessionRefused(this);
  }
  settleRefused() {
    // Nothing more will be sent: other pages may show it (the lock is let go), and only the user may discard it.
    this.finish();
    this.host.sessionRefused(this);
  }
  async close(recording) {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    await this.host.store.deleteSession(this.record.localId).catch(() => {});
    this.finish();
    this.host.sessionFinished(this, recording);
  }
}

// ---- the element -----------------------------------------------------------------------------------------------
export default {
  template: `
    <div class="vr-recorder" :data-vr-state="state" :style="refused.length ? showEvenIfHidden : null">
      <canvas v-if="!recoverOnly" ref="meter" class="vr-meter" width="320" height="14" data-testid="level-meter"
              role="meter" aria-label="microphone level" aria-valuemin="0" aria-valuemax="100"></canvas>
      <slot></slot>
      <p v-if="screenHint" class="vr-screen-hint text-caption" role="note" data-testid="screen-hint">{{ screenHint }}</p>
      <div v-for="item in refused" :key="item.localId" class="vr-refused" role="alert" data-testid="refused-recording">
        <span data-testid="refused-message">{{ item.message }}</span>
        <div class="vr-refused-actions">
          <q-btn outline no-caps icon="download" label="Save the audio to a file" data-testid="save-unsent"
                 @click="saveUnsent(item.localId)"></q-btn>
          <q-btn v-if="!item.recording" flat no-caps color="negative" icon="delete" label="Discard it"
                 data-testid="discard-unsent" @click="discardUnsent(item.localId)"></q-btn>
        </div>
      </div>
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
    return {
      state: "idle",
      refused: [], // what the server refused for good, shown with save and discard
      screenHint: null, // while recording, when the screen cannot be kept awake
      // /records keeps this element hidden (class "hidden", a layered !important rule only an inline one beats)
      // except while it has refused audio to offer.
      showEvenIfHidden: { display: "flex !important", width: "100%" },
    };
  },
  async mounted() {
    this.sessions = new Set(); // uploading, live or recovered
    this.refusedRecords = new Map(); // localId -> {record, session}: refused audio this page offers as a file
    this.live = null;
    this.elapsedBefore = 0;
    this.segmentStart = null;
    this.notice = null;
    this.channel = new AudioChannel(this.uploadToken);
    this.channel.connectListeners.push(() => this.sessions.forEach((session) => session.flush()));
    this.channel.disconnectListeners.push(() => this.sessions.forEach((session) => session.inflight.clear()));
    this.ticker = setInterval(() => this.tick(), 250);
    this.onBeforeUnload = (event) => {
      if (this.recorder?.state === "recording") this.leaving = { until: null };
      this.handOverAudio();
      if (this.holdsUnsavedAudio()) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", this.onBeforeUnload);
    this.onPageHide = () => this.handOverAudio();
    this.onVisibilityChange = () => {
      if (document.visibilityState === "hidden") this.handOverAudio();
      else this.keepScreenOn(); // the browser let the wake lock go while the page was hidden
    };
    window.addEventListener("pagehide", this.onPageHide);
    document.addEventListener("visibilitychange", this.onVisibilityChange);
    this.onKeyDown = (event) => this.shortcut(event);
    if (!this.recoverOnly) document.addEventListener("keydown", this.onKeyDown);
    this.pageTitle = document.title;
    this.storeOpened = ChunkStore.open();
    this.store = await this.storeOpened;
    this.recoverLeftovers();
  },
  unmounted() {
    clearInterval(this.ticker);
    clearTimeout(this.handOverTimer);
    window.removeEventListener("beforeunload", this.onBeforeUnload);
    window.removeEventListener("pagehide", this.onPageHide);
    document.removeEventListener("visibilitychange", this.onVisibilityChange);
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
      await this.storeOpened; // every chunk goes to IndexedDB first
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
        startedAt: Date.now(),
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
      this.keepScreenOn();
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
    handOverAudio() {
      // The page is being left or hidden: MediaRecorder hands over what it holds, so the chunk reaches IndexedDB
      // (written synchronously in onData) instead of dying with the page.
      if (this.recorder && this.recorder.state !== "inactive") this.recorder.requestData();
    },
    keepHandingOver() {
      // A reload or a navigation away keeps this page alive until the next page answers (after the "leave?"
      // dialog): hand over audio every 100 ms meanwhile, so only the last few ms are lost when the page goes.
      const now = performance.now();
      this.leaving.until ??= now + LEAVING_HANDOVER_FOR_MS;
      if (now > this.leaving.until) return (this.leaving = null);
      clearTimeout(this.handOverTimer);
      this.handOverTimer = setTimeout(() => this.handOverAudio(), LEAVING_HANDOVER_MS);
    },
    onData(session, blob) {
      if (this.leaving) this.keepHandingOver();
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
          for (const chunk of await this.store.chunks(record.localId)) if (!chunk.acked) session.pending.set(chunk.seq, chunk);
          session.recovered = true;
          this.sessions.add(session);
          this.refresh();
          session.flush();
          return session.whenFinished;
        };
        // Refused audio is not offered to the server again: it is shown, to be saved to a file or discarded.
        const claimed = record.refused ? () => this.showRefused(record, null) : recover;
        if (navigator.locks) {
          navigator.locks.request(`vr-session-${record.localId}`, { ifAvailable: true }, (lock) => (lock ? claimed() : null));
        } else if (Date.now() - (record.updatedAt || 0) > 15000) {
          claimed();
        }
      }
    },
    sessionStarted(session) {
      if (session === this.live) this.$emit("started", { recording_id: session.record.recordingId, time_zone: session.record.timeZone });
    },
    sessionFinished(session, recording) {
      this.sessions.delete(session);
      if (session === this.live) {
        this.live = null;
        if (!recording) return this.setState("idle");
        this.setState("saved");
        this.$emit("saved", recording);
      } else if (recording) {
        this.notice = `Recovered recording “${recording.title}”`;
        this.$emit("recovered", recording);
      }
      this.navigateIfDeferred(recording);
    },
    sessionRefused(session) {
      this.sessions.delete(session);
      this.showRefused(session.record, session);
      if (session === this.live && session.record.stopped) {
        this.live = null;
        this.fail(refusalText(session.record.refused));
      }
      this.navigateIfDeferred(null);
    },
    showRefused(record, session) {
      const why = plainReason(record.refused);
      const message = `The server refused “${record.title}”: ${why}. Its unsent audio is kept in this browser.`;
      const item = { localId: record.localId, message, recording: Boolean(session && !record.stopped) };
      const index = this.refused.findIndex((shown) => shown.localId === record.localId);
      if (index >= 0) this.refused.splice(index, 1, item);
      else this.refused.push(item);
      this.refusedRecords.set(record.localId, { record, session });
    },
    async unsentChunks(localId) {
      const { session } = this.refusedRecords.get(localId);
      if (!this.store.db && session) return [...session.pending].map(([seq, chunk]) => ({ seq, ...chunk }));
      return this.store.chunks(localId);
    },
    async saveUnsent(localId) {
      // One file of the chunks this browser still holds, in seq order (the first one, with the header, included).
      const { record } = this.refusedRecords.get(localId);
      const chunks = (await this.unsentChunks(localId)).sort((a, b) => a.seq - b.seq);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob(chunks.map((chunk) => chunk.blob), { type: record.mimeType }));
      const started = fileStamp(record.startedAt || record.updatedAt || Date.now());
      link.download = `unsent-recording-${started}.${fileExtension(record.mimeType)}`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    },
    async discardUnsent(localId) {
      if (!window.confirm("Discard this audio? It is not on the server, so it cannot be brought back.")) return;
      try {
        await this.store.deleteSession(localId);
      } catch (error) {
        return console.warn("could not discard the unsent audio", error);
      }
      this.refusedRecords.delete(localId);
      this.refused = this.refused.filter((item) => item.localId !== localId);
    },
    holdsUnsavedAudio() {
      // Refused audio waits in IndexedDB for the user; only without IndexedDB would leaving lose it.
      const refusedInMemory = !this.store?.db && this.refusedRecords.size > 0;
      const uploading = [...this.sessions].some((session) => session.pending.size > 0);
      return ACTIVE_STATES.includes(this.state) || refusedInMemory || uploading;
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
          // NiceGUI's "Connection lost. Trying to reconnect..." would stay up for good (its client is gone, it never
          // reconnects) beside a status line saying "All audio saved": the status line speaks for the connection.
          document.getElementById("popup")?.setAttribute("aria-hidden", "true");
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
    deliversOnlyAtStop() {
      // Safari may ignore MediaRecorder's timeslice and hand over all the audio at Stop: nothing is lost (that
      // last chunk is split and sent like any other), but nothing is on the server until then.
      return this.state === "recording" && performance.now() - this.lastDataAt > SILENT_TIMESLICES * this.timesliceMs;
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
      if (live?.record.refused) return refusalText(live.record.refused);
      if (live && this.deliversOnlyAtStop()) return ONLY_AT_STOP_TEXT;
      if (!live && !recovering) {
        if (this.state === "saved") return "All audio saved";
        return this.notice || "Ready to record";
      }
      if (!this.channel.connected && this.channel.refusal) {
        const why = this.channel.refusal;
        return `Not uploading: the server refused the connection (${why}) – ${seconds} s waiting, kept in this browser`;
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
        this.audioContext.resume().catch(() => {}); // Safari starts it suspended, and the meter would stay still
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
      this.letScreenSleep();
    },

    // ---- phones: the screen stays on while recording ------------------------------------------------------------
    async keepScreenOn() {
      // A phone that locks its screen suspends the page, and the recording with it. The browser lets the lock go
      // whenever the page is hidden, so this runs again when it is shown.
      const recording = () => this.state === "recording" || this.state === "paused";
      if (!recording() || this.wakeLock || this.wakeLockPending || document.visibilityState !== "visible") return;
      if (!navigator.wakeLock) return (this.screenHint = SCREEN_HINT);
      this.wakeLockPending = true;
      try {
        const lock = await navigator.wakeLock.request("screen");
        lock.addEventListener("release", () => {
          if (this.wakeLock === lock) this.wakeLock = null;
        });
        this.wakeLock = lock;
        this.screenHint = null;
        if (!recording()) this.letScreenSleep(); // stopped while the browser was deciding
      } catch (error) {
        if (recording()) this.screenHint = SCREEN_HINT; // refused, e.g. to save the battery
      } finally {
        this.wakeLockPending = false;
      }
    },
    letScreenSleep() {
      this.wakeLock?.release().catch(() => {});
      this.wakeLock = null;
      this.screenHint = null;
    },
  },
};
