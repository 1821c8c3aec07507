"""Tags on recordings: labels tidied and bounded here, indexed by case-folded key in `recording_tag` so filtering and
the owner's list of tags are one indexed query on every database (and fold case beyond ASCII, which SQLite's
`lower` does not)."""

import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, delete, exists, func, select

from services.core.errors import InvalidInput
from services.core.models import Recording, RecordingTag


class TagCount(BaseModel):
    """A tag the owner uses (one spelling of it, when spelled several ways) and on how many recordings."""

    tag: str
    count: int


@dataclass(frozen=True)
class TagLimits:
    max_tags: int = 10
    max_chars: int = 30


def tag_key(label: str) -> str:
    """What makes two spellings one tag: 'Work' and 'WORK' are the same."""
    return ' '.join(label.split()).casefold()


def clean_tags(tags: list[str], limits: TagLimits) -> list[str]:
    """Trimmed, inner spaces collapsed, blanks dropped, repeats (in any case) dropped keeping the first spelling."""
    kept: dict[str, str] = {}
    for raw in tags:
        if any(not ch.isprintable() for ch in raw):
            raise InvalidInput('a tag cannot hold a control character (a tab, a line break, …)')
        label = ' '.join(raw.split())
        if not label:
            continue
        if len(label) > limits.max_chars:
            raise InvalidInput(f'the tag “{label[:20]}…” is too long: at most {limits.max_chars} characters')
        kept.setdefault(tag_key(label), label)
    if len(kept) > limits.max_tags:
        raise InvalidInput(f'a recording can have at most {limits.max_tags} tags ({len(kept)} were given)')
    return list(kept.values())


def store_tags(session: Session, recording: Recording, labels: list[str]) -> None:
    """The row's list and its index together, in the caller's transaction."""
    session.exec(delete(RecordingTag).where(col(RecordingTag.recording_id) == recording.id))  # type: ignore[call-overload]
    session.flush()
    for label in labels:
        session.add(RecordingTag(recording_id=recording.id, key=tag_key(label), user_id=recording.user_id, label=label))
    recording.tags = labels


def has_tag(tag: str) -> Any:
    """A WHERE condition: the recording carries `tag`, in any case."""
    tagged = (col(RecordingTag.recording_id) == Recording.id) & (col(RecordingTag.key) == tag_key(tag))
    return exists().where(tagged)


def tags_of(session: Session, user_id: uuid.UUID) -> list[TagCount]:
    """Every tag of the user's recordings, alphabetical ignoring case and accents, each shown in its most used
    spelling (the same on every database: no collation decides it)."""
    query = (
        select(RecordingTag.key, RecordingTag.label, func.count())
        .where(col(RecordingTag.user_id) == user_id)
        .group_by(col(RecordingTag.key), col(RecordingTag.label))
    )
    spellings: dict[str, list[tuple[int, str]]] = {}
    for key, label, count in session.exec(query).all():
        spellings.setdefault(key, []).append((count, label))
    found = [
        TagCount(tag=min(counted, key=lambda c: (-c[0], c[1]))[1], count=sum(c for c, _ in counted))
        for counted in spellings.values()
    ]
    return sorted(found, key=lambda tag: (_unaccented(tag.tag.casefold()), tag.tag))


def _unaccented(text: str) -> str:
    return ''.join(ch for ch in unicodedata.normalize('NFKD', text) if not unicodedata.combining(ch))
