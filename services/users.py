"""People and their credentials: only hashes of tokens are stored."""

import hashlib
import secrets
import uuid

from sqlmodel import func, select

from .database import Database
from .errors import InvalidInput, NotFound, Unauthorized
from .models import Recording, User

MAX_NAME_LENGTH = 50


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_name(name: str) -> str:
    cleaned = ' '.join(name.split())
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
        """A new credential; the old one stops working at once (it is revoked by losing its hash)."""
        token = secrets.token_urlsafe(32)
        with self.database.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound('user not found')
            user.token_hash = hash_token(token)
            session.add(user)
            session.commit()
        return token

    def recording_count(self, user_id: uuid.UUID) -> int:
        with self.database.session() as session:
            query = select(func.count()).select_from(Recording).where(Recording.user_id == user_id)
            return int(session.exec(query).one())
