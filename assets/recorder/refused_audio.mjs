// Audio the server refused for good: listed on the page with "save it to a file" and "discard it", and kept in the
// store until the user decides (without IndexedDB it lives only in its session's memory).

import { unsentFileParts } from "./unsent_file.mjs";
import { fileExtension, fileStamp, plainReason } from "./wording.mjs";

export class RefusedAudio {
  constructor(items, store) {
    this.items = items; // the page's reactive list: {localId, message, recording}
    this.store = store; // a function: the chunk store, once it is open
    this.records = new Map(); // localId -> {record, session}
  }
  show(record, session) {
    const why = plainReason(record.refused);
    const message = `The server refused “${record.title}”: ${why}. Its unsent audio is kept in this browser.`;
    const item = { localId: record.localId, message, recording: Boolean(session && !record.stopped) };
    const index = this.items.findIndex((shown) => shown.localId === record.localId);
    if (index >= 0) this.items.splice(index, 1, item);
    else this.items.push(item);
    this.records.set(record.localId, { record, session });
  }
  /** Refused audio that leaving the page would lose: only what IndexedDB could not keep. */
  get inMemoryOnly() {
    return !this.store()?.db && this.records.size > 0;
  }
  async save(localId) {
    const { record, session } = this.records.get(localId);
    const inMemory = !this.store().db && session;
    const held = () => [...session.pending].map(([seq, chunk]) => ({ seq, ...chunk }));
    const chunks = inMemory ? held() : await this.store().chunks(localId);
    downloadFile(record, await unsentFileParts(record.mimeType, chunks));
  }
  async discard(localId) {
    if (!window.confirm("Discard this audio? It is not on the server, so it cannot be brought back.")) return;
    try {
      await this.store().deleteSession(localId);
    } catch (error) {
      return console.warn("could not discard the unsent audio", error);
    }
    this.records.delete(localId);
    const index = this.items.findIndex((item) => item.localId === localId);
    if (index >= 0) this.items.splice(index, 1);
  }
}

function downloadFile(record, parts) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob(parts, { type: record.mimeType }));
  const started = fileStamp(record.startedAt || record.updatedAt || Date.now());
  link.download = `unsent-recording-${started}.${fileExtension(record.mimeType)}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}
