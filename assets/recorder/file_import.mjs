// Importing a file is uploading a recording whose chunks are slices of the file: the same UploadSession and audio
// channel as recorded audio. Nothing of the file is read ahead: a chunk's bytes are read when it is sent, one
// `maxChunkBytes` slice at a time, so a 2 GB file costs the page no more memory than a recording does.
//
// What this browser remembers of an import (localStorage, a few hundred bytes each) is enough to resume it after a
// reload when the user chooses the same file again: its name, size and the SHA-256 of its first chunk name it.

const MEMORY_KEY = "vr-imports";
// A File's `type` differs between browsers and systems (and is empty for some): its extension decides then.
const BY_EXTENSION = {
  mp3: "audio/mpeg",
  wav: "audio/wav",
  flac: "audio/flac",
  m4a: "audio/mp4",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/ogg",
  webm: "audio/webm",
  mp4: "video/mp4",
  m4v: "video/mp4",
};
const KNOWN_TYPES = new Set(Object.values(BY_EXTENSION));
export const ACCEPT = ".mp3,.wav,.flac,.m4a,.ogg,.oga,.opus,.webm,.mp4,.m4v,audio/*,video/mp4";

export function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/** The type the server is told; null for a file this app cannot import (refused before anything is sent). */
export function mimeTypeOf(file) {
  const declared = (file.type || "").toLowerCase();
  return BY_EXTENSION[extensionOf(file.name)] || (KNOWN_TYPES.has(declared) ? declared : null);
}

/** The file's name without its extension, as the recording's title. */
export function titleOf(name) {
  const dot = name.lastIndexOf(".");
  const bare = (dot > 0 ? name.slice(0, dot) : name).trim();
  return (bare || name).slice(0, 200);
}

/** Lazy slices of the file, numbered like a recording's chunks: `slice` reads nothing until the chunk is sent. */
export function chunksOf(file, size) {
  const chunks = [];
  for (let start = 0, seq = 0; start < file.size; start += size, seq++) {
    chunks.push({ seq, blob: file.slice(start, Math.min(start + size, file.size)), ms: 0 });
  }
  return chunks;
}

/** Names a file across reloads: its name, size and the hash of its first chunk. */
export async function fileKey(file, size) {
  const head = await file.slice(0, size).arrayBuffer();
  const digest = await crypto.subtle.digest("SHA-256", head);
  const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${file.size}:${hex}:${file.name}`;
}

export function megabytes(bytes) {
  const mb = bytes / 1e6;
  return mb >= 10 ? `${Math.round(mb)} MB` : `${mb.toFixed(1)} MB`;
}

export function timeLeft(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s left`;
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

/** The imports this browser began and has not finished: {key: {recordingId, name, size, userId}}. */
export class ImportMemory {
  constructor(userId, storage = globalThis.localStorage) {
    this.userId = userId;
    this.storage = storage;
  }
  all() {
    try {
      const every = JSON.parse(this.storage?.getItem(MEMORY_KEY) || "{}");
      return Object.fromEntries(Object.entries(every).filter(([, item]) => item.userId === this.userId));
    } catch {
      return {};
    }
  }
  write(change) {
    try {
      const every = JSON.parse(this.storage?.getItem(MEMORY_KEY) || "{}");
      change(every);
      this.storage?.setItem(MEMORY_KEY, JSON.stringify(every));
    } catch (error) {
      console.warn("could not remember the import", error);
    }
  }
  // The store an UploadSession writes through: the chunks stay in the file, only the recording's id is kept.
  async saveSession(record) {
    if (!record.recordingId || record.refused) return;
    const { recordingId, title, file } = record;
    this.write((every) => (every[record.localId] = { recordingId, title, size: file.file_size_bytes, userId: this.userId }));
  }
  async deleteSession(localId) {
    this.write((every) => delete every[localId]);
  }
  async addChunk() {}
  async keepAsHead() {}
  async deleteChunk() {}
}
