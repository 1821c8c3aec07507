"""The schema is made and changed only by Alembic migrations: at start-up (VR_AUTO_MIGRATE) or by `main.py migrate`."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from services.core.database import Database
from services.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / 'migrations'
BASELINE = '0001'  # the schema the first release made with create_all, before there were migrations
_LOCK_ID = 0x5652_4D49_4752  # any constant every instance shares: 'VRMIGR'


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS_DIR))
    config.attributes['connection'] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str | None:
    """Bring the schema to the newest revision and return it.

    Instances that start at the same time migrate one after the other: on PostgreSQL under a transaction-level
    advisory lock, on SQLite (several processes on one machine sharing the file) under a lock file beside it.
    """
    with _sqlite_lock(engine):
        return _upgrade(engine)


def _upgrade(engine: Engine) -> str | None:
    try:
        with engine.begin() as connection:
            if connection.dialect.name == 'postgresql':
                connection.execute(text('SELECT pg_advisory_xact_lock(:id)'), {'id': _LOCK_ID})
            config = alembic_config(connection)
            if _unversioned_tables(connection):
                log.info('adopting an existing schema made before migrations as revision %s', BASELINE)
                command.stamp(config, BASELINE)
            command.upgrade(config, 'head')
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as error:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise ServiceUnavailable(f'the database at {where} cannot be migrated: {reason}') from error


@contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == 'sqlite' else None
    if not database or database == ':memory:':
        yield
        return
    with FileLock(f'{database}.migrate-lock'):
        yield


def migrate(database_url: str) -> str | None:
    """Upgrade the database at `database_url` with an engine of its own; returns the revision it is at."""
    database = Database(database_url)
    try:
        return upgrade(database.engine)
    finally:
        database.dispose()


def _unversioned_tables(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return 'recording' in tables and 'alembic_version' not in tables
