"""The transcription jobs, kept in the `transcript` table: no broker, nothing but the database the app already has.

No maintained job library runs on both SQLite and PostgreSQL without a broker, and the queue needs few moves, so
it is written out here. A claim is a conditional UPDATE on the generation the worker read (compare-and-set), which
is enough on SQLite, where writers take turns; on PostgreSQL the read is `FOR UPDATE SKIP LOCKED`, so workers never
wait for each other. The claim holds a lease the worker renews while it works; a worker that dies stops renewing,
and once the lease has run out the job is claimed again, at most MAX_ATTEMPTS times.

A job carries the language to transcribe in, decided when it is claimed: the one asked for the recording ("transcribe
again as …"), else the user's default, else the server's (VR_TRANSCRIBE_LANGUAGE), else none: the model detects it; and
the owner's vocabulary as it is then (the names and terms the model listens for, vocabulary.py). The worker completes
the job with the language it heard, and the transcript's search entry is read in it (search.py); until then the words
made before stay, read in their own language.

Users take turns: a claim takes the oldest job of the user served least recently (`user.transcript_served_at`, set
in the claim's transaction), so one user's backlog delays another's next job by at most one job per busy user.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update
from sqlmodel.sql.expression import Select

from services.core.database import Database
from services.core.models import Recording, Transcript, TranscriptState, User, utc_now
from services.recordings import lifecycle
from services.recordings.titles import auto_title
from services.transcripts.live_store import forget_live_words

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
_TABLE: Any = Transcript.__table__  # type: ignore[attr-defined]


def give_auto_title(session: Session, recording_id: uuid.UUID, text: str) -> None:
    """A recording the user did not name is titled by its first words, in the transcript's transaction; the condition
    on `named` holds against a rename racing it."""
    title = auto_title(text)
    if title is not None:
        unnamed = (col(Recording.id) == recording_id, col(Recording.named).is_(False))
        session.exec(update(Recording).where(*unnamed).values(title=title))  # type: ignore[call-overload]


@dataclass(frozen=True)
class Job:
    recording_id: uuid.UUID
    generation: int  # the claim's: every write below counts only while the row still has it
    attempt: int
    language: str | None  # ISO 639-1: the language to transcribe in; None: the model detects it
    vocabulary: tuple[str, ...] = ()  # the owner's names and terms, which the model listens for


def _claimable(now: datetime) -> ColumnElement[bool]:
    running = col(Transcript.state) == TranscriptState.TRANSCRIBING
    return or_(col(Transcript.state) == TranscriptState.QUEUED, and_(running, col(Transcript.lease_until) < now))


def _next_in_turn(now: datetime) -> Select[uuid.UUID, int, int, uuid.UUID]:
    """The oldest claimable job of the user whose turn it is. Only the transcript row is locked (PostgreSQL):
    locking the user row too would make a second worker skip all of that user's jobs, or wait for them."""
    return (
        select(Transcript.recording_id, Transcript.generation, Transcript.attempts, Recording.user_id)
        .join(Recording, col(Recording.id) == col(Transcript.recording_id))
        .join(User, col(User.id) == col(Recording.user_id))
        .where(_claimable(now))
        .order_by(col(User.transcript_served_at).nulls_first(), col(Transcript.queued_at), col(Transcript.recording_id))
        .limit(1)
        .with_for_update(skip_locked=True, of=_TABLE)  # PostgreSQL; SQLite has one writer and ignores it
    )


