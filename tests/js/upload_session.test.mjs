// The upload session without a browser: what reaches the server, what stays in the store, and when it is retried.

import assert from "node:assert/strict";
import { test } from "node:test";

import { OFFLINE } from "../../assets/recorder/audio_channel.mjs";
import { FIRST_BACKOFF_MS, judge, MAX_BACKOFF_MS, MAX_IN_FLIGHT, UploadSession } from "../../assets/recorder/upload_session.mjs";
import { audio, FakeChannel, FakeClock, FakeStore, newRecord, settle } from "./fakes.mjs";

function newSession({ record = newRecord(), answer } = {}) {
  const channel = new FakeChannel();
  const store = new FakeStore();
  const clock = new FakeClock();
  const heard = [];
  const listener = {
    started: () => heard.push("started"),
    finalizing: () => heard.push("finalizing"),
    finished: (_session, recording) => heard.push(["finished", recording]),
    refused: () => heard.push("refused"),
  };
  channel.answerWith(answer ?? ((event) => (event === "create" ? { ok: true, recording_id: "rec-1" } : { ok: true })));
  const session = new UploadSession(record, { channel, store, clock, listener });
  return { session, channel, store, clock, heard };
}

async function recordChunks(session, count) {
  await session.create();
  for (let i = 0; i < count; i++) await session.addChunk(audio(`chunk ${i}`), 1000);
  await settle();
}

test("the server's answer is judged by its ok and retry flags, not by its status", () => {
  assert.equal(judge({ ok: true }), "ack");
  assert.equal(judge({ ok: false, status: 503, error: "busy", retry: true }), "retry");
  assert.equal(judge({ ok: false, status: 503, error: "busy", retry: false }), "refuse");
  assert.equal(judge({ ok: false, status: 413, error: "too large", retry: true }), "retry");
  assert.equal(judge({ ok: false, status: 413, error: "too large" }), "refuse");
});

test("a recording is created with its type and title only", async () => {
  const { session, channel, heard } = newSession();
  await session.create();
  assert.deepEqual(channel.sent("create"), [{ mime_type: "audio/webm", title: "Recording 2025-05-01 14:32" }]);
  assert.equal(session.record.recordingId, "rec-1");
  assert.deepEqual(heard, ["started"]);
});

test("a chunk is in the store before it is sent, and an acknowledgement removes it", async () => {
  const { session, channel, store } = newSession();
  const storedWhenSent = [];
  channel.answerWith((event, payload) => {
    if (event === "chunk") storedWhenSent.push(store.unsent().includes(payload.seq));
    return event === "create" ? { ok: true, recording_id: "rec-1" } : { ok: true };
  });
  await recordChunks(session, 3);
  assert.deepEqual(storedWhenSent, [true, true, true]);
  assert.deepEqual(store.unsent(), []);
  assert.equal(session.pending.size, 0);
  const head = store.chunks.get("local-1/0");
  assert.equal(head.acked, true, "the first chunk (the file's header) is kept, marked sent");
  assert.equal(store.chunks.size, 1);
  const sent = channel.sent("chunk");
  assert.deepEqual(sent.map((payload) => payload.seq), [0, 1, 2]);
  assert.equal(Buffer.from(sent[1].data).toString(), "chunk 1");
});

test("stopping after every acknowledgement finalizes with the chunk count and forgets the recording", async () => {
  const summary = { id: "rec-1", title: "t", duration_ms: 3000 };
  const { session, channel, store, heard } = newSession({
    answer: (event) => (event === "finalize" ? { ok: true, recording: summary } : { ok: true, recording_id: "rec-1" }),
  });
  await recordChunks(session, 3);
  await session.stop();
  await settle();
  assert.deepEqual(channel.sent("finalize"), [{ recording_id: "rec-1", chunk_count: 3 }]);
  assert.deepEqual(heard.slice(1), ["finalizing", ["finished", summary]]);
  assert.equal(store.saved.has("local-1"), false);
  assert.equal(store.chunks.size, 0);
  assert.equal(await Promise.race([session.whenFinished.then(() => "finished"), settle().then(() => "pending")]), "finished");
});

test("a stopped recording without audio is finished without asking the server to finalize", async () => {
  const { session, channel, heard } = newSession();
  await session.create();
  await session.stop();
  await settle();
  assert.deepEqual(channel.sent("finalize"), []);
  assert.deepEqual(heard, ["started", ["finished", null]]);
});

