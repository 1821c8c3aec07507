"""People and their credentials: only hashes of tokens are stored."""

import hashlib
import secrets
import uuid

import sqlalchemy
from sqlmodel import col, func, select, update

from .database import Database
from .errors import InvalidInput, NotFound, Unauthorized
from .models import Recording, User

MAX_NAME_LENGTH = 50
_USERS: sqlalchemy.Table = User.__table__  # type: ignore[attr-defined]
_CREDENTIAL_VERSION = sqlalchemy.select(_USERS.c.credential_version).where(
    _USERS.c.id == sqlalchemy.bindparam('user_id')
)


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
    def __init__(self, database: Database) -> None:
        self.database = database

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

    def _revoke_sessions(self, user_id: uuid.UUID, new_token_hash: str | None = None) -> None:
        values: dict[str, object] = {'credential_version': col(User.credential_version) + 1}
        if new_token_hash:
            values['token_hash'] = new_token_hash
        with self.database.session() as session:
            updated = session.exec(update(User).where(col(User.id) == user_id).values(**values)).rowcount  # type: ignore[call-overload]
            session.commit()
        if updated != 1:
            raise NotFound('user not found')

    def current(self, user_id: uuid.UUID, credential_version: int) -> User:
        """The user a browser session or upload token speaks for, if that credential has not been revoked since."""
        try:
            user = self.get(user_id)
        except NotFound as error:
            raise Unauthorized('you have been signed out; sign in again') from error
        if user.credential_version != credential_version:
            raise Unauthorized('you have been signed out; sign in again')
        return user

    def check_credential(self, user_id: uuid.UUID, credential_version: int) -> None:
        """`current` without loading the user: the audio channel asks this of every open connection every few
        seconds, so it is one prepared query on a plain connection."""
        with self.database.connection() as connection:
            version = connection.execute(_CREDENTIAL_VERSION, {'user_id': user_id}).scalar()
        if version != credential_version:  # None: the user is gone
            raise Unauthorized('you have been signed out; sign in again')

    def recording_count(self, user_id: uuid.UUID) -> int:
        with self.database.session() as session:
            query = select(func.count()).select_from(Recording).where(Recording.user_id == user_id)
            return int(session.exec(query).one())
