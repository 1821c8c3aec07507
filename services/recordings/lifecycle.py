"""A recording's life on the server: its statuses, the events that move it, and the same rules as SQL.

Ingest, finalize and the sweeper act on a recording only through statements whose conditions are built here, so
they cannot disagree about which states take audio or may be claimed. The browser's side of the same life is
`assets/recorder/state_machine.mjs`; new sources of recordings (imports) enter this table too.

    status      event           next            by whom, and why
    recording   audio           recording       ingest: a chunk is stored
    recording   claim           finalizing      finalize: the browser stopped it, or the sweeper found it idle
    recording   fail            failed          sweeper: idle, and its first chunk (the header) never came
    finalizing  renew           finalizing      finalize: the heartbeat of a claim while it assembles
    finalizing  take_over       finalizing      finalize, sweeper: a claim not renewed died with its process
    finalizing  assembled       ready           finalize: the browser stopped it; its chunks are deleted
    finalizing  assembled_idle  ready_open      finalize for the sweeper, across gaps; its chunks are kept
    finalizing  give_back       (claimed from)  finalize: a retryable error, a gap, or a bad re-assembly
    finalizing  fail            failed          finalize: the audio cannot be processed; sweeper: no header
    ready_open  audio           ready_open      ingest: late audio the browser held while offline
    ready_open  claim           finalizing      finalize: the browser stopped it, or its late audio went quiet
    ready_open  let_go          ready           sweeper: no late audio for the retention time; chunks deleted
    failed      audio           failed          ingest: the browser may still hold what was missing
    failed      claim           finalizing      finalize: the browser stopped it again
    ready       -               -               final: only deleting it ends it

Clients see `ready_open` as `ready` (`public_status`): to them both are a recording to play.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.sql.elements import SQLCoreOperations


class RecordingStatus(StrEnum):
    """Stored by member name: SQLite's column is VARCHAR(10), so a new name longer than that would rebuild it."""

    RECORDING = 'recording'
    FINALIZING = 'finalizing'
    READY = 'ready'
    READY_OPEN = 'ready_open'  # playable, and still open to late audio: the server finished it, not the browser
    FAILED = 'failed'


class Event(StrEnum):
    AUDIO = 'audio'
    CLAIM = 'claim'
    RENEW = 'renew'
    TAKE_OVER = 'take_over'
    ASSEMBLED = 'assembled'
    ASSEMBLED_IDLE = 'assembled_idle'
    GIVE_BACK = 'give_back'
    FAIL = 'fail'
    LET_GO = 'let_go'


class IllegalTransition(ValueError):
    """A transition the table does not allow: a bug in the caller, never a user's doing."""


_S, _E = RecordingStatus, Event
# status -> event -> next status; None: back to the status the recording was claimed from (the finalize knows it).
TRANSITIONS: Mapping[RecordingStatus, Mapping[Event, RecordingStatus | None]] = MappingProxyType(
    {
        _S.RECORDING: {_E.AUDIO: _S.RECORDING, _E.CLAIM: _S.FINALIZING, _E.FAIL: _S.FAILED},
        _S.FINALIZING: {
            _E.RENEW: _S.FINALIZING,
            _E.TAKE_OVER: _S.FINALIZING,
            _E.ASSEMBLED: _S.READY,
            _E.ASSEMBLED_IDLE: _S.READY_OPEN,
            _E.GIVE_BACK: None,
            _E.FAIL: _S.FAILED,
        },
        _S.READY_OPEN: {_E.AUDIO: _S.READY_OPEN, _E.CLAIM: _S.FINALIZING, _E.LET_GO: _S.READY},
        _S.FAILED: {_E.AUDIO: _S.FAILED, _E.CLAIM: _S.FINALIZING},
        _S.READY: {},
    }
)


def can(status: RecordingStatus, event: Event) -> bool:
    return event in TRANSITIONS[status]


def sources(event: Event) -> frozenset[RecordingStatus]:
    """The statuses `event` may happen in."""
    return frozenset(status for status in RecordingStatus if can(status, event))


def next_status(
    status: RecordingStatus, event: Event, *, claimed_from: RecordingStatus | None = None
) -> RecordingStatus:
    """Where `event` leads from `status`; a give-back needs the status the recording was claimed from."""
    if not can(status, event):
        raise IllegalTransition(f'{event} is not allowed in {status}')
    following = TRANSITIONS[status][event]
    if following is not None:
        return following
    if claimed_from not in CLAIMABLE | sources(Event.TAKE_OVER):
        raise IllegalTransition(f'a recording cannot have been claimed from {claimed_from}')
    return claimed_from


def target(event: Event) -> RecordingStatus:
    """The one status `event` leads to from wherever it may happen: what its compare-and-set writes."""
    following = {TRANSITIONS[status][event] for status in sources(event)}
    only = following.pop() if len(following) == 1 else None
    if only is None:
        raise IllegalTransition(f'{event} has no single target')
    return only


ACCEPTS_AUDIO = sources(Event.AUDIO)
CLAIMABLE = sources(Event.CLAIM)  # and `finalizing` once its claim has lapsed (take-over)
PLAYABLE = frozenset({target(Event.ASSEMBLED), target(Event.ASSEMBLED_IDLE)})  # where an assembly leads: a file
UNFINISHED = frozenset({RecordingStatus.RECORDING, RecordingStatus.FINALIZING})  # the sweeper finishes them when idle
FINAL = frozenset(status for status in RecordingStatus if not TRANSITIONS[status])


def is_playable(status: RecordingStatus) -> bool:
    return status in PLAYABLE


def public_status(status: RecordingStatus) -> RecordingStatus:
    """What clients are shown: whether late audio may still arrive is the server's business."""
    return RecordingStatus.READY if status == RecordingStatus.READY_OPEN else status


PUBLIC_STATUSES = tuple(status for status in RecordingStatus if public_status(status) == status)


# The same rules as SQL, on the columns the caller names: ORM attributes or Core columns of `recording`.
SqlColumn = SQLCoreOperations[Any]


def status_in(statuses: Iterable[RecordingStatus], status: SqlColumn) -> ColumnElement[bool]:
    """Equalities, not IN: an IN list is an expanding parameter, which the chunk insert's executemany cannot take."""
    return or_(false(), *(status == each for each in sorted(statuses)))


def allows(event: Event, status: SqlColumn) -> ColumnElement[bool]:
    return status_in(sources(event), status)


def accepts_audio(status: SqlColumn) -> ColumnElement[bool]:
    return status_in(ACCEPTS_AUDIO, status)


def playable(status: SqlColumn) -> ColumnElement[bool]:
    return status_in(PLAYABLE, status)


def claimable(status: SqlColumn, updated_at: SqlColumn, *, lapsed_before: datetime) -> ColumnElement[bool]:
    """Claimable now, or being finalized by a claim not renewed since `lapsed_before` (its finalize died)."""
    return or_(status_in(CLAIMABLE, status), and_(allows(Event.TAKE_OVER, status), updated_at < lapsed_before))


def stale(
    status: SqlColumn,
    updated_at: SqlColumn,
    chunk_count: SqlColumn,
    assembled_chunks: SqlColumn,
    *,
    idle_before: datetime,
) -> ColumnElement[bool]:
    """Idle since `idle_before`, and either unfinished or finished by the server with late audio to assemble."""
    late_audio = and_(status == RecordingStatus.READY_OPEN, chunk_count != assembled_chunks)
    return and_(or_(status_in(UNFINISHED, status), late_audio), updated_at < idle_before)
