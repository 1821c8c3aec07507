// Importing a file through the upload session, without a browser: the file is sliced, never read ahead; what the
// server already holds is not sent again; the browser remembers only the recording's id, and forgets it when done.

import assert from "node:assert/strict";
import { test } from "node:test";

import { chunksOf, fileKey, ImportMemory, mimeTypeOf, titleOf } from "../../assets/recorder/file_import.mjs";
import { UploadSession } from "../../assets/recorder/upload_session.mjs";
import { FakeChannel, FakeClock, settle } from "./fakes.mjs";

class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.get(key) ?? null;
  }
  setItem(key, value) {
    this.items.set(key, value);
  }
}

function aFile(size, name = "Interview 2024.mp3", type = "") {
  return new File([new Uint8Array(size).map((_, i) => i % 251)], name, { type, lastModified: Date.UTC(2024, 0, 2) });
}

test("a file's type comes from its extension where browsers disagree, its title from its name", () => {
  assert.equal(mimeTypeOf(aFile(1, "talk.MP3")), "audio/mpeg");
  assert.equal(mimeTypeOf(aFile(1, "talk.m4a", "audio/x-m4a")), "audio/mp4");
  assert.equal(mimeTypeOf(aFile(1, "clip.mp4", "video/mp4")), "video/mp4");
  assert.equal(mimeTypeOf(aFile(1, "voice", "audio/wav")), "audio/wav");
  assert.equal(mimeTypeOf(aFile(1, "list.m3u8", "application/vnd.apple.mpegurl")), null);
  assert.equal(titleOf("Interview 2024.final.mp3"), "Interview 2024.final");
  assert.equal(titleOf(".mp3"), ".mp3");
});

test("the chunks are lazy slices of the file, in order, the last one shorter", async () => {
  const file = aFile(25);
  const chunks = chunksOf(file, 10);
  assert.deepEqual(chunks.map((chunk) => [chunk.seq, chunk.blob.size]), [[0, 10], [1, 10], [2, 5]]);
  assert.deepEqual(new Uint8Array(await chunks[2].blob.arrayBuffer()), new Uint8Array([20, 21, 22, 23, 24]));
  assert.notEqual(await fileKey(file, 10), await fileKey(aFile(25, "other.mp3"), 10));
});

test("an import resumed with the chunks the server holds sends only the rest, then finalizes and is forgotten", async () => {
  const file = aFile(35);
  const memory = new ImportMemory("user-1", new MemoryStorage());
  const chunks = chunksOf(file, 10);
  chunks[0].acked = chunks[1].acked = true; // the server said it holds seqs 0 and 1
  const record = {
    localId: "key-1", userId: "user-1", recordingId: "rec-1", mimeType: "audio/mpeg", title: "Interview 2024",
    nextSeq: chunks.length, file: { file_size_bytes: file.size, file_modified_at: "2024-01-02T00:00:00.000Z" },
  };
  await memory.saveSession(record);
  assert.equal(memory.all()["key-1"].recordingId, "rec-1");
  const channel = new FakeChannel();
  channel.answerWith((event, payload) =>
    event === "finalize" ? { ok: true, recording: { id: "rec-1" } } : { ok: true, seq: payload.seq });
  const session = UploadSession.recovered(record, chunks, { channel, store: memory, clock: new FakeClock() });
  session.flush();
  await settle();
  assert.deepEqual(channel.sent("chunk").map((chunk) => chunk.seq), [2, 3]);
  assert.deepEqual(channel.sent("finalize"), [{ recording_id: "rec-1", chunk_count: 4 }]);
  assert.deepEqual(memory.all(), {});
});

test("a new import is created with the file's size and date", async () => {
  const file = aFile(5);
  const memory = new ImportMemory("user-1", new MemoryStorage());
  const channel = new FakeChannel();
  channel.answerWith((event) => (event === "create" ? { ok: true, recording_id: "rec-2" } : { ok: true }));
  const record = { localId: "key-2", userId: "user-1", recordingId: null, mimeType: "audio/wav", title: "Memo",
    nextSeq: 1, file: { file_size_bytes: 5, file_modified_at: "2024-01-02T00:00:00.000Z" } };
  const session = UploadSession.recovered(record, chunksOf(file, 10), { channel, store: memory, clock: new FakeClock() });
  session.flush();
  await settle();
  assert.deepEqual(channel.sent("create"), [
    { mime_type: "audio/wav", title: "Memo", file_size_bytes: 5, file_modified_at: "2024-01-02T00:00:00.000Z" },
  ]);
});
