"""People and their credentials: only hashes of tokens are stored."""

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, TypedDict

import sqlalchemy
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, func, select, update

from services.access.credentials import SIGNED_OUT, CredentialCache, Credentials
from services.access.upload_tokens import UPLOAD_TOKEN_LIFETIME_S
from services.core.database import Database
from services.core.errors import InvalidInput, NotFound, Unauthorized
from services.core.models import EndedSession, Recording, User, utc_now
from services.transcripts.languages import checked_language
from services.transcripts.vocabulary import DEFAULT_LIMITS, VocabularyLimits, checked_vocabulary

log = logging.getLogger(__name__)
MAX_NAME_LENGTH = 50
_USERS: sqlalchemy.Table = User.__table__  # type: ignore[attr-defined]
_ENDED: sqlalchemy.Table = EndedSession.__table__  # type: ignore[attr-defined]
# One indexed read: users' credential versions, and the ids of their browser sessions signed out one by one.
_CREDENTIALS = (
    sqlalchemy.select(_USERS.c.id, _USERS.c.credential_version, _ENDED.c.id)
    .select_from(_USERS.outerjoin(_ENDED, _ENDED.c.user_id == _USERS.c.id))
    .where(_USERS.c.id.in_(sqlalchemy.bindparam('user_ids', expanding=True)))
)
RevocationListener = Callable[[uuid.UUID, uuid.UUID | None], None]


class ProfileChanges(TypedDict, total=False):
    """What a user may change of their profile; a key left out stays as it is."""

    language: str | None  # one of Whisper's codes; None: each recording's language is detected
    vocabulary: Sequence[str]  # names and terms the model listens for (transcripts/vocabulary.py)
    live_transcript: bool  # whether the recorder page shows the words while the user speaks


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_name(name: str) -> str:
    cleaned = ' '.join(name.replace('\x00', '').split())  # PostgreSQL text cannot hold NUL
    if not cleaned:
        raise InvalidInput('please enter a name')
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidInput(f'the name is too long (at most {MAX_NAME_LENGTH} characters)')
    return cleaned


