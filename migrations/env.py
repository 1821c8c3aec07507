"""Alembic environment: the app's models are the target; the connection comes from the app, or from VR_* settings.

The app passes its own connection (`services/core/schema.py`); the `alembic` command line (configured in
pyproject.toml) builds one from the same settings the app reads.
"""

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from services.core.config import Settings
from services.core.database import Database
from services.transcripts.search import include_name

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    # SQLite alters tables by copying them ("batch" mode); PostgreSQL alters them in place.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == 'sqlite',
        include_name=include_name,  # the full-text search structures are made by hand in 0004, not from models
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=Settings().resolved_database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := context.config.attributes.get('connection')) is not None:
    run_migrations(shared)
else:
    database = Database(Settings().resolved_database_url)
    try:
        with database.engine.begin() as connection:
            run_migrations(connection)
    finally:
        database.dispose()
