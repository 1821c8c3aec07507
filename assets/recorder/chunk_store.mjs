// IndexedDB: the browser's durable copy of every chunk the server has not yet acknowledged, so audio outlives a
// dropped network, a reload or a crashed tab. Without IndexedDB (private modes) every call is a no-op and unsent
// audio lives in memory only.

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

function chunksOf(localId) {
  return IDBKeyRange.bound([localId, -Infinity], [localId, Infinity]);
}

export class ChunkStore {
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
    tx.objectStore("chunks").delete(chunksOf(localId));
    await committed(tx);
  }
  async sessions() {
    if (!this.db) return [];
    return done(this.db.transaction("sessions").objectStore("sessions").getAll());
  }
  async chunks(localId) {
    if (!this.db) return [];
    return done(this.db.transaction("chunks").objectStore("chunks").getAll(chunksOf(localId)));
  }
}