test("a refused chunk stays in the store and is never sent again", async () => {
  const refusal = { ok: false, status: 413, error: "the chunk is too large.", retry: false };
  const { session, channel, store, clock, heard } = newSession({
    answer: (event, payload) => (event === "chunk" && payload.seq === 1 ? refusal : { ok: true, recording_id: "rec-1" }),
  });
  await recordChunks(session, 3);
  assert.deepEqual(session.record.refused, { reason: "the chunk is too large.", at: clock.now() });
  assert.deepEqual(store.unsent(), [1]);
  assert.deepEqual(store.saved.get("local-1").refused.reason, "the chunk is too large.");
  assert.deepEqual(heard, ["started", "refused"]);

  const sentBefore = channel.requests.length;
  await session.addChunk(audio("after the refusal"), 1000);
  session.flush();
  clock.fire();
  await session.stop();
  await settle();
  assert.equal(channel.requests.length, sentBefore, "nothing more reaches the server, not even finalize");
  assert.deepEqual(store.unsent(), [1, 3], "later audio is kept too");
  assert.deepEqual(heard.at(-1), "refused", "stopped, it is settled for the user to save or discard");
});

test("a retryable answer keeps the chunk and sends it again after the backoff", async () => {
  let busy = true;
  const { session, channel, store, clock } = newSession({
    answer: (event) => {
      if (event === "create") return { ok: true, recording_id: "rec-1" };
      return busy ? { ok: false, status: 503, error: "the server is busy", retry: true } : { ok: true };
    },
  });
  await recordChunks(session, 1);
  assert.deepEqual(store.unsent(), [0]);
  assert.equal(session.problem, "retrying: the server is busy");
  assert.equal(session.record.refused, undefined);
  busy = false;
  assert.equal(clock.fire(), 1);
  await settle();
  assert.deepEqual(channel.sent("chunk").map((payload) => payload.seq), [0, 0]);
  assert.deepEqual(store.unsent(), []);
  assert.equal(session.problem, null);
});

