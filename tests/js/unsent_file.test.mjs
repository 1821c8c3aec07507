// The file saved from refused audio, built from a WebM laid out and cut the way Chrome's MediaRecorder does it: a
// cluster per chunk, 60-ms blocks, and each chunk ending on the first byte (the id) of a block whose rest opens the
// next chunk. Every block carries its own time in its payload, so the test can tell which audio the file holds.

import assert from "node:assert/strict";
import { test } from "node:test";

import { unsentFileParts } from "../../assets/recorder/unsent_file.mjs";

const FRAME_MS = 60;
const SECOND_MS = 1020; // Chrome's chunks: 17 blocks of 60 ms

function vintSize(size) {
  return size < 127 ? [0x80 | size] : [0x40 | (size >> 8), size & 0xff];
}

function elementBytes(id, content) {
  return [...id, ...vintSize(content.length), ...content];
}

function block(relative, time) {
  const payload = [0xfc, (time >> 16) & 0xff, (time >> 8) & 0xff, time & 0xff, ...new Array(16).fill(7)];
  return elementBytes([0xa3], [0x81, (relative >> 8) & 0xff, relative & 0xff, 0x80, ...payload]);
}

/** A recording of `seconds` chunks and where Chrome would cut it: after the id of each chunk's last block. */
function recording(seconds, { cleanCuts = false } = {}) {
  const header = [
    ...elementBytes([0x1a, 0x45, 0xdf, 0xa3], [0x42, 0x86, 0x81, 0x01]),
    ...[0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ...elementBytes([0x16, 0x54, 0xae, 0x6b], elementBytes([0xae], [0xd7, 0x81, 0x01])),
  ];
  const bytes = [...header];
  const cuts = [];
  for (let second = 0; second < seconds; second++) {
    const clusterTime = second * SECOND_MS;
    bytes.push(...[0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    bytes.push(...elementBytes([0xe7], [(clusterTime >> 8) & 0xff, clusterTime & 0xff]));
    for (let relative = 0; relative < SECOND_MS; relative += FRAME_MS) {
      if (relative === SECOND_MS - FRAME_MS && !cleanCuts) cuts.push(bytes.length + 1); // the id stays behind
      bytes.push(...block(relative, clusterTime + relative));
    }
    if (cleanCuts) cuts.push(bytes.length);
  }
  const chunks = [];
  let start = 0;
  for (const [seq, end] of [...cuts.slice(0, -1), bytes.length].entries()) {
    chunks.push({ seq, blob: new Blob([Uint8Array.from(bytes.slice(start, end))]) });
    start = end;
  }
  return chunks;
}

/** Reads the file as a player would: every block's time and the time its payload says it was recorded at. */
function played(bytes) {
  const read = (at, marker) => {
    const length = Math.clz32(bytes[at]) - 23;
    let value = marker ? bytes[at] : bytes[at] & (0xff >> length);
    for (let i = 1; i < length; i++) value = value * 256 + bytes[at + i];
    return { value, length };
  };
  const blocks = [];
  let clusterTime = null;
  for (let at = 0; at < bytes.length; ) {
    const id = read(at, true);
    const size = read(at + id.length);
    const start = at + id.length + size.length;
    const unknown = size.value === 2 ** (7 * size.length) - 1;
    if (id.value === 0x18538067 || id.value === 0x1f43b675) {
      assert.ok(unknown, "segments and clusters are open-ended, as recorded");
      at = start;
      continue;
    }
    const end = start + size.value;
    assert.ok(end <= bytes.length, `an element at ${at} runs past the end of the file`);
    if (id.value === 0xe7) clusterTime = (bytes[start] << 8) | bytes[start + 1];
    else if (id.value === 0xa3) {
      assert.equal(bytes[start], 0x81, `the block at ${at} is on track 1`);
      assert.notEqual(clusterTime, null, "a block inside a cluster");
      const relative = (bytes[start + 1] << 8) | bytes[start + 2];
      const recorded = (bytes[start + 5] << 16) | (bytes[start + 6] << 8) | bytes[start + 7];
      blocks.push({ time: clusterTime + relative, recorded });
    } else assert.ok([0x1a45dfa3, 0x1654ae6b].includes(id.value), `unexpected element ${id.value.toString(16)} at ${at}`);
    at = end;
  }
  return blocks;
}

async function saved(mimeType, chunks) {
  return new Uint8Array(await new Blob(await unsentFileParts(mimeType, chunks)).arrayBuffer());
}

const timesOf = (seconds) => seconds.flatMap((s) => Array.from({ length: 17 }, (_, i) => s * SECOND_MS + i * FRAME_MS));

test("refused after five seconds: the file is the header and the unsent seconds, every block readable and in time", async () => {
  const chunks = recording(10);
  const kept = [{ ...chunks[0], acked: true }, ...chunks.slice(5)];
  const blocks = played(await saved("audio/webm;codecs=opus", kept));
  // The block cut off at the start of chunk 5 was recorded at 5040 ms, its id sent with chunk 4: it is kept.
  assert.deepEqual(blocks.map((b) => b.recorded), [4 * SECOND_MS + 16 * FRAME_MS, ...timesOf([5, 6, 7, 8, 9])]);
  const times = blocks.map((b) => b.time);
  assert.deepEqual(times, blocks.map((b) => b.recorded), "each block plays at the time it was recorded");
});

test("a joint byte for byte, as the file was saved before, cannot be read whole", async () => {
  const chunks = recording(10);
  const kept = [chunks[0], ...chunks.slice(5)];
  const naive = new Uint8Array(await new Blob(kept.map((chunk) => chunk.blob)).arrayBuffer());
  // The first chunk's dangling id joined to the rest of another second's block: a block read at the wrong time.
  const blocks = played(naive);
  assert.ok(blocks.some((b) => b.time !== b.recorded), "the byte-for-byte joint misplaces audio");
});

test("chunks cut cleanly at clusters, and several gaps, are mended the same way", async () => {
  const chunks = recording(12, { cleanCuts: true });
  const kept = [{ ...chunks[0], acked: true }, chunks[3], chunks[4], ...chunks.slice(8)];
  const blocks = played(await saved("audio/webm", kept));
  assert.deepEqual(blocks.map((b) => b.recorded), timesOf([3, 4, 8, 9, 10, 11]));
  assert.deepEqual(blocks.map((b) => b.time), blocks.map((b) => b.recorded));
});

test("a recording refused from its first chunk, or another format, is saved exactly as recorded", async () => {
  const chunks = recording(4);
  const asRecorded = new Uint8Array(await new Blob(chunks.map((chunk) => chunk.blob)).arrayBuffer());
  assert.deepEqual(await saved("audio/webm", [...chunks].reverse()), asRecorded);
  assert.equal(played(asRecorded).length, 4 * 17);
  const mp4 = [{ ...chunks[0], acked: true }, chunks[3]];
  const parts = await unsentFileParts("audio/mp4", mp4);
  assert.deepEqual(parts, [chunks[0].blob, chunks[3].blob]);
});
