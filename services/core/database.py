"""Engine and session handling: one session per unit of work, never shared between requests."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from services.core import models  # noqa: F401  (registers the tables on the metadata)
from services.core.errors import ServiceUnavailable


def _enable_sqlite_durability(dbapi_connection: Any, _record: object) -> None:
    # WAL lets readers run beside the chunk writer; synchronous=FULL makes every commit survive power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA synchronous=FULL')
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.execute('PRAGMA busy_timeout=10000')
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        if self.url.get_backend_name() == 'sqlite':
            if self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={'check_same_thread': False, 'timeout': 10})
            event.listen(self.engine, 'connect', _enable_sqlite_durability)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for one unit of work; a lost database becomes a retryable ServiceUnavailable."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except OperationalError as error:
            raise ServiceUnavailable('the database is unreachable, please try again shortly') from error

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in a transaction that commits on success: for hot paths that need no ORM session."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as error:
            raise ServiceUnavailable('the database is unreachable, please try again shortly') from error

    def check(self) -> None:
        with self.session() as session:
            session.exec(text('SELECT 1'))  # type: ignore[call-overload]

    def dispose(self) -> None:
        self.engine.dispose()
