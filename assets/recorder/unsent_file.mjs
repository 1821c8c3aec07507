// The file "save it to a file" writes from refused audio: the recording's header, then the audio the server never
// took. Between the first chunk (kept for its header) and the unsent ones lie the chunks the server acknowledged,
// which this browser forgot. MediaRecorder cuts chunks anywhere (Chrome between a block's first byte and the rest),
// so joining the first chunk to a later one byte for byte can leave a joint a player cannot read: ffmpeg then skips
// to the cluster after next, a second of audio. For WebM each joint is mended: the header is the first chunk up to
// its first cluster, a run of consecutive unsent chunks starts at its first cluster, and the blocks cut off before
// that cluster go into a cluster of their own, just before it in time. Other formats are joined as they are.

const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const CLUSTER = 0x1f43b675;
const TIMECODE = 0xe7;
const SIMPLE_BLOCK = 0xa3;
const BLOCK_GROUP = 0xa0;
const CLUSTER_ID = Uint8Array.of(0x1f, 0x43, 0xb6, 0x75);
const UNKNOWN_SIZE = Uint8Array.of(0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** The parts of the file, in order, for `new Blob(parts)`; chunks are {seq, blob, acked}. */
export async function unsentFileParts(mimeType, chunks) {
  const ordered = [...chunks].sort((a, b) => a.seq - b.seq);
  const asRecorded = ordered.map((chunk) => chunk.blob);
  const unsent = ordered.filter((chunk) => !chunk.acked);
  const runs = consecutiveRuns(unsent);
  const whole = runs.length === 0 || (runs.length === 1 && runs[0][0].seq === ordered[0].seq);
  if (!/webm/i.test(mimeType) || ordered[0]?.seq !== 0 || whole) return asRecorded;
  const parts = [];
  for (const [index, run] of runs.entries()) {
    const bytes = await joined(run);
    if (index === 0 && run[0].seq === 0) {
      parts.push(bytes); // the recording's own beginning, header and all
      continue;
    }
    if (index === 0) {
      const header = headerOf(await joined([ordered[0]]));
      if (!header) return asRecorded;
      parts.push(header);
    }
    parts.push(...mended(bytes));
  }
  return parts;
}

function consecutiveRuns(chunks) {
  const runs = [];
  for (const chunk of chunks) {
    const last = runs.at(-1);
    if (last && last.at(-1).seq + 1 === chunk.seq) last.push(chunk);
    else runs.push([chunk]);
  }
  return runs;
}

async function joined(chunks) {
  return new Uint8Array(await new Blob(chunks.map((chunk) => chunk.blob)).arrayBuffer());
}

/** The first chunk up to its first cluster: EBML header, segment, tracks. Null where it is not laid out so. */
function headerOf(bytes) {
  const ebml = element(bytes, 0);
  if (ebml?.id !== EBML || ebml.unknown) return null;
  const segment = element(bytes, ebml.end);
  if (segment?.id !== SEGMENT) return null;
  let at = segment.start;
  for (let child = element(bytes, at); child; child = element(bytes, at)) {
    if (child.id === CLUSTER) {
      const header = bytes.slice(0, at);
      header.set(unknownSize(segment.sizeLength), segment.start - segment.sizeLength); // the segment ends elsewhere now
      return header;
    }
    if (child.unknown || child.end > bytes.length) return null;
    at = child.end;
  }
  return null;
}

/** A run cut from the middle of the recording, made readable from its first byte. */
function mended(bytes) {
  const first = firstCluster(bytes);
  if (first < 0) return [bytes]; // no cluster to start at: kept as it is, a player may skip it
  const cutOff = blocksBefore(bytes.subarray(0, first));
  if (!cutOff) return [bytes.subarray(first)]; // less than a block: its start went to the server with the chunk before
  const cluster = element(bytes, first);
  const next = element(bytes, cluster.start);
  const nextTime = next?.id === TIMECODE ? uint(bytes, next.start, next.end) : 0;
  // The cut-off blocks keep their spacing and end one block's step before the next cluster starts.
  const step = blockSpacing(bytes, next ? next.end : cluster.start);
  const time = Math.max(0, nextTime - step - (cutOff.at(-1).relative - cutOff[0].relative));
  const blocks = cutOff.map((block) => {
    const copy = block.bytes.slice();
    new DataView(copy.buffer).setInt16(block.timeAt, block.relative - cutOff[0].relative);
    return copy;
  });
  return [clusterStart(time), ...blocks, bytes.subarray(first)];
}

function firstCluster(bytes) {
  for (let at = bytes.indexOf(CLUSTER_ID[0]); at >= 0; at = bytes.indexOf(CLUSTER_ID[0], at + 1)) {
    if (!CLUSTER_ID.every((byte, i) => bytes[at + i] === byte)) continue;
    const cluster = element(bytes, at);
    if (cluster && element(bytes, cluster.start)?.id === TIMECODE) return at;
  }
  return -1;
}

/** The whole blocks `bytes` holds, also when its first byte (a block's id) was cut off; null when none. */
function blocksBefore(bytes) {
  for (const candidate of [bytes, Uint8Array.of(SIMPLE_BLOCK, ...bytes)]) {
    const blocks = [];
    let at = 0;
    for (let block = element(candidate, at); block && block.end <= candidate.length; block = element(candidate, at)) {
      if (block.id !== SIMPLE_BLOCK) break; // a block group's timing sits deeper: not mended, left out
      const time = blockTime(candidate, block);
      if (!time) break;
      const bytesOf = candidate.slice(block.offset, block.end);
      blocks.push({ bytes: bytesOf, timeAt: time.at - block.offset, relative: time.relative });
      at = block.end;
    }
    if (blocks.length && at === candidate.length) return blocks;
  }
  return null;
}

/** Milliseconds between a cluster's first two blocks, the recorder's frame; 0 when there are not two. */
function blockSpacing(bytes, at) {
  const times = [];
  for (let block = element(bytes, at); block && times.length < 2; block = element(bytes, block.end)) {
    if ((block.id !== SIMPLE_BLOCK && block.id !== BLOCK_GROUP) || block.end > bytes.length) break;
    const time = block.id === SIMPLE_BLOCK ? blockTime(bytes, block) : null;
    if (time) times.push(time.relative);
  }
  return times.length === 2 ? Math.max(0, times[1] - times[0]) : 0;
}

/** A whole SimpleBlock's time relative to its cluster, and where in `bytes` it is written; null on a bad track. */
function blockTime(bytes, block) {
  const track = vint(bytes, block.start);
  if (!track) return null;
  const at = block.start + track.length;
  return { at, relative: new DataView(bytes.buffer, bytes.byteOffset).getInt16(at) };
}

function clusterStart(time) {
  const value = [];
  for (let rest = time; rest > 0 || value.length === 0; rest = Math.floor(rest / 256)) value.unshift(rest % 256);
  return Uint8Array.of(...CLUSTER_ID, ...UNKNOWN_SIZE, TIMECODE, 0x80 | value.length, ...value);
}

function unknownSize(length) {
  return Uint8Array.from({ length }, (_, i) => (i === 0 ? 0xff >> (length - 1) : 0xff));
}

/** An EBML element at `offset`: its id, where its content starts and ends; null past the end or on a bad vint. */
function element(bytes, offset) {
  const id = vint(bytes, offset, true);
  if (!id || id.length > 4) return null;
  const size = vint(bytes, offset + id.length);
  if (!size) return null;
  const start = offset + id.length + size.length;
  const unknown = size.value === 2 ** (7 * size.length) - 1;
  return { id: id.value, offset, start, end: unknown ? Infinity : start + size.value, unknown, sizeLength: size.length };
}

function vint(bytes, offset, keepMarker = false) {
  const first = bytes[offset];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (offset + length > bytes.length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  for (let i = 1; i < length; i++) value = value * 256 + bytes[offset + i];
  return { value, length };
}

function uint(bytes, start, end) {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 256 + bytes[i];
  return value;
}
