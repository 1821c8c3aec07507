"""A recording's life on the server has one table: every transition it allows, and SQL that agrees with it.

Like the browser's tests/js/state_machine.test.mjs: the table is written out again here, independently, and every
(status, event) pair is checked against it. Then the SQL predicates ingest, finalize and the sweeper run are
checked row by row against the same sets on SQLite and PostgreSQL, and the migration that named the hidden state
(`ready` with its chunks kept) is run up and down with such a recording in it.
"""

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, text
from sqlmodel import col, select

from services.core.database import Database
from services.core.models import Chunk, Recording, RecordingPublic, User, utc_now
from services.core.schema import alembic_config, head_revision, upgrade
from services.recordings import lifecycle
from services.recordings.lifecycle import Event, IllegalTransition, RecordingStatus

RECORDING, FINALIZING, READY = RecordingStatus.RECORDING, RecordingStatus.FINALIZING, RecordingStatus.READY
OPEN, FAILED = RecordingStatus.READY_OPEN, RecordingStatus.FAILED
BACK = 'back to the status it was claimed from'
EXPECTED: dict[tuple[RecordingStatus, Event], RecordingStatus | str] = {
    (RECORDING, Event.AUDIO): RECORDING,
    (RECORDING, Event.CLAIM): FINALIZING,
    (RECORDING, Event.FAIL): FAILED,
    (FINALIZING, Event.RENEW): FINALIZING,
    (FINALIZING, Event.TAKE_OVER): FINALIZING,
    (FINALIZING, Event.ASSEMBLED): READY,
    (FINALIZING, Event.ASSEMBLED_IDLE): OPEN,
    (FINALIZING, Event.GIVE_BACK): BACK,
    (FINALIZING, Event.FAIL): FAILED,
    (OPEN, Event.AUDIO): OPEN,
    (OPEN, Event.CLAIM): FINALIZING,
    (OPEN, Event.LET_GO): READY,
    (FAILED, Event.AUDIO): FAILED,
    (FAILED, Event.CLAIM): FINALIZING,
}
EVERY_PAIR = list(itertools.product(RecordingStatus, Event))


@pytest.mark.parametrize(('status', 'event'), EVERY_PAIR, ids=[f'{s}-{e}' for s, e in EVERY_PAIR])
def test_every_transition_is_the_one_the_table_gives(status: RecordingStatus, event: Event) -> None:
    expected = EXPECTED.get((status, event))
    assert lifecycle.can(status, event) == (expected is not None)
    if expected is None:
        with pytest.raises(IllegalTransition):
            lifecycle.next_status(status, event, claimed_from=RECORDING)
    elif expected == BACK:
        for claimed_from in (RECORDING, FAILED, OPEN, FINALIZING):
            assert lifecycle.next_status(status, event, claimed_from=claimed_from) == claimed_from
    else:
        assert lifecycle.next_status(status, event) == expected


def test_a_give_back_returns_only_to_a_status_a_claim_can_come_from() -> None:
    for impossible in (READY, None):
        with pytest.raises(IllegalTransition):
            lifecycle.next_status(FINALIZING, Event.GIVE_BACK, claimed_from=impossible)


def test_the_sets_the_services_ask_about_follow_from_the_table() -> None:
    assert {RECORDING, OPEN, FAILED} == lifecycle.ACCEPTS_AUDIO  # a failed recording takes what it was missing
    assert {RECORDING, OPEN, FAILED} == lifecycle.CLAIMABLE
    assert {READY, OPEN} == lifecycle.PLAYABLE
    assert {READY} == lifecycle.FINAL
    assert {s for s in RecordingStatus if lifecycle.is_playable(s)} == {READY, OPEN}
    reachable = {RECORDING} | {next for next in EXPECTED.values() if next != BACK}
    assert reachable == set(RecordingStatus), 'every status can be reached from a new recording'


def test_each_compare_and_set_writes_the_one_status_its_event_leads_to() -> None:
    targets = {event: lifecycle.target(event) for event in Event if event not in (Event.AUDIO, Event.GIVE_BACK)}
    assert targets == {
        Event.CLAIM: FINALIZING,
        Event.RENEW: FINALIZING,
        Event.TAKE_OVER: FINALIZING,
        Event.ASSEMBLED: READY,
        Event.ASSEMBLED_IDLE: OPEN,
        Event.FAIL: FAILED,
        Event.LET_GO: READY,
    }
    for ambiguous in (Event.AUDIO, Event.GIVE_BACK):  # audio leaves the status as it is; a give-back depends
        with pytest.raises(IllegalTransition):
            lifecycle.target(ambiguous)


def test_clients_see_a_recording_open_to_late_audio_as_ready() -> None:
    recording = Recording(user_id=uuid.uuid4(), title='Train', mime_type='audio/webm', status=OPEN)
    assert RecordingPublic.model_validate(recording).model_dump(mode='json')['status'] == 'ready'
    assert RecordingPublic(**recording.model_dump(exclude={'user_id'})).status == READY
    schema = RecordingPublic.model_json_schema(mode='serialization')['properties']['status']
    assert schema['enum'] == ['recording', 'finalizing', 'ready', 'failed']


# The SQL predicates, row by row, on both databases.

NOW = utc_now()
LAPSED = NOW - timedelta(seconds=20)  # a claim not renewed since is taken over
IDLE = NOW - timedelta(minutes=10)  # a recording untouched since is stale