test("the backoff doubles with each failure up to its cap, and starts over after a success", async () => {
  let failures = 8;
  const { session, clock } = newSession({
    answer: (event) => {
      if (event === "create") return { ok: true, recording_id: "rec-1" };
      return failures-- > 0 ? { ok: false, status: 503, error: "busy", retry: true } : { ok: true };
    },
  });
  await recordChunks(session, 1);
  while (clock.fire()) await settle();
  assert.deepEqual(clock.delays, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(clock.delays[0], FIRST_BACKOFF_MS);
  assert.equal(Math.max(...clock.delays), MAX_BACKOFF_MS);
  assert.equal(session.pending.size, 0);

  failures = 1;
  await session.addChunk(audio("later"), 1000);
  await settle();
  assert.equal(clock.delays.at(-1), FIRST_BACKOFF_MS);
});

test("many failures at once wait on one timer", async () => {
  const { session, clock } = newSession({
    answer: (event) => (event === "create" ? { ok: true, recording_id: "rec-1" } : { ok: false, error: "busy", retry: true }),
  });
  await recordChunks(session, 4);
  assert.equal(clock.timers.size, 1);
});

test("after a reconnect, what waited is sent again in seq order", async () => {
  let online = false;
  const { session, channel, store } = newSession({
    answer: (event) => {
      if (!online) return { ok: false, retry: true, error: OFFLINE };
      return event === "create" ? { ok: true, recording_id: "rec-1" } : { ok: true };
    },
  });
  online = true;
  await session.create();
  online = false;
  for (let i = 0; i < 5; i++) await session.addChunk(audio(`chunk ${i}`), 1000);
  await settle();
  assert.equal(session.problem, null, "being offline is not shown as a problem");
  assert.deepEqual(store.unsent(), [0, 1, 2, 3, 4]);

  session.connectionLost();
  online = true;
  const before = channel.requests.length;
  session.flush();
  await settle();
  assert.deepEqual(channel.requests.slice(before).map((request) => request.payload.seq), [0, 1, 2, 3, 4]);
  assert.deepEqual(store.unsent(), []);
});

test("a chunk still in flight is not sent twice, until the connection is lost", async () => {
  let release;
  const { session, channel } = newSession({
    answer: (event) => (event === "create" ? { ok: true, recording_id: "rec-1" } : new Promise((resolve) => (release = resolve))),
  });
  await recordChunks(session, 1);
  session.flush();
  await settle();
  assert.equal(channel.sent("chunk").length, 1);
  session.connectionLost();
  session.flush();
  await settle();
  assert.equal(channel.sent("chunk").length, 2);
  release({ ok: true });
  await settle();
  assert.equal(session.pending.size, 0);
});

test("nothing is dropped when the channel throws, answers nothing or times out", async () => {
  const failures = [
    () => Promise.reject(new Error("transport closed")),
    () => {
      throw new Error("socket gone");
    },
    () => undefined,
    () => ({ ok: false, retry: true, error: "no answer from the server" }),
  ];
  const { session, channel, store, clock } = newSession({
    answer: (event) => (event === "create" ? { ok: true, recording_id: "rec-1" } : (failures.shift() ?? (() => ({ ok: true })))()),
  });
  await recordChunks(session, 1);
  assert.deepEqual(store.unsent(), [0]);
  while (clock.fire()) await settle();
  assert.equal(channel.sent("chunk").length, 5);
  assert.deepEqual(store.unsent(), []);
  assert.equal(session.record.refused, undefined);
});

test("a recovered recording sends only what was not acknowledged, in seq order, then finalizes", async () => {
  const record = newRecord({ recordingId: "rec-9", nextSeq: 4 });
  const channel = new FakeChannel();
  const store = new FakeStore();
  const chunks = [3, 0, 2, 1].map((seq) => ({ localId: "local-1", seq, blob: audio(`c${seq}`), ms: 1000, acked: seq === 0 }));
  for (const chunk of chunks) store.chunks.set(`local-1/${chunk.seq}`, chunk);
  channel.answerWith((event) => (event === "finalize" ? { ok: true, recording: { id: "rec-9" } } : { ok: true }));
  const session = UploadSession.recovered(record, chunks, { channel, store, clock: new FakeClock() });
  assert.equal(session.record.stopped, true);
  assert.equal(session.waitingMs, 3000);
  session.flush();
  await settle();
  assert.deepEqual(channel.sent("chunk").map((payload) => payload.seq), [1, 2, 3]);
  assert.deepEqual(channel.sent("finalize"), [{ recording_id: "rec-9", chunk_count: 4 }]);
  assert.equal(store.chunks.size, 0);
});

test("a retryable finalize is asked again, a refused one keeps the audio", async () => {
  const answers = [
    { ok: false, status: 503, error: "busy", retry: true },
    { ok: false, status: 409, error: "a chunk is missing", retry: false },
  ];
  const { session, channel, store, clock, heard } = newSession({
    answer: (event) => (event === "finalize" ? answers.shift() : { ok: true, recording_id: "rec-1" }),
  });
  await recordChunks(session, 2);
  await session.stop();
  await settle();
  clock.fire();
  await settle();
  assert.equal(channel.sent("finalize").length, 2);
  assert.equal(session.record.refused.reason, "a chunk is missing");
  assert.equal(store.saved.has("local-1"), true, "the refused recording stays in the browser");
  assert.equal(heard.at(-1), "refused");
});

test("after a long time offline the waiting chunks go a few at a time, oldest first, until all are sent", async () => {
  const { session, channel, store } = newSession();
  let online = false;
  let inflight = 0;
  let most = 0;
  channel.answerWith(async (event) => {
    if (event === "create") return { ok: true, recording_id: "rec-1" };
    if (!online) return { ok: false, retry: true, error: OFFLINE };
    inflight += 1;
    most = Math.max(most, inflight);
    await settle();
    inflight -= 1;
    return { ok: true };
  });
  await session.create();
  for (let i = 0; i < 60; i++) await session.addChunk(audio(`chunk ${i}`), 1000);
  await settle();
  online = true;
  channel.requests.length = 0;
  session.flush();
  for (let round = 0; round < 100 && session.pending.size > 0; round++) await settle();
  assert.deepEqual(store.unsent(), []);
  assert.ok(most <= MAX_IN_FLIGHT, `${most} chunks were waiting for an answer at once`);
  const order = channel.sent("chunk").map((payload) => payload.seq);
  assert.deepEqual(order, [...order].sort((a, b) => a - b), "oldest first");
  assert.equal(new Set(order).size, 60, "each chunk once");
});

test("a signed-out answer holds the audio for the next sign-in: kept, not refused, not sent again from this page", async () => {
  const signedOut = { ok: false, status: 401, error: "you have been signed out; sign in again", retry: false, signed_out: true };
  assert.equal(judge(signedOut), "hold");
  const { session, channel, store, clock, heard } = newSession({
    answer: (event, payload) => (event === "chunk" && payload.seq >= 1 ? signedOut : { ok: true, recording_id: "rec-1" }),
  });
  await recordChunks(session, 2);
  await session.addChunk(audio("after the sign-out"), 1000);
  const sentBefore = channel.requests.length;
  assert.equal(clock.fire(), 0, "no retry is scheduled");
  session.flush();
  await session.stop();
  await settle();
  assert.equal(channel.requests.length, sentBefore, "nothing more reaches the server from this page");
  assert.equal(session.record.refused, undefined);
  assert.equal(store.saved.get("local-1").refused, undefined, "a later page uploads it");
  assert.deepEqual(store.unsent(), [1, 2]);
  assert.deepEqual(heard, ["started"]);
  assert.equal(await Promise.race([session.whenFinished.then(() => "let go"), settle().then(() => "held")]), "let go");

  const again = new FakeChannel(); // the page of the next sign-in: its own token, the same recording
  again.answerWith((event) => (event === "finalize" ? { ok: true, recording: { id: "rec-1" } } : { ok: true }));
  const recovered = UploadSession.recovered(store.saved.get("local-1"), [...store.chunks.values()], { channel: again, store, clock });
  recovered.flush();
  await settle();
  assert.deepEqual(again.sent("chunk").map((payload) => [payload.recording_id, payload.seq]), [["rec-1", 1], ["rec-1", 2]]);
  assert.deepEqual(again.sent("finalize"), [{ recording_id: "rec-1", chunk_count: 3 }]);
});
