// The browser half of the recorder: MediaRecorder → numbered chunks → the server, losing nothing.
//
// This Vue component wires the modules in assets/recorder/ together. Every chunk is written to IndexedDB before it
// is sent and deleted only when the server acknowledges that it is durable, or when the user discards it: audio the
// server refuses stays here, and the page offers it as a file. A page opened later uploads and finalizes whatever
// an earlier page of the same user left behind. The controls act here, in the browser, so Pause and Stop work while
// the connection is down. The modules are imported by their names in NiceGUI's importmap (each one registered as a
// library by pages/recorder_element.py); among themselves they import by relative path, as the Node tests do.

import { AudioChannel, guardPageReloads, reloadWasDeferred } from "audio_channel";
import { ChunkStore } from "chunk_store";
import { HandOver } from "hand_over";
import { claimLeftover, holdLock } from "leftovers";
import { LevelMeter } from "level_meter";
import { cannotRecordHere, openMicrophone, recorderFor } from "microphone";
import { RefusedAudio } from "refused_audio";
import { ScreenWake } from "screen_wake";
import { busy, can, capturing, INITIAL_STATE, nextState } from "state_machine";
import { statusLine } from "status_line";
import { UploadSession } from "upload_session";
import { clock } from "duration";
import { localLabel, refusalText } from "wording";

const SILENT_TIMESLICES = 3; // no chunk for this many timeslices while recording: the browser ignores the timeslice
const TITLE_MARKS = { recording: "● Recording – ", paused: "❚❚ Paused – " };

