// The browser half of pages/importer.py: an Import button and drag-and-drop of files anywhere on the page, each
// file a card with its progress, uploaded as a recording whose chunks are slices of the file (file_import.mjs)
// through the same UploadSession and audio channel as recorded audio: a chunk counts as sent only once the server
// says it is durable, a dropped network pauses the upload and the channel's reconnect resumes it.

import { AudioChannel, OFFLINE } from "audio_channel";
import { ACCEPT, chunksOf, fileKey, ImportMemory, megabytes, mimeTypeOf, timeLeft, titleOf } from "file_import";
import { UploadSession } from "upload_session";

const TYPES_IN_WORDS = "MP3, WAV, FLAC, M4A, Ogg, Opus, WebM or MP4";

export default {
  template: `
    <div class="vr-importer">
      <q-btn outline no-caps icon="upload_file" label="Import audio files" class="vr-import-button"
             data-testid="import-button" @click="$refs.picker.click()"></q-btn>
      <input ref="picker" type="file" multiple :accept="accept" style="display: none" data-testid="import-input"
             aria-label="Choose audio files to import" @change="picked">
      <div v-if="dragging" class="vr-drop-zone" data-testid="drop-zone">Drop audio files here to import them</div>
      <ul v-if="items.length" class="vr-import-cards" aria-label="Imports">
        <li v-for="item in items" :key="item.key" class="vr-import-card" data-testid="import-card"
            :data-state="item.state">
          <div class="vr-import-title" data-testid="import-title">{{ item.title }}</div>
          <div class="vr-import-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"
               :aria-valuenow="percent(item)" :aria-label="'Import of ' + item.title">
            <div class="vr-import-bar-fill" :style="{ width: percent(item) + '%' }"></div>
          </div>
          <div class="vr-import-text text-caption" role="status" data-testid="import-progress">{{ item.text }}</div>
          <q-btn v-if="item.state === 'refused' || item.state === 'interrupted'" flat no-caps label="Remove"
                 class="vr-import-remove" data-testid="import-remove" @click="remove(item)"></q-btn>
        </li>
      </ul>
    </div>`,
  props: { userId: String, uploadToken: String, maxChunkBytes: Number, maxImportBytes: Number },
  data() {
    return { items: [], dragging: false, accept: ACCEPT };
  },
  mounted() {
    this.sessions = new Map(); // key -> UploadSession
    this.memory = new ImportMemory(this.userId);
    this.channel = new AudioChannel(this.uploadToken);
    this.channel.onConnect(() => this.sessions.forEach((session) => session.flush()));
    this.channel.onDisconnect(() => this.sessions.forEach((session) => session.connectionLost()));
    for (const [key, known] of Object.entries(this.memory.all())) {
      const item = this.card(key, known.title, known.size);
      this.set(item, "interrupted", `Interrupted at reload: choose the same file again to resume it`);
    }
    this.listeners = [
      ["dragover", (event) => this.dragOver(event)],
      ["dragleave", (event) => (event.relatedTarget ? null : (this.dragging = false))],
      ["drop", (event) => this.dropped(event)],
    ];
    this.listeners.forEach(([name, handler]) => document.addEventListener(name, handler));
    this.ticker = setInterval(() => this.tick(), 500);
  },
  unmounted() {
    clearInterval(this.ticker);
    this.listeners.forEach(([name, handler]) => document.removeEventListener(name, handler));
    this.channel.close();
  },
  methods: {
    picked(event) {
      this.importAll([...event.target.files]);
      event.target.value = ""; // the same file may be chosen again (a resume)
    },
    dragOver(event) {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      this.dragging = true;
    },
    dropped(event) {
      if (!event.dataTransfer?.files?.length) return;
      event.preventDefault();
      this.dragging = false;
      this.importAll([...event.dataTransfer.files]);
    },
    importAll(files) {
      for (const file of files) this.begin(file).catch((error) => console.warn("import failed to start", error));
    },
    card(key, title, size) {
      let item = this.items.find((each) => each.key === key);
      if (!item) {
        this.items.unshift({ key, title, size, sent: 0, state: "waiting", text: "", recordingId: null });
        item = this.items[0]; // the reactive proxy
      }
      return item;
    },
    set(item, state, text) {
      Object.assign(item, { state, text });
    },
    async begin(file) {
      const title = titleOf(file.name);
      const mimeType = mimeTypeOf(file);
      const refusal = !mimeType
        ? `This file cannot be imported: choose ${TYPES_IN_WORDS} audio.`
        : file.size === 0
          ? "This file is empty: there is no audio to import."
          : file.size > this.maxImportBytes
            ? `This file is ${megabytes(file.size)}; files of at most ${megabytes(this.maxImportBytes)} can be imported.`
            : null;
      if (refusal) return this.set(this.card(`refused:${file.name}:${file.size}`, title, file.size), "refused", refusal);
      const key = await fileKey(file, this.maxChunkBytes);
      if (this.sessions.has(key)) return; // chosen twice: it is being imported already
      const item = this.card(key, title, file.size);
      Object.assign(item, { sent: 0, size: file.size });
      this.set(item, "waiting", "Starting…");
      const known = this.memory.all()[key];
      const chunks = chunksOf(file, this.maxChunkBytes);
      const record = {
        localId: key,
        userId: this.userId,
        recordingId: known ? await this.resumable(known.recordingId, chunks) : null,
        mimeType,
        title,
        startedAt: Date.now(),
        nextSeq: chunks.length,
        file: { file_size_bytes: file.size, file_modified_at: new Date(file.lastModified || Date.now()).toISOString() },
      };
      if (record.recordingId === "done") return this.set(item, "done", "Already imported");
      const listener = {
        started: (session) => (item.recordingId = session.record.recordingId),
        finalizing: () => this.set(item, "saving", "Uploaded; saving…"),
        finished: (session, recording) => this.finished(item, recording),
        refused: (session) => this.refused(item, session),
      };
      const session = UploadSession.recovered(record, chunks, { channel: this.channel, store: this.memory, listener });
      Object.assign(item, { recordingId: record.recordingId, startedAt: Date.now(), sentAtStart: null });
      this.sessions.set(key, session);
      this.set(item, "uploading", "Starting…");
      this.channel.ensure();
      session.flush();
    },
    async resumable(recordingId, chunks) {
      // The server says which chunks it holds: those are not sent again. Gone (deleted, or refused): start over.
      for (let attempt = 0; attempt < 20; attempt++) {
        this.channel.ensure();
        const answer = await this.channel.request("status", { recording_id: recordingId }, 10000);
        if (answer?.ok) {
          if (answer.recording.status === "ready") return "done";
          const stored = new Set(answer.stored_seqs || []);
          chunks.forEach((chunk) => (chunk.acked = stored.has(chunk.seq)));
          return recordingId;
        }
        if (answer?.error !== OFFLINE && !answer?.retry) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      return null;
    },
    finished(item, recording) {
      this.sessions.delete(item.key);
      item.sent = item.size;
      this.set(item, "done", `Imported: ${megabytes(item.size)}`);
      if (recording) this.$emit("imported", recording);
    },
    refused(item, session) {
      this.sessions.delete(item.key);
      const reason = session.record.refused?.reason || "the server refused it";
      this.set(item, "refused", `Not imported: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`.replace(/\.?$/, "."));
    },
    remove(item) {
      this.memory.deleteSession(item.key);
      if (item.recordingId) this.$emit("remove", item.recordingId);
      this.items.splice(this.items.indexOf(item), 1);
    },
    percent(item) {
      return item.size ? Math.floor((100 * item.sent) / item.size) : 0;
    },
    tick() {
      if (this.sessions.size) this.channel.ensure();
      for (const [key, session] of this.sessions) {
        const item = this.items.find((each) => each.key === key);
        if (!item || session.finalizing) continue;
        let waiting = 0;
        for (const chunk of session.pending.values()) waiting += chunk.blob.size;
        item.sent = item.size - waiting;
        if (item.sentAtStart === null && this.channel.connected) Object.assign(item, { sentAtStart: item.sent, startedAt: Date.now() });
        this.set(item, this.channel.connected ? "uploading" : "paused", this.progressText(item, session));
      }
    },
    progressText(item, session) {
      const of = `${megabytes(item.sent)} of ${megabytes(item.size)}`;
      if (!this.channel.connected) return `${of} · Paused: waiting for the connection`;
      const seconds = (Date.now() - item.startedAt) / 1000;
      const rate = seconds > 1 ? (item.sent - item.sentAtStart) / seconds : 0;
      const left = rate > 0 ? timeLeft((item.size - item.sent) / rate) : "";
      return [of, left, session.problem ? "retrying" : ""].filter(Boolean).join(" · ");
    },
  },
};
