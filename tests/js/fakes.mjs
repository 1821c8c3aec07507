// Stand-ins for what the upload session is handed in the browser: the audio channel, the IndexedDB chunk store and
// the clock. Each keeps what happened, so a test asserts on what the server was sent and what the store still holds.

export class FakeChannel {
  constructor() {
    this.requests = []; // {event, payload}, in the order they were sent
    this.answer = () => ({ ok: true });
  }
  /** `answer(event, payload)` decides each reply: an object, a promise of one, or a throw. */
  answerWith(answer) {
    this.answer = answer;
  }
  async request(event, payload) {
    this.requests.push({ event, payload });
    return this.answer(event, payload);
  }
  sent(event) {
    return this.requests.filter((request) => request.event === event).map((request) => request.payload);
  }
}

export class FakeStore {
  constructor() {
    this.saved = new Map(); // localId -> record
    this.chunks = new Map(); // `${localId}/${seq}` -> chunk
  }
  async saveSession(record) {
    this.saved.set(record.localId, structuredClone(record));
  }
  async addChunk(record, chunk) {
    this.chunks.set(`${record.localId}/${chunk.seq}`, { localId: record.localId, ...chunk });
    await this.saveSession(record);
  }
  async keepAsHead(localId, chunk) {
    this.chunks.set(`${localId}/${chunk.seq}`, { localId, ...chunk, acked: true });
  }
  async deleteChunk(localId, seq) {
    this.chunks.delete(`${localId}/${seq}`);
  }
  async deleteSession(localId) {
    this.saved.delete(localId);
    for (const key of [...this.chunks.keys()]) if (key.startsWith(`${localId}/`)) this.chunks.delete(key);
  }
  /** Seqs of the chunks still waiting to be acknowledged. */
  unsent(localId = "local-1") {
    const waiting = [...this.chunks.values()].filter((chunk) => chunk.localId === localId && !chunk.acked);
    return waiting.map((chunk) => chunk.seq).sort((a, b) => a - b);
  }
}

export class FakeClock {
  constructor() {
    this.time = 1_000_000;
    this.timers = new Map(); // id -> {callback, ms}
    this.delays = []; // every delay asked for, in order
    this.nextId = 1;
  }
  now() {
    return this.time;
  }
  setTimeout(callback, ms) {
    const id = this.nextId++;
    this.timers.set(id, { callback, ms });
    this.delays.push(ms);
    return id;
  }
  clearTimeout(id) {
    this.timers.delete(id);
  }
  /** Runs the timers that are due now (all of them: the session keeps at most one). */
  fire() {
    const due = [...this.timers.values()];
    this.timers.clear();
    for (const { callback, ms } of due) {
      this.time += ms;
      callback();
    }
    return due.length;
  }
}

/** Lets every pending promise and I/O callback run, so the session's awaits have all moved on. */
export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

export function newRecord(overrides = {}) {
  return {
    localId: "local-1",
    userId: "user-1",
    recordingId: null,
    mimeType: "audio/webm",
    title: "Recording 2025-05-01 14:32",
    startedAt: 1_000_000,
    timeZone: "Europe/Berlin",
    nextSeq: 0,
    stopped: false,
    updatedAt: 1_000_000,
    ...overrides,
  };
}

export function audio(text) {
  return new Blob([text], { type: "audio/webm" });
}