def _asked_language(session: Session, recording_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The language asked for the recording ("transcribe again as …"), else the user's default."""
    asked = session.exec(select(Transcript.requested_language).where(col(Transcript.recording_id) == recording_id))
    return asked.one() or session.exec(select(User.language).where(col(User.id) == user_id)).one()


def _vocabulary(session: Session, user_id: uuid.UUID) -> tuple[str, ...]:
    """The user's vocabulary as it is now (checked when it was saved)."""
    return tuple(session.exec(select(User.vocabulary).where(col(User.id) == user_id)).one() or ())


class TranscriptQueue:
    def __init__(self, *, database: Database, lease: timedelta, language: str | None = None) -> None:
        self.database = database
        self.lease = lease
        self.language = language  # the server's default, for users who chose none (None: detect it)

    def enqueue(self, recording_id: uuid.UUID) -> bool:
        """Queue the recording (again) in the language asked for it before, if any; a finished transcript stays
        readable until the new one replaces it. False when the recording is gone."""
        return self._enqueue(recording_id, {})

    def enqueue_in(self, recording_id: uuid.UUID, language: str | None) -> bool:
        """Queue the recording (again), asked to be heard in `language` from now on (None: the user's default
        language, else detected). False when the recording is gone."""
        return self._enqueue(recording_id, {'requested_language': language})

    def _enqueue(self, recording_id: uuid.UUID, asked: dict[str, str | None]) -> bool:
        now = utc_now()
        again = {
            'state': TranscriptState.QUEUED,
            'progress': 0.0,
            'error': None,
            'attempts': 0,
            'queued_at': now,
            **asked,
        }
        with self.database.session() as session:
            insert = sqlite.insert if session.connection().dialect.name == 'sqlite' else postgresql.insert
            statement = (
                insert(_TABLE)
                .values(recording_id=recording_id, generation=0, created_at=now, **again)
                .values(updated_at=now)
                .on_conflict_do_update(
                    index_elements=['recording_id'],
                    set_={**again, 'generation': _TABLE.c.generation + 1, 'lease_until': None, 'updated_at': now},
                )
            )
            try:
                session.exec(statement)  # type: ignore[call-overload]
                session.commit()
            except IntegrityError:  # the recording was deleted meanwhile
                return False
        return True

    def claim(self) -> Job | None:
        """The next queued job (or one whose worker died) in the users' turns, now ours until the lease runs out."""
        now = utc_now()
        with self.database.session() as session:
            self._give_up_on_stuck(session, now)
            row = session.exec(_next_in_turn(now)).first()
            if row is None:
                session.commit()
                return None
            recording_id, generation, attempts, user_id = row
            language = _asked_language(session, recording_id, user_id) or self.language
            vocabulary = _vocabulary(session, user_id)
            claimed = self._set(
                session,
                Job(recording_id, generation, attempts, language),
                _claimable(now),
                state=TranscriptState.TRANSCRIBING,
                generation=generation + 1,
                attempts=attempts + 1,
                progress=0.0,
                lease_until=now + self.lease,
            )
            if claimed:  # the user's turn is used up in the same transaction as the claim
                session.exec(update(User).where(col(User.id) == user_id).values(transcript_served_at=now))
            session.commit()
        return Job(recording_id, generation + 1, attempts + 1, language, vocabulary) if claimed else None

    def renew(self, job: Job, progress: float | None = None) -> bool:
        """Extend the lease (and note the progress); False when the job is no longer this worker's."""
        values: dict[str, Any] = {'lease_until': utc_now() + self.lease}
        if progress is not None:
            values['progress'] = progress
        return self._update(job, **values)

    def complete(self, job: Job, *, text: str, segments: str, language: str | None = None) -> bool:
        """The result, heard in `language` (None: in the job's, if it had one); its search entry is read in it."""
        done = {'state': TranscriptState.DONE, 'progress': 1.0, 'error': None, 'lease_until': None}
        values = {'text': text, 'segments': segments, 'language': language or job.language, **done}
        with self.database.session() as session:
            stored = self._set(session, job, col(Transcript.state) == TranscriptState.TRANSCRIBING, **values)
            if stored:  # the words heard while it was made are replaced by these
                forget_live_words(session, job.recording_id)
                give_auto_title(session, job.recording_id, text)
            session.commit()
        return stored

    def fail(self, job: Job, reason: str) -> bool:
        return self._update(job, state=TranscriptState.FAILED, error=reason[:500], lease_until=None)

    def release(self, job: Job, *, count_attempt: bool = False) -> bool:
        """Back in the queue at once: the worker is stopping, or the storage is down for now."""
        attempts = job.attempt if count_attempt else job.attempt - 1
        if attempts >= MAX_ATTEMPTS:
            return self.fail(job, 'the audio could not be read; run the transcript again later')
        return self._update(job, state=TranscriptState.QUEUED, attempts=attempts, lease_until=None)

    def backfill(self, limit: int = 3) -> int:
        """Queue a few ready recordings made before transcripts existed (or while they were off), newest first."""
        has_transcript = exists().where(col(Transcript.recording_id) == Recording.id)
        query = (
            select(Recording.id)
            .where(lifecycle.playable(col(Recording.status)))
            .where(~has_transcript)
            .order_by(col(Recording.created_at).desc())
            .limit(limit)
        )
        with self.database.session() as session:
            missing = list(session.exec(query).all())
        return sum(self.enqueue(recording_id) for recording_id in missing)

    def _update(self, job: Job, **values: Any) -> bool:
        with self.database.session() as session:
            done = self._set(session, job, col(Transcript.state) == TranscriptState.TRANSCRIBING, **values)
            session.commit()
        return done

    @staticmethod
    def _set(session: Session, job: Job, condition: ColumnElement[bool], **values: Any) -> bool:
        statement = (
            update(Transcript)
            .where(col(Transcript.recording_id) == job.recording_id)
            .where(col(Transcript.generation) == job.generation)
            .where(condition)
            .values(updated_at=utc_now(), **values)
        )
        return bool(session.exec(statement).rowcount == 1)  # type: ignore[call-overload]

    @staticmethod
    def _give_up_on_stuck(session: Session, now: datetime) -> None:
        """A job whose worker died MAX_ATTEMPTS times (a recording that kills it, say) is not tried again."""
        statement = (
            update(Transcript)
            .where(col(Transcript.state) == TranscriptState.TRANSCRIBING)
            .where(col(Transcript.lease_until) < now)
            .where(col(Transcript.attempts) >= MAX_ATTEMPTS)
            .values(state=TranscriptState.FAILED, error='transcribing stopped unexpectedly, several times')
            .values(updated_at=now)
        )
        if session.exec(statement).rowcount:  # type: ignore[call-overload]
            log.warning('gave up on transcripts whose worker stopped %d times', MAX_ATTEMPTS)
