// One recording's upload, live or recovered from an earlier page: a chunk leaves the store only once the server
// acknowledges that it is durable; what fails is sent again with backoff, and the server's answer alone decides
// whether a failure is worth retrying. Pure logic: the channel, the store and the clock are handed in, so the
// tests run it in Node without a browser.

import { OFFLINE } from "./audio_channel.mjs";

export const ACK_TIMEOUT_MS = 10000;
export const FINALIZE_TIMEOUT_MS = 180000;
export const FIRST_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 8000;
// At most this many chunks wait for their acknowledgement at once. After a long time offline hundreds are
// pending: sent all at once they would time out together, and a connection still on long-polling sends them in
// one request, which engine.io refuses past 16 packets (each chunk is two).
export const MAX_IN_FLIGHT = 4;

const browserClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer),
};

/** What an answer means: "ack" (done), "retry" (the server says to send it again), "hold" (the sign-in ended: the
 * audio is fine and waits in this browser for the next one) or "refuse" (never resend). */
export function judge(answer) {
  if (answer.ok) return "ack";
  if (answer.signed_out) return "hold";
  return answer.retry ? "retry" : "refuse";
}

export class UploadSession {
  // `record` is what the store keeps: localId, userId, recordingId, mimeType, title, startedAt, timeZone, nextSeq,
  // stopped, updatedAt, and `refused` ({reason, at}) once the server refused it for good. `listener` hears
  // started, finalizing, finished(recording) and refused, each with this session first.
  constructor(record, { channel, store, clock = browserClock, listener = {} }) {
    Object.assign(this, { record, channel, store, clock, listener });
    this.pending = new Map(); // seq -> {blob, ms}: not yet acknowledged
    this.inflight = new Map(); // seq -> attempt marker
    this.backoffMs = FIRST_BACKOFF_MS;
    this.retryTimer = null;
    this.creating = this.finalizing = this.finished = this.recovered = false;
    this.held = false; // this page's sign-in ended: nothing more is sent from it, and nothing is marked refused
    this.problem = null;
    this.whenFinished = new Promise((resolve) => (this.finish = resolve));
  }
  /** An earlier page's recording, with the chunks its store still holds; it is stopped, only the upload is left. */
  static recovered(record, chunks, dependencies) {
    const session = new UploadSession({ ...record, stopped: true }, dependencies);
    for (const chunk of chunks) if (!chunk.acked) session.pending.set(chunk.seq, chunk);
    session.recovered = true;
    return session;
  }
  get waitingMs() {
    let total = 0;
    for (const chunk of this.pending.values()) total += chunk.ms;
    return total;
  }
  async addChunk(blob, ms) {
    const seq = this.record.nextSeq++;
    this.record.updatedAt = this.clock.now();
    this.pending.set(seq, { blob, ms });
    await this.store.addChunk(this.record, { seq, blob, ms }).catch((error) => {
      console.warn("could not keep chunk", seq, "in IndexedDB", error);
    });
    this.send(seq);
  }
  async stop() {
    this.record.stopped = true;
    await this.store.saveSession(this.record).catch(() => {});
    if (this.record.refused) return this.settleRefused();
    if (this.held) return this.finish(); // the page that signs in again uploads it
    this.flush();
  }
  /** Sends what is waiting, oldest first, a few at a time: after a reconnect, a backoff, or the recording's stop. */
  flush() {
    if (this.finished || this.record.refused || this.held) return;
    if (!this.record.recordingId) return this.create();
    for (const seq of [...this.pending.keys()].sort((a, b) => a - b)) {
      if (this.inflight.size >= MAX_IN_FLIGHT) break;
      this.send(seq);
    }
    this.maybeFinalize();
  }
  connectionLost() {
    this.inflight.clear(); // their answers will not come: send them again on the next connection
  }
  async create() {
    if (this.creating || this.record.recordingId) return;
    this.creating = true;
    const { mimeType, title, titleIsDefault, file } = this.record; // `file`: an import's size and date (importer.js)
    const payload = { mime_type: mimeType, title, ...(titleIsDefault ? { title_is_default: true } : {}), ...file };
    const answer = await this.ask("create", payload, ACK_TIMEOUT_MS);
    this.creating = false;
    if (judge(answer) !== "ack") return this.failed(answer);
    this.record.recordingId = answer.recording_id;
    await this.store.saveSession(this.record).catch(() => {});
    this.listener.started?.(this);
    this.succeeded();
    this.flush();
  }
  async send(seq) {
    if (!this.record.recordingId || this.record.refused || this.held || this.inflight.has(seq)) return;
    if (!this.pending.has(seq)) return;
    if (this.inflight.size >= MAX_IN_FLIGHT) return; // sent when an acknowledgement frees a place
    const attempt = {};
    this.inflight.set(seq, attempt);
    const read = async () => ({ recording_id: this.record.recordingId, seq, data: await this.pending.get(seq).blob.arrayBuffer() });
    const answer = await this.ask("chunk", read, ACK_TIMEOUT_MS);
    if (this.inflight.get(seq) === attempt) this.inflight.delete(seq);
    if (judge(answer) !== "ack") return this.failed(answer);
    this.acknowledged(seq);
  }
  acknowledged(seq) {
    const { blob, ms } = this.pending.get(seq) || {};
    this.pending.delete(seq);
    const { localId } = this.record;
    const forget = seq === 0 && blob ? this.store.keepAsHead(localId, { seq, blob, ms }) : this.store.deleteChunk(localId, seq);
    forget.catch(() => {});
    this.succeeded();
    // The server just took a chunk, so a backoff from earlier failures has done its job: the next waiting chunk
    // takes the freed place now.
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.flush();
  }
  async maybeFinalize() {
    if (!this.record.stopped || this.finalizing || this.finished || this.record.refused || this.held) return;
    if (!this.record.recordingId || this.pending.size > 0) return;
    if (this.record.nextSeq === 0) return this.close(null);
    this.finalizing = true;
    this.listener.finalizing?.(this);
    const payload = { recording_id: this.record.recordingId, chunk_count: this.record.nextSeq };
    const answer = await this.ask("finalize", payload, FINALIZE_TIMEOUT_MS);
    this.finalizing = false;
    if (judge(answer) === "ack") return this.close(answer.recording);
    this.failed(answer);
  }
  async ask(event, payload, timeoutMs) {
    // A channel that throws, or a chunk that cannot be read, is a failure to retry: the audio stays pending.
    try {
      const body = typeof payload === "function" ? await payload() : payload;
      return (await this.channel.request(event, body, timeoutMs)) ?? { ok: false, retry: true, error: "no answer" };
    } catch (error) {
      return { ok: false, retry: true, error: error?.message || String(error) };
    }
  }
  succeeded() {
    this.backoffMs = FIRST_BACKOFF_MS;
    this.problem = null;
  }
  failed(answer) {
    // The server decides what is worth sending again; what it refuses for good is kept here, never deleted.
    if (judge(answer) === "refuse") return this.refuse(answer.error);
    if (judge(answer) === "hold") return this.hold();
    this.problem = answer.error === OFFLINE ? null : `retrying: ${answer.error}`;
    if (this.retryTimer) return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }
  async refuse(reason) {
    if (this.record.refused || this.finished) return;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.problem = null;
    this.record.refused = { reason: reason || "", at: this.clock.now() };
    await this.store.saveSession(this.record).catch(() => {});
    if (this.record.stopped) this.settleRefused();
    else this.listener.refused?.(this);
  }
  hold() {
    // Signed out ("sign out on every device", a rotated key): the server does not know who sends, which says nothing
    // about the audio. It stays in the store, unmarked, for the page that signs in again to upload into its recording.
    this.held = true;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.problem = null;
    if (this.record.stopped) this.finish(); // let go of the lock: another page of this browser may take it up
  }
  settleRefused() {
    // Nothing more will be sent: other pages may show it (the lock is let go), and only the user may discard it.
    this.finish();
    this.listener.refused?.(this);
  }
  async close(recording) {
    if (this.finished) return;
    this.finished = true;
    this.clock.clearTimeout(this.retryTimer);
    await this.store.deleteSession(this.record.localId).catch(() => {});
    this.finish();
    this.listener.finished?.(this, recording);
  }
}
