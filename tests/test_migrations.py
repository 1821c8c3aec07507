"""Alembic builds exactly the models' schema on SQLite and PostgreSQL, and the app runs it at the right moments."""

import stat
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel, col, select

from services.core.config import Settings
from services.core.database import Database
from services.core.models import Chunk, Recording, User, UTCDateTime, utc_now
from services.core.schema import BASELINE, alembic_config, current_revision, head_revision, upgrade
from services.transcripts.search import include_name  # the search structures live in migrations only
from tests.support.app_server import ROOT, free_port
from tests.support.postgres_server import PostgresServer
from tests.support.threads import run_together

POSTGRES_ONLY = pytest.mark.parametrize('database_kind', ['postgresql'], indirect=True)


def schema_differences(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={'compare_type': True, 'include_name': include_name})
        return list(compare_metadata(context, SQLModel.metadata))


def test_migrations_build_the_models_schema_and_come_back_down(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert upgrade(database.engine) == head_revision()
        assert schema_differences(database) == []
        created_at = {c['name']: c['type'] for c in inspect(database.engine).get_columns('recording')}['created_at']
        if database.engine.dialect.name == 'postgresql':
            assert created_at.timezone, 'timestamps must be timestamptz on PostgreSQL'
        with database.engine.begin() as connection:
            command.downgrade(alembic_config(connection), 'base')
        assert schema_differences(database), 'the comparison must notice missing tables'
        assert set(inspect(database.engine).get_table_names()) == {'alembic_version'}
        assert upgrade(database.engine) == head_revision()
        assert schema_differences(database) == []
    finally:
        database.dispose()


def test_a_database_made_before_migrations_is_adopted_with_its_data(database_url: str) -> None:
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:  # the first release's schema, made without Alembic's table
            command.upgrade(alembic_config(connection), BASELINE)
            connection.execute(text('DROP TABLE alembic_version'))
            # the first release's user row: only the columns that release had
            early = sa.table(
                'user',
                sa.column('id', sa.Uuid()),
                sa.column('name'),
                sa.column('token_hash'),
                sa.column('created_at', UTCDateTime()),
            )
            connection.execute(
                sa.insert(early).values(id=uuid.uuid4(), name='Early', token_hash='0' * 64, created_at=utc_now())
            )
        assert upgrade(database.engine) == head_revision()
        with database.session() as session:
            assert [user.name for user in session.exec(select(User)).all()] == ['Early']
    finally:
        database.dispose()


@POSTGRES_ONLY
def test_the_real_queries_use_their_indexes(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database.engine)
    user = User(name='Ada', token_hash='1' * 64)
    recording = Recording(user_id=user.id, title='t', mime_type='audio/webm', created_at=utc_now())
    with database.session() as session:
        session.add(user)
        session.commit()
        session.add(recording)
        session.commit()
        session.add(Chunk(recording_id=recording.id, seq=0, size=1, sha256='0' * 64))
        session.commit()
    queries = {
        'ix_recording_user_created': select(Recording)
        .where(Recording.user_id == user.id)
        .order_by(col(Recording.created_at).desc())
        .limit(50),
        'chunk_pkey': select(Chunk.seq).where(Chunk.recording_id == recording.id).order_by(col(Chunk.seq)),
    }
    try:
        with database.engine.connect() as connection:
            connection.execute(text('SET enable_seqscan = off'))  # a tiny table would otherwise be scanned
            for index, query in queries.items():
                sql = str(query.compile(connection, compile_kwargs={'literal_binds': True}))
                plan = '\n'.join(row[0] for row in connection.execute(text(f'EXPLAIN {sql}')))
                assert index in plan, plan
    finally:
        database.dispose()


@POSTGRES_ONLY
def test_migrate_command_upgrades_and_exits(database_url: str, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, 'main.py', 'migrate'],
        cwd=ROOT,
        env={'PATH': '/usr/bin:/bin', 'VR_DATABASE_URL': database_url, 'VR_DATA_DIR': str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f'the database is at revision {head_revision()}, the newest' in result.stderr
    database = Database(database_url)
    assert current_revision(database.engine) == head_revision()
    database.dispose()


CLOSED_PORT = free_port()


@pytest.mark.parametrize(
    ('env', 'message'),
    [
        (
            {'VR_DATABASE_URL': f'postgresql+psycopg://app:secret@127.0.0.1:{CLOSED_PORT}/voice'},
            f'the database at postgresql+psycopg://app:***@127.0.0.1:{CLOSED_PORT}/voice cannot be migrated',
        ),
        ({'VR_STORAGE': 's3'}, 'VR_STORAGE=s3 needs VR_S3_BUCKET'),
    ],
    ids=['unreachable database', 's3 without a bucket'],  # the same on every xdist worker, whatever the port
)
def test_start_up_problems_stop_the_app_with_one_clear_line(env: dict[str, str], message: str, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, 'main.py'],
        cwd=ROOT,
        env={'PATH': '/usr/bin:/bin', 'VR_DATA_DIR': str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if ' ERROR ' in line]
    assert len(errors) == 1, result.stderr
    assert 'cannot start: ' in errors[0] and message in errors[0]
    assert 'secret' not in result.stderr and 'Traceback' not in result.stderr


def test_instances_starting_together_migrate_once(postgres: PostgresServer) -> None:
    """Several containers start at once against a new database: the advisory lock lets one of them migrate."""
    name = postgres.create_database()
    try:
        assert_migrated_together([postgres.url(name)] * 4)
    finally:
        postgres.drop_database(name)


def test_processes_sharing_one_sqlite_file_migrate_it_once(tmp_path: Path) -> None:
    """Two app processes on one machine may share the embedded database; without a lock one of them failed to
    start with "table alembic_version already exists" (or "user", or "database is locked")."""
    for attempt in range(3):
        assert_migrated_together([f'sqlite:///{tmp_path / f"shared-{attempt}.db"}'] * 4)


def assert_migrated_together(urls: list[str]) -> None:
    databases = [Database(url) for url in urls]
    try:
        with ThreadPoolExecutor(len(databases)) as pool:
            revisions = list(pool.map(lambda database: upgrade(database.engine), databases))
        assert revisions == [head_revision()] * len(databases)
        assert schema_differences(databases[0]) == []
    finally:
        for database in databases:
            database.dispose()


def test_timestamps_come_back_timezone_aware(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database.engine)
    user = User(name='Tz', token_hash=uuid.uuid4().hex * 2)
    with database.session() as session:
        session.add(user)
        session.commit()
    with database.session() as session:
        stored = session.get(User, user.id)
    database.dispose()
    assert stored is not None and stored.created_at.tzinfo is not None
    assert stored.created_at == user.created_at


def test_instances_starting_together_on_one_data_dir_end_with_one_private_secret(tmp_path: Path) -> None:
    """Without VR_SECRET the first start generates one into the data dir; several starting at once must agree on it
    (or their sessions and upload tokens would not verify on each other), and it is never readable by others."""
    for attempt in range(5):
        data_dir = tmp_path / f'data-{attempt}'
        seen = secrets_resolved_together(Settings(_env_file=None, data_dir=data_dir), 8)
        assert len(seen) == 8 and len(set(seen)) == 1 and len(seen[0]) >= 32, seen
        assert stat.S_IMODE((data_dir / 'secret.key').stat().st_mode) == 0o600
        assert sorted(path.name for path in data_dir.iterdir()) == ['secret.key'], 'no temp file is left behind'


def secrets_resolved_together(settings: Settings, count: int) -> list[str]:
    seen: list[str] = []
    run_together(*[lambda: seen.append(settings.resolved_secret())] * count)
    return seen
