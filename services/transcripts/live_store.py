"""Live transcripts in the database: what the recorder page asks for and reads, and what live workers claim and write.

The database is the only link between the page and the worker, so it holds across processes and instances: a worker
on another machine writes the words, and the page of the user's sticky instance reads them, through the PostgreSQL
the deployment already shares. A page asks for live words once its recording exists (`start`); a worker claims the
request with a conditional UPDATE and holds it under a lease it renews, as transcript jobs are held (queue.py); a
worker that dies stops renewing, and another takes the recording up where the words stopped (`heard_ms`).

Only the recording's owner reads the words: every page-side call names the user, and the recording must be theirs.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Update, and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from services.core.database import Database
from services.core.errors import NotFound
from services.core.models import (
    Chunk,
    LiveState,
    LiveTranscript,
    LiveTranscriptPiece,
    Recording,
    User,
    utc_now,
)
from services.recordings.lifecycle import RecordingStatus

START_GRACE_S = 5.0  # asked this long ago and no worker has it: the page says the server is busy
MAX_PIECES_READ = 200  # what one read hands the page; it reads again for the rest
LEASE = timedelta(seconds=10)  # a worker renews every 2 s (live_worker.py): one silent this long is gone


@dataclass(frozen=True)
class LiveClaim:
    """A recording a worker now hears: where to start and how to listen."""

    recording_id: uuid.UUID
    user_id: uuid.UUID
    mime_type: str
    heard_ms: int  # words before this were written by an earlier worker
    language: str | None
    vocabulary: list[str]


@dataclass(frozen=True)
class LiveWords:
    """What the page shows: the pieces after the ones it has, and whether live words are paused."""

    state: LiveState | None  # None: live words were never asked for this recording
    pieces: list[tuple[int, str]]  # (seq, text) in order
    busy: bool  # paused or never taken up because the server is busy: the transcript follows after Stop


@dataclass(frozen=True)
class StoredChunk:
    seq: int
    sha256: str
    legacy_key: bool


class LiveTranscripts:
    def __init__(self, *, database: Database, lease: timedelta = LEASE) -> None:
        self.database = database
        self.lease = lease

    # The page's side: always for the recording's owner.

    def start(self, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> bool:
        """Ask for live words for the user's recording while it is being made, if the user wants them. False when
        they do not, or the recording is not theirs or no longer recording."""
        with self.database.session() as session:
            wanted = session.exec(select(User.live_transcript).where(col(User.id) == user_id)).first()
            recording = session.get(Recording, recording_id)
            if not wanted or recording is None or recording.user_id != user_id:
                return False
            if recording.status != RecordingStatus.RECORDING:
                return False
            if session.get(LiveTranscript, recording_id) is None:
                session.add(LiveTranscript(recording_id=recording_id))
                try:
                    session.commit()
                except IntegrityError:  # asked twice at once, or the recording was deleted meanwhile
                    session.rollback()
        return True

    def stop(self, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> None:
        """The user turned live words off while recording: the worker lets the recording go at its next renewal."""
        with self.database.session() as session:
            if _owned(session, user_id, recording_id):
                session.exec(_set(recording_id, state=LiveState.ENDED))  # type: ignore[call-overload]
                session.commit()

    def words(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, after: int = -1) -> LiveWords:
        """The pieces after seq `after`, for the recording's owner only (anyone else: not found)."""
        with self.database.session() as session:
            if not _owned(session, user_id, recording_id):
                raise NotFound('recording not found')
            live = session.get(LiveTranscript, recording_id)
            if live is None:
                return LiveWords(None, [], False)
            query = (
                select(LiveTranscriptPiece.seq, LiveTranscriptPiece.text)
                .where(col(LiveTranscriptPiece.recording_id) == recording_id, col(LiveTranscriptPiece.seq) > after)
                .order_by(col(LiveTranscriptPiece.seq))
                .limit(MAX_PIECES_READ)
            )
            pieces = [(seq, text) for seq, text in session.exec(query).all()]
        never_taken = live.state == LiveState.WAITING and utc_now() - live.created_at > timedelta(seconds=START_GRACE_S)
        return LiveWords(live.state, pieces, live.state == LiveState.BUSY or never_taken)

    # The worker's side.

    def claim(self, worker: str, limit: int) -> list[LiveClaim]:
        """Up to `limit` recordings to hear, oldest request first: waiting ones, and those whose worker fell silent.
        A request whose recording stopped before any worker took it ends here."""
        now = utc_now()
        claims: list[LiveClaim] = []
        with self.database.session() as session:
            self._end_stopped(session)
            candidates = session.exec(
                select(LiveTranscript.recording_id)
                .where(_takeable(now))
                .order_by(col(LiveTranscript.created_at))
                .limit(limit)
            ).all()
            for recording_id in candidates:
                taken = session.exec(  # type: ignore[call-overload]
                    _set(recording_id, state=LiveState.LIVE, worker=worker, lease_until=now + self.lease).where(
                        _takeable(now)
                    )
                )
                if taken.rowcount == 1:
                    claims.append(_claim_of(session, recording_id))
            session.commit()
        return claims

    def renew(self, worker: str, recording_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Extend the leases of the recordings this worker still hears and that are still being recorded; the rest
        (stopped, deleted, turned off, taken over) are returned to be let go."""
        if not recording_ids:
            return set()
        now = utc_now()
        with self.database.session() as session:
            recording = RecordingStatus.RECORDING
            kept = session.exec(
                select(LiveTranscript.recording_id)
                .join(Recording, col(Recording.id) == col(LiveTranscript.recording_id))
                .where(
                    col(LiveTranscript.recording_id).in_(recording_ids),
                    col(LiveTranscript.worker) == worker,
                    col(LiveTranscript.state) == LiveState.LIVE,
                    col(Recording.status) == recording,
                )
            ).all()
            if kept:
                session.exec(  # type: ignore[call-overload]
                    update(LiveTranscript)
                    .where(col(LiveTranscript.recording_id).in_(kept), col(LiveTranscript.worker) == worker)
                    .values(lease_until=now + self.lease, updated_at=now)
                )
            session.commit()
        return set(recording_ids) - set(kept)

    def release(self, worker: str, recording_id: uuid.UUID, state: LiveState) -> None:
        """This worker lets the recording go: ENDED (stopped, or undecodable) or BUSY (more than it can hear)."""
        with self.database.session() as session:
            statement = _set(recording_id, state=state, worker=None, lease_until=None)
            session.exec(statement.where(col(LiveTranscript.worker) == worker))  # type: ignore[call-overload]
            session.commit()

    def add_pieces(self, worker: str, recording_id: uuid.UUID, pieces: list[tuple[int, int, str]]) -> bool:
        """Write (start_ms, end_ms, text) pieces, in order, if this worker still holds the recording; False if not."""
        if not pieces:
            return True
        with self.database.session() as session:
            live = session.exec(
                select(LiveTranscript).where(
                    col(LiveTranscript.recording_id) == recording_id,
                    col(LiveTranscript.worker) == worker,
                    col(LiveTranscript.state) == LiveState.LIVE,
                )
            ).first()
            if live is None:
                return False
            first = live.pieces
            moved = session.exec(  # type: ignore[call-overload]
                _set(recording_id, pieces=first + len(pieces), heard_ms=max(live.heard_ms, pieces[-1][1])).where(
                    col(LiveTranscript.worker) == worker, col(LiveTranscript.pieces) == first
                )
            )
            if moved.rowcount != 1:
                session.rollback()
                return False
            for offset, (start_ms, end_ms, text) in enumerate(pieces):
                session.add(
                    LiveTranscriptPiece(
                        recording_id=recording_id, seq=first + offset, start_ms=start_ms, end_ms=end_ms, text=text
                    )
                )
            try:
                session.commit()
            except IntegrityError:  # the recording was deleted meanwhile
                session.rollback()
                return False
        return True

    def chunks_after(self, recording_id: uuid.UUID, seq: int, limit: int = 50) -> list[StoredChunk]:
        """The stored chunks right after `seq`, up to the first gap (-1: from the first): audio is heard in order."""
        query = (
            select(Chunk.seq, Chunk.sha256, Chunk.legacy_key)
            .where(col(Chunk.recording_id) == recording_id, col(Chunk.seq) > seq)
            .order_by(col(Chunk.seq))
            .limit(limit)
        )
        with self.database.session() as session:
            rows = session.exec(query).all()
        following: list[StoredChunk] = []
        for next_seq, sha256, legacy in rows:
            if next_seq != seq + 1 + len(following):
                break
            following.append(StoredChunk(next_seq, sha256, bool(legacy)))
        return following

    def _end_stopped(self, session: Session) -> None:
        """Requests whose recording stopped before any worker heard it will never be heard: ended."""
        stopped = (
            select(LiveTranscript.recording_id)
            .join(Recording, col(Recording.id) == col(LiveTranscript.recording_id))
            .where(
                col(LiveTranscript.state).in_([LiveState.WAITING, LiveState.LIVE]),
                col(Recording.status) != RecordingStatus.RECORDING,
            )
        )
        ended = session.exec(stopped).all()
        if ended:
            session.exec(  # type: ignore[call-overload]
                update(LiveTranscript)
                .where(col(LiveTranscript.recording_id).in_(ended), col(LiveTranscript.worker).is_(None))
                .values(state=LiveState.ENDED, updated_at=utc_now())
            )


def forget_live_words(session: Session, recording_id: uuid.UUID) -> None:
    """The live words of a recording, gone: its full transcript replaces them, or the recording itself is deleted."""
    session.exec(delete(LiveTranscriptPiece).where(col(LiveTranscriptPiece.recording_id) == recording_id))  # type: ignore[call-overload]
    session.exec(delete(LiveTranscript).where(col(LiveTranscript.recording_id) == recording_id))  # type: ignore[call-overload]


def _owned(session: Session, user_id: uuid.UUID, recording_id: uuid.UUID) -> bool:
    owner = session.exec(select(Recording.user_id).where(col(Recording.id) == recording_id)).first()
    return owner == user_id


def _takeable(now: datetime) -> ColumnElement[bool]:
    return or_(
        col(LiveTranscript.state) == LiveState.WAITING,
        and_(col(LiveTranscript.state) == LiveState.LIVE, col(LiveTranscript.lease_until) < now),
    )


def _set(recording_id: uuid.UUID, **values: object) -> Update:
    return (
        update(LiveTranscript)
        .where(col(LiveTranscript.recording_id) == recording_id)
        .values(**values, updated_at=utc_now())
    )


def _claim_of(session: Session, recording_id: uuid.UUID) -> LiveClaim:
    recording = session.get(Recording, recording_id)
    live = session.get(LiveTranscript, recording_id)
    assert recording is not None and live is not None  # just claimed, in this transaction
    user = session.get(User, recording.user_id)
    assert user is not None
    vocabulary = list(user.vocabulary or [])
    return LiveClaim(recording_id, user.id, recording.mime_type, live.heard_ms, user.language, vocabulary)
