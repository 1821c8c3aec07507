"""Share links: a recording made public to whoever has the link, until it expires or is revoked."""

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlmodel import col, delete, select

from services.core.database import Database
from services.core.errors import Conflict, InvalidInput, NotFound
from services.core.models import Recording, Share, utc_now
from services.recordings.lifecycle import is_playable
from services.recordings.service import load_owned

MIN_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(days=30)
RECHECK_S = 15.0  # how long a stream already under way may outlive the revocation of its link


class ShareService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, lifetime: timedelta) -> Share:
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise InvalidInput('a share link lives between 5 minutes and 30 days')
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
            if not is_playable(recording.status):
                raise Conflict('only a saved recording can be shared')
            share = Share(recording_id=recording_id, expires_at=utc_now() + lifetime)
            session.add(share)
            session.commit()
        return share

    def active(self, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> list[Share]:
        with self.database.session() as session:
            load_owned(session, user_id=user_id, recording_id=recording_id)
            query = (
                select(Share)
                .where(Share.recording_id == recording_id)
                .where(col(Share.expires_at) > utc_now())
                .order_by(col(Share.created_at))
            )
            return list(session.exec(query).all())

    def revoke(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, share_id: uuid.UUID | None = None) -> int:
        """Revoke one link, or every link of the recording when no id is given."""
        with self.database.session() as session:
            load_owned(session, user_id=user_id, recording_id=recording_id)
            statement = delete(Share).where(col(Share.recording_id) == recording_id)
            if share_id is not None:
                statement = statement.where(col(Share.id) == share_id)
            count = session.exec(statement).rowcount  # type: ignore[call-overload]
            session.commit()
        if share_id is not None and count == 0:
            raise NotFound('share link not found')
        return int(count)

    def resolve(self, share_id: uuid.UUID) -> tuple[Share, Recording]:
        """What a public link shows; an expired, revoked or unknown link is simply not found."""
        with self.database.session() as session:
            share = session.get(Share, share_id)
            if share is None or share.expires_at <= utc_now():
                raise NotFound('this link has expired or was revoked')
            recording = session.get(Recording, share.recording_id)
        if recording is None or not is_playable(recording.status):
            raise NotFound('this link has expired or was revoked')
        return share, recording

    def is_active(self, share_id: uuid.UUID) -> bool:
        try:
            self.resolve(share_id)
        except NotFound:
            return False
        return True

    def while_active(
        self, share_id: uuid.UUID, pieces: Iterator[bytes], *, recheck_s: float = RECHECK_S
    ) -> Iterator[bytes]:
        """Ends a stream soon after its link is revoked: a player may hold one response open for the whole recording."""
        checked = time.monotonic()
        try:
            for piece in pieces:
                if time.monotonic() - checked >= recheck_s:
                    if not self.is_active(share_id):
                        return
                    checked = time.monotonic()
                yield piece
        finally:
            close = getattr(pieces, 'close', None)
            if close is not None:
                close()  # let go of the file or S3 stream now, not when the generator is collected
