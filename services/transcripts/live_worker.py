"""The live worker: hears recordings while they are made, from the chunks already stored, and writes their words.

It runs in a worker process (worker_process.py), never the web process. Each poll it renews its leases and lets go of
the recordings that stopped, takes up new requests while it has room, and feeds every stream the chunks stored since
the last poll, in order; the scheduler's compute threads hear the audio and hand back the words, which a writer thread
writes at once (live_store.py), where the owner's recorder page reads them. No second audio stream comes from the
browser. The compute threads (and the model's, made on a thread like them) run at `compute_priority`; the threads
that write to the database do not (core/priority.py: a SCHED_IDLE thread holding SQLite's write lock would hold up the
web process's commits).

Past its capacity (the scheduler's lag stays over its bound) it pauses the live words of its newest recording, whose
page then says so; the full transcript after Stop hears everything either way.
"""

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.audio.formats import audio_format
from services.core.errors import AppError
from services.core.models import LiveState
from services.core.priority import in_new_thread
from services.storage.keys import chunk_key, legacy_chunk_key
from services.storage.ordered_fetch import read_object
from services.storage.protocol import Storage
from services.transcripts.live import LivePiece, LiveStream
from services.transcripts.live_scheduler import LiveScheduler
from services.transcripts.live_store import LiveClaim, LiveTranscripts
from services.transcripts.vocabulary import vocabulary_prompt

log = logging.getLogger(__name__)
RENEW_EVERY_S = 2.0


@dataclass
class Heard:
    """A recording this worker hears: its stream and the last chunk fed to it."""

    claim: LiveClaim
    stream: LiveStream
    fed_seq: int = -1
    written_ms: int = 0  # words ending before this are written (by this worker or an earlier one): never again


class LiveWorker:
    def __init__(
        self,
        *,
        store: LiveTranscripts,
        storage: Storage,
        model: Callable[[], Any],
        threads: int,
        max_streams: int,
        language: str | None = None,
        poll_s: float = 0.25,
        compute_priority: Callable[[], None] | None = None,
    ) -> None:
        """`model`: loads the shared faster-whisper model (once, on first need); `threads`: compute threads, one per
        core; `max_streams`: recordings heard at once; `language`: the server's default for users who chose none."""
        self.store, self.storage = store, storage
        self._load_model, self._model = model, None
        self.language, self.poll_s = language, poll_s
        self.name = f'{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}'[:64]
        self._compute_priority = compute_priority
        self.scheduler = LiveScheduler(
            on_pieces=self._hand_to_writer,
            on_broken=self._broken,
            threads=threads,
            max_streams=max_streams,
            on_thread_start=compute_priority,
        )
        self._writes: queue.SimpleQueue[tuple[Any, list[LivePiece]] | None] = queue.SimpleQueue()
        self.max_streams = max_streams
        self._heard: dict[uuid.UUID, Heard] = {}
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        writer = threading.Thread(target=self._write_in_order, daemon=True, name='live-writer')
        writer.start()
        self.scheduler.start()
        next_renewal = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_renewal:
                        next_renewal = time.monotonic() + RENEW_EVERY_S
                        self._renew()
                        self._shed_if_over_capacity()
                    self._take_up()
                    self._feed()
                except AppError as error:  # the database or the storage is down: try again at the next poll
                    log.warning('live transcripts: %s', error)
                stop.wait(self.poll_s)
        finally:
            self.scheduler.stop()
            self._writes.put(None)
            writer.join()
            for recording_id in list(self._heard):
                self.store.release(self.name, recording_id, LiveState.WAITING)  # another worker may go on

    def _renew(self) -> None:
        for recording_id in self.store.renew(self.name, list(self._heard)):
            self._let_go(recording_id)  # stopped, deleted, turned off, or taken over

    def _shed_if_over_capacity(self) -> None:
        if self.scheduler.load().over_capacity and self._heard:
            newest = next(reversed(self._heard))  # the one taken up last
            log.warning('live transcripts: more than this worker keeps up with; pausing %s', newest)
            self._let_go(newest)
            self.store.release(self.name, newest, LiveState.BUSY)

    def _take_up(self) -> None:
        room = self.max_streams - len(self._heard)
        if room <= 0 or self.scheduler.load().over_capacity:
            return
        for claim in self.store.claim(self.name, room):
            try:
                stream = LiveStream(
                    self._shared_model(),
                    audio_format(claim.mime_type),
                    language=claim.language or self.language,
                    prompt=vocabulary_prompt(claim.vocabulary),
                )
            except AppError as error:
                log.warning('live transcript of %s cannot start: %s', claim.recording_id, error)
                self.store.release(self.name, claim.recording_id, LiveState.ENDED)
                continue
            with self._lock:
                self._heard[claim.recording_id] = Heard(claim, stream, written_ms=claim.heard_ms)
            self.scheduler.add(claim.recording_id, stream)

    def _feed(self) -> None:
        for recording_id, heard in list(self._heard.items()):
            for chunk in self.store.chunks_after(recording_id, heard.fed_seq):
                key = (
                    legacy_chunk_key(recording_id, chunk.seq)
                    if chunk.legacy_key
                    else chunk_key(recording_id, chunk.seq, chunk.sha256)
                )
                try:
                    heard.stream.feed(read_object(self.storage, key))
                except AppError as error:  # a stream that cannot take its audio: its page says the words stopped
                    self._broken(recording_id, error)
                    break
                heard.fed_seq = chunk.seq

    def _hand_to_writer(self, key: Any, pieces: list[LivePiece]) -> None:
        """On a compute thread: no database write there."""
        self._writes.put((key, pieces))

    def _write_in_order(self) -> None:
        while (item := self._writes.get()) is not None:
            try:
                self._write(*item)
            except AppError as error:  # the database is down: these words are lost, the full pass has them
                log.warning('live transcripts: %s', error)

    def _write(self, key: Any, pieces: list[LivePiece]) -> None:
        heard = self._heard.get(key)
        if heard is None:
            return
        fresh = []
        for piece in pieces:
            if (kept := after(piece, heard.written_ms)) is not None:
                fresh.append(kept)
                heard.written_ms = kept[1]
        if fresh and not self.store.add_pieces(self.name, key, fresh):
            self._let_go(key)  # no longer ours

    def _broken(self, key: Any, error: Exception) -> None:
        log.warning('live transcript of %s stopped: %s', key, error)
        self._let_go(key)
        self.store.release(self.name, key, LiveState.ENDED)

    def _let_go(self, recording_id: uuid.UUID) -> None:
        with self._lock:
            heard = self._heard.pop(recording_id, None)
        if heard is not None:
            self.scheduler.remove(recording_id)

    def _shared_model(self) -> Any:
        if self._model is None:  # loaded on a thread like the compute threads: the model's own threads are made now
            self._model = in_new_thread(self._load_model, self._compute_priority)
        return self._model


def after(piece: LivePiece, heard_ms: int) -> tuple[int, int, str] | None:
    """The piece's words an earlier worker had not written (those ending after `heard_ms`), as (start, end, text)."""
    if piece.start_ms >= heard_ms:
        return (piece.start_ms, piece.end_ms, piece.text) if piece.text.strip() else None
    words = [word for word in piece.words if (word.start_ms + word.end_ms) // 2 >= heard_ms]
    text = ' '.join(word.text.strip() for word in words)
    return (words[0].start_ms, piece.end_ms, text) if text else None
