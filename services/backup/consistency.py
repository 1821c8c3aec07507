"""Whether the copied audio folder holds every file the copied database names.

The database is copied first and the audio after it, so a file the copy names can only be missing if it was
removed in between: a recording finalized meanwhile (its chunks deleted once its file is made) or deleted. The
snapshot is then taken again, to the state after that change.
"""

from pathlib import Path

from sqlalchemy import create_engine
from sqlmodel import Session, col, select

from services.audio.formats import audio_format
from services.core.models import Chunk, Recording
from services.recordings import lifecycle
from services.storage.keys import audio_key, chunk_key, legacy_chunk_key


def missing_files(database: Path, audio: Path) -> list[str]:
    """The storage keys the database copy names (every chunk row, every playable recording's file) that `audio`
    lacks."""
    engine = create_engine(f'sqlite:///{database}')
    try:
        with Session(engine) as session:
            chunks = session.exec(select(Chunk.recording_id, Chunk.seq, Chunk.sha256, Chunk.legacy_key)).all()
            playable = select(Recording.id, Recording.mime_type).where(lifecycle.playable(col(Recording.status)))
            joined = session.exec(playable).all()
    finally:
        engine.dispose()
    keys = [legacy_chunk_key(rid, seq) if legacy else chunk_key(rid, seq, sha) for rid, seq, sha, legacy in chunks]
    keys += [audio_key(rid, audio_format(mime_type).extension) for rid, mime_type in joined]
    return [key for key in keys if not (audio / key).is_file()]