class UserService:
    def __init__(
        self,
        database: Database,
        credential_recheck_s: float = 1.0,
        vocabulary_limits: VocabularyLimits = DEFAULT_LIMITS,
    ) -> None:
        self.database = database
        self.vocabulary_limits = vocabulary_limits
        self.credentials = CredentialCache(self.read_credentials, credential_recheck_s)
        self._revocation_listeners: list[RevocationListener] = []

    def on_revoked(self, listener: RevocationListener) -> None:
        """`listener(user_id, session_id)` runs (in the revoking thread) once sessions ended in this process: one
        browser's (`session_id`), or all of the user's (None). Other processes notice within the recheck interval."""
        self._revocation_listeners.append(listener)

    def onboard(self, *, name: str) -> tuple[User, str]:
        """Create a user; the token is returned once and only its hash is kept."""
        token = secrets.token_urlsafe(32)
        user = User(name=clean_name(name), token_hash=hash_token(token))
        with self.database.session() as session:
            session.add(user)
            session.commit()
        return user, token

    def get(self, user_id: uuid.UUID) -> User:
        with self.database.session() as session:
            user = session.get(User, user_id)
        if user is None:
            raise NotFound('user not found')
        return user

    def authenticate(self, token: str) -> User:
        with self.database.session() as session:
            user = session.exec(select(User).where(User.token_hash == hash_token(token))).first()
        if user is None:
            raise Unauthorized('invalid or expired token')
        return user

    def rotate_token(self, user_id: uuid.UUID) -> str:
        """A new credential; the old one stops working at once (it is revoked by losing its hash), and so does
        every browser session and upload token issued before."""
        token = secrets.token_urlsafe(32)
        self._revoke_sessions(user_id, new_token_hash=hash_token(token))
        return token

    def sign_out_everywhere(self, user_id: uuid.UUID) -> None:
        """End every browser session and upload token of the user; the recovery key still signs in."""
        self._revoke_sessions(user_id)

    def end_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """A plain "Sign out": this browser session and the upload tokens it was given end; other sessions go on.
        Rows older than any upload token can live are no longer needed, so each sign-out clears them."""
        oldest = utc_now() - timedelta(seconds=UPLOAD_TOKEN_LIFETIME_S)
        with self.database.session() as session:
            session.exec(delete(EndedSession).where(col(EndedSession.ended_at) < oldest))  # type: ignore[call-overload]
            session.add(EndedSession(id=session_id, user_id=user_id))
            try:
                session.commit()
            except IntegrityError:  # signed out twice at once (two tabs): already ended
                session.rollback()
        self._revoked(user_id, session_id)

    def _revoke_sessions(self, user_id: uuid.UUID, new_token_hash: str | None = None) -> None:
        values: dict[str, object] = {'credential_version': col(User.credential_version) + 1}
        if new_token_hash:
            values['token_hash'] = new_token_hash
        with self.database.session() as session:
            updated = session.exec(update(User).where(col(User.id) == user_id).values(**values)).rowcount  # type: ignore[call-overload]
            session.commit()
        if updated != 1:
            raise NotFound('user not found')
        self._revoked(user_id, None)

    def _revoked(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
        self.credentials.forget(user_id)
        for listener in self._revocation_listeners:
            try:
                listener(user_id, session_id)
            except Exception:  # the revocation itself is committed; one listener must not hide it from the others
                log.exception('a sign-out listener failed')

    def current(self, user_id: uuid.UUID, credential_version: int, session_id: uuid.UUID | None = None) -> User:
        """The user a browser session or upload token speaks for, if that credential has not been revoked since."""
        self.check_credential(user_id, credential_version, session_id)
        try:
            return self.get(user_id)
        except NotFound as error:  # deleted since the check
            raise Unauthorized(SIGNED_OUT) from error

    def check_credential(
        self, user_id: uuid.UUID, credential_version: int, session_id: uuid.UUID | None = None
    ) -> None:
        """`current` without loading the user: Unauthorized once the key was rotated, the user signed out everywhere
        or (with `session_id`) that browser signed out."""
        self.read_credentials((user_id,)).get(user_id, Credentials(None)).verify(credential_version, session_id)

    def read_credentials(self, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Credentials]:
        """One prepared query on a plain connection for many users: pages and audio connections ask this often (via
        the cache, which reads the users falling due together). A user who does not exist is left out."""
        with self.database.connection() as connection:
            rows = connection.execute(_CREDENTIALS, {'user_ids': list(user_ids)}).all()
        versions: dict[uuid.UUID, int] = {}
        ended: dict[uuid.UUID, set[uuid.UUID]] = {}
        for user_id, version, session_id in rows:
            versions[user_id] = version
            if session_id is not None:
                ended.setdefault(user_id, set()).add(session_id)
        return {user: Credentials(version, frozenset(ended.get(user, ()))) for user, version in versions.items()}

    def set_language(self, user_id: uuid.UUID, language: str | None) -> User:
        """The language the user speaks (one of Whisper's codes; None: each recording's is detected): their recordings
        are transcribed in it from the next job on. Anything else is refused and changes nothing."""
        return self.change_profile(user_id, {'language': language})

    def set_vocabulary(self, user_id: uuid.UUID, entries: Sequence[str]) -> User:
        """The names and terms the model listens for in the user's recordings from the next job on, cleaned (trimmed,
        repeats dropped); one past the limits, or malformed, is refused and changes nothing."""
        return self.change_profile(user_id, {'vocabulary': entries})

    def change_profile(self, user_id: uuid.UUID, changes: ProfileChanges) -> User:
        """Every change is checked before any is made: one refused (in plain words) leaves the profile as it was."""
        values: dict[str, Any] = {}
        if 'language' in changes:
            values['language'] = checked_language(changes['language'])
        if 'vocabulary' in changes:
            values['vocabulary'] = checked_vocabulary(changes['vocabulary'], self.vocabulary_limits)
        if 'live_transcript' in changes:
            values['live_transcript'] = bool(changes['live_transcript'])
        if values:
            with self.database.session() as session:
                updated = session.exec(update(User).where(col(User.id) == user_id).values(**values)).rowcount  # type: ignore[call-overload]
                session.commit()
            if updated != 1:
                raise NotFound('user not found')
        return self.get(user_id)

    def recording_count(self, user_id: uuid.UUID) -> int:
        with self.database.session() as session:
            query = select(func.count()).select_from(Recording).where(Recording.user_id == user_id)
            return int(session.exec(query).one())