@dataclass(frozen=True)
class Row:
    status: RecordingStatus
    idle: bool  # last touched an hour ago, or just now
    late_audio: bool  # holds more chunks than its file


ROWS = [Row(*combination) for combination in itertools.product(RecordingStatus, (False, True), (False, True))]


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def rows(database: Database) -> dict[uuid.UUID, Row]:
    """One recording per combination of status, idleness and late audio."""
    user = User(name='Life', token_hash=uuid.uuid4().hex * 2)
    made: dict[uuid.UUID, Row] = {}
    with database.session() as session:
        session.add(user)
        session.commit()
        for row in ROWS:
            touched = NOW - timedelta(hours=1) if row.idle else NOW
            recording = Recording(
                user_id=user.id, title='r', mime_type='audio/webm', status=row.status, assembled_chunks=1
            )
            recording.updated_at = touched
            session.add(recording)
            session.flush()
            for seq in range(2 if row.late_audio else 1):
                session.add(Chunk(recording_id=recording.id, seq=seq, size=1, sha256='0' * 64))
            made[recording.id] = row
        session.commit()
    return made


def selected(database: Database, condition: Any) -> set[uuid.UUID]:
    with database.session() as session:
        return set(session.exec(select(Recording.id).where(condition)).all())


def expected(rows: dict[uuid.UUID, Row], accepts: Callable[[Row], bool]) -> set[uuid.UUID]:
    return {recording_id for recording_id, row in rows.items() if accepts(row)}


def test_the_sql_predicates_select_exactly_the_rows_the_table_allows(
    database: Database, rows: dict[uuid.UUID, Row]
) -> None:
    status = col(Recording.status)
    assert selected(database, lifecycle.accepts_audio(status)) == expected(
        rows, lambda row: row.status in lifecycle.ACCEPTS_AUDIO
    )
    assert selected(database, lifecycle.playable(status)) == expected(
        rows, lambda row: lifecycle.is_playable(row.status)
    )
    for event in Event:
        assert selected(database, lifecycle.allows(event, status)) == expected(
            rows, lambda row, event=event: lifecycle.can(row.status, event)
        ), event


def test_claimable_and_stale_add_their_time_and_chunk_conditions(
    database: Database, rows: dict[uuid.UUID, Row]
) -> None:
    status, updated_at = col(Recording.status), col(Recording.updated_at)
    claimable = lifecycle.claimable(status, updated_at, lapsed_before=LAPSED)
    assert selected(database, claimable) == expected(
        rows, lambda row: row.status in lifecycle.CLAIMABLE or (row.status == FINALIZING and row.idle)
    )
    chunk_count = (
        select(func.count()).select_from(Chunk).where(col(Chunk.recording_id) == Recording.id).scalar_subquery()
    )
    stale = lifecycle.stale(status, updated_at, chunk_count, col(Recording.assembled_chunks), idle_before=IDLE)
    assert selected(database, stale) == expected(
        rows,
        lambda row: row.idle and (row.status in {RECORDING, FINALIZING} or (row.status == OPEN and row.late_audio)),
    )


# The migration that named the hidden state.

BEFORE_0008 = {  # title -> (status, chunks_kept) as revision 0007 stored them
    'kept for late audio': ('READY', True),
    'finished': ('READY', False),
    'recording': ('RECORDING', False),
    'failed': ('FAILED', False),
}


def test_the_hidden_state_gets_its_status_and_comes_back_on_the_way_down(database_url: str) -> None:
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            command.upgrade(alembic_config(connection), '0007')
            insert_as_0007(connection)
        assert upgrade(database.engine) == head_revision()
        with database.session() as session:
            statuses = {r.title: r.status for r in session.exec(select(Recording)).all()}
        assert statuses == {'kept for late audio': OPEN, 'finished': READY, 'recording': RECORDING, 'failed': FAILED}
        with database.engine.begin() as connection:
            command.downgrade(alembic_config(connection), '0007')
            stored = connection.execute(text('SELECT title, status, chunks_kept FROM recording')).all()
        assert {title: (status, bool(kept)) for title, status, kept in stored} == BEFORE_0008
        assert upgrade(database.engine) == head_revision()
        with database.session() as session:
            assert session.exec(select(Recording.status).where(Recording.title == 'kept for late audio')).one() == OPEN
    finally:
        database.dispose()


def insert_as_0007(connection: sa.Connection) -> None:
    user_id, at = uuid.uuid4(), datetime(2026, 12, 1, tzinfo=NOW.tzinfo)
    typed = (sa.bindparam('id', type_=sa.Uuid()), sa.bindparam('at', type_=sa.DateTime(timezone=True)))
    add_user = text('INSERT INTO "user" (id, name, token_hash, created_at) VALUES (:id, \'Old\', :hash, :at)')
    connection.execute(add_user.bindparams(*typed), {'id': user_id, 'hash': uuid.uuid4().hex * 2, 'at': at})
    for title, (status, kept) in BEFORE_0008.items():
        add = text(
            'INSERT INTO recording (id, user_id, title, mime_type, status, created_at, updated_at, chunks_kept) '
            f"VALUES (:id, :user_id, :title, 'audio/webm', '{status}', :at, :at, :kept)"
        ).bindparams(*typed, sa.bindparam('user_id', type_=sa.Uuid()), sa.bindparam('kept', type_=sa.Boolean()))
        connection.execute(add, {'id': uuid.uuid4(), 'user_id': user_id, 'title': title, 'at': at, 'kept': kept})