export default {
  template: `
    <div class="vr-recorder" :data-vr-state="state" :style="refused.length ? showEvenIfHidden : null">
      <div v-if="!recoverOnly" class="vr-meter-box">
        <span class="vr-meter-label" aria-hidden="true">Microphone level</span>
        <canvas ref="meter" class="vr-meter" width="320" height="14" data-testid="level-meter"
                role="meter" aria-label="Microphone level" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow="0"></canvas>
      </div>
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
      state: INITIAL_STATE, // changed only by `send`, through the table in state_machine
      refused: [], // what the server refused for good, shown with save and discard
      screenHint: null, // while recording, when the screen cannot be kept awake
      // /records keeps this element hidden (class "hidden", a layered !important rule only an inline one beats)
      // except while it has refused audio to offer.
      showEvenIfHidden: { display: "flex !important", width: "100%" },
    };
  },
  async mounted() {
    this.listeners = []; // [target, name, handler], removed when unmounted
    this.sessions = new Set(); // uploading, live or recovered
    this.refusedAudio = new RefusedAudio(this.refused, () => this.store);
    this.live = null;
    this.elapsedBefore = 0;
    this.segmentStart = null;
    this.notice = null;
    this.channel = new AudioChannel(this.uploadToken);
    this.channel.onConnect(() => this.sessions.forEach((session) => session.flush()));
    this.channel.onDisconnect(() => this.sessions.forEach((session) => session.connectionLost()));
    this.meter = new LevelMeter(() => this.$refs.meter, () => this.state === "recording");
    this.meter.draw(0); // its resting line, until the microphone is open
    this.screen = new ScreenWake(() => capturing(this.state), (hint) => (this.screenHint = hint));
    this.handOver = new HandOver(() => this.recorder);
    this.ticker = setInterval(() => this.tick(), 250);
    this.listen(window, "beforeunload", (event) => {
      this.handOver.pageLeaving();
      if (this.holdsUnsavedAudio()) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
    this.listen(window, "pagehide", () => this.handOver.now());
    this.listen(document, "visibilitychange", () => {
      if (document.visibilityState === "hidden") this.handOver.now();
      else this.screen.keep(); // the browser let the wake lock go while the page was hidden
    });
    if (!this.recoverOnly) this.listen(document, "keydown", (event) => this.shortcut(event));
    this.pageTitle = document.title;
    this.storeOpened = ChunkStore.open();
    this.store = await this.storeOpened;
    this.recoverLeftovers();
  },
  unmounted() {
    clearInterval(this.ticker);
    this.handOver.cancel();
    this.listeners.forEach(([target, name, handler]) => target.removeEventListener(name, handler));
    this.releaseMicrophone();
    this.channel.close();
  },
  methods: {
    listen(target, name, handler) {
      this.listeners.push([target, name, handler]);
      target.addEventListener(name, handler);
    },

    // ---- controls -----------------------------------------------------------------------------------------------
    async record() {
      if (!can(this.state, "record") || this.recoverOnly) return;
      const unusable = cannotRecordHere();
      if (unusable) return this.fail(unusable);
      this.send("record");
      await this.storeOpened; // every chunk goes to IndexedDB first
      let stream;
      try {
        stream = await openMicrophone();
      } catch (error) {
        return this.fail(error.message);
      }
      if (!can(this.state, "opened")) return stream.getTracks().forEach((track) => track.stop()); // failed meanwhile
      this.stream = stream;
      this.tracks = stream.getTracks(); // kept after the release, to tell that Stop really ended them
      const { recorder, mimeType } = recorderFor(stream);
      this.recorder = recorder;
      const record = {
        localId: crypto.randomUUID(),
        userId: this.userId,
        recordingId: null,
        mimeType,
        title: `Recording ${localLabel(new Date())}`,
        titleIsDefault: true, // the transcript's first words replace it (services/recordings/titles.py)
        startedAt: Date.now(),
        timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone, // for the server's `started` handler
        nextSeq: 0,
        stopped: false,
        updatedAt: Date.now(),
      };
      const session = this.newSession(record);
      this.live = session;
      holdLock(record.localId, session.whenFinished);
      await this.store.saveSession(record).catch(() => {});
      recorder.ondataavailable = (event) => this.onData(session, event.data);
      recorder.onstop = () => session.stop();
      recorder.onerror = (event) => this.fail(`Recording failed: ${event.error?.message || "unknown error"}`);
      this.elapsedBefore = 0;
      // The clock runs from the click, then from when MediaRecorder really starts capturing (its `start` event, up
      // to 0.4 s later on a busy machine): it shows the audio there is, not the wait for the microphone.
      recorder.onstart = () => {
        if (this.state === "recording") this.segmentStart = this.lastDataAt = performance.now();
      };
      recorder.start(this.timesliceMs);
      this.segmentStart = this.lastDataAt = performance.now();
      this.meter.start(stream);
      this.send("opened");
      this.screen.keep();
      session.create();
    },
    pause() {
      if (!this.send("pause")) return;
      this.recorder.pause();
      this.elapsedBefore += performance.now() - this.segmentStart;
      this.segmentStart = null;
    },
    resume() {
      if (!this.send("resume")) return;
      this.recorder.resume();
      this.segmentStart = this.lastDataAt = performance.now();
    },
    stop() {
      if (!can(this.state, "stop")) return;
      if (this.segmentStart !== null) this.elapsedBefore += performance.now() - this.segmentStart;
      this.segmentStart = null;
      this.send("stop");
      this.recorder.stop(); // fires the last dataavailable, then stop
      this.releaseMicrophone();
    },
    shortcut(event) {
      // Space records, pauses and resumes; Enter or Escape stops. Typing in a field is left alone.
      if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
      if (event.key === " ") {
        event.preventDefault();
        if (can(this.state, "pause")) this.pause();
        else if (can(this.state, "resume")) this.resume();
        else this.record();
      } else if ((event.key === "Enter" || event.key === "Escape") && can(this.state, "stop")) {
        event.preventDefault();
        this.stop();
      }
    },
    onData(session, blob) {
      this.handOver.chunkArrived();
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

    // ---- uploads ------------------------------------------------------------------------------------------------
    newSession(record, chunks = null) {
      const listener = {
        started: (session) => this.sessionStarted(session),
        finalizing: (session) => this.sessionFinalizing(session),
        finished: (session, recording) => this.sessionFinished(session, recording),
        refused: (session) => this.sessionRefused(session),
      };
      const dependencies = { channel: this.channel, store: this.store, listener };
      const session = chunks ? UploadSession.recovered(record, chunks, dependencies) : new UploadSession(record, dependencies);
      this.sessions.add(session);
      return session;
    },
    async recoverLeftovers() {
      const leftovers = (await this.store.sessions().catch(() => [])).filter((record) => record.userId === this.userId);
      for (const record of leftovers) {
        const recover = async () => {
          const session = this.newSession(record, await this.store.chunks(record.localId));
          this.tick();
          session.flush();
          return session.whenFinished;
        };
        // Refused audio is not offered to the server again: it is shown, to be saved to a file or discarded.
        claimLeftover(record, record.refused ? () => this.refusedAudio.show(record, null) : recover);
      }
    },
    sessionStarted(session) {
      const { recordingId, timeZone } = session.record;
      if (session === this.live) this.$emit("started", { recording_id: recordingId, time_zone: timeZone });
    },
    sessionFinalizing(session) {
      if (session !== this.live || !this.send("finalize")) this.tick();
    },
    sessionFinished(session, recording) {
      this.sessions.delete(session);
      if (session === this.live) {
        this.live = null;
        if (!recording) return this.send("empty");
        this.send("saved");
        this.$emit("saved", recording);
      } else if (recording) {
        this.notice = `Recovered recording “${recording.title}”`;
        this.$emit("recovered", recording);
      }
      this.navigateIfDeferred(recording);
    },
    sessionRefused(session) {
      this.sessions.delete(session);
      this.refusedAudio.show(session.record, session);
      if (session === this.live && session.record.stopped) {
        this.live = null;
        this.fail(refusalText(session.record.refused));
      }
      this.navigateIfDeferred(null);
    },

    // ---- refused audio: the save and discard buttons ------------------------------------------------------------
    saveUnsent(localId) {
      this.refusedAudio.save(localId);
    },
    discardUnsent(localId) {
      this.refusedAudio.discard(localId);
    },

    // ---- leaving the page ---------------------------------------------------------------------------------------
    holdsUnsavedAudio() {
      // Refused audio waits in IndexedDB for the user; only without IndexedDB would leaving lose it.
      const uploading = [...this.sessions].some((session) => session.pending.size > 0);
      return busy(this.state) || this.refusedAudio.inMemoryOnly || uploading;
    },
    navigateIfDeferred(recording) {
      // NiceGUI wanted to reload this page while audio was still uploading (its server-side client is gone);
      // now that everything is saved, open a fresh page that shows the result.
      if (!reloadWasDeferred() || this.holdsUnsavedAudio()) return;
      const url = new URL(window.location.href);
      if (recording && !this.recoverOnly) url.searchParams.set("saved", recording.id);
      window.location.assign(url.toString());
    },

    // ---- state and display --------------------------------------------------------------------------------------
    send(event) {
      // The only way the state changes: what the table does not allow is ignored (and said in the console).
      const next = nextState(this.state, event);
      if (next === null) {
        console.debug(`recorder: "${event}" ignored while ${this.state}`);
        return false;
      }
      this.state = next;
      if (!this.recoverOnly) document.title = (TITLE_MARKS[next] || "") + this.pageTitle;
      this.tick();
      return true;
    },
    fail(message) {
      this.releaseMicrophone();
      this.notice = message;
      this.send("fail");
    },
    elapsedMs() {
      return this.elapsedBefore + (this.segmentStart === null ? 0 : performance.now() - this.segmentStart);
    },
    deliversOnlyAtStop() {
      // Safari may ignore MediaRecorder's timeslice and hand over all the audio at Stop: nothing is lost (that
      // last chunk is split and sent like any other), but nothing is on the server until then.
      return this.state === "recording" && performance.now() - this.lastDataAt > SILENT_TIMESLICES * this.timesliceMs;
    },
    tick() {
      guardPageReloads(() => this.holdsUnsavedAudio());
      if (this.channel && (!this.recoverOnly || this.sessions.size > 0)) this.channel.ensure();
      if (!this.$el?.querySelector) return;
      const timer = this.$el.querySelector(".vr-timer");
      const status = this.$el.querySelector(".vr-status");
      if (timer) timer.textContent = clock(this.elapsedMs() / 1000);
      if (this.state === "recording" && this.maxRecordingMs && this.elapsedMs() >= this.maxRecordingMs) {
        this.stop();
        this.notice = "Stopped at the maximum recording length.";
      }
      const { state, notice, live, channel } = this;
      const view = { state, notice, live, channel, sessions: [...this.sessions], onlyAtStop: this.deliversOnlyAtStop() };
      if (status) status.textContent = statusLine(view);
    },
    releaseMicrophone() {
      this.meter?.stop();
      this.stream?.getTracks().forEach((track) => track.stop());
      this.stream = null;
      this.screen?.release();
    },
  },
};
