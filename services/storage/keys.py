"""Every storage key the app uses, built in one place.

A chunk's key carries a prefix of its content hash, so two different uploads for the same seq (a conflicting
duplicate, possibly on another instance) never overwrite each other: the database row names the one accepted.
"""

import uuid

RECORDINGS_PREFIX = 'recordings/'
HASH_IN_KEY = 16  # hex digits of the sha256: enough to keep two uploads of one seq apart


def recording_prefix(recording_id: uuid.UUID) -> str:
    return f'{RECORDINGS_PREFIX}{recording_id}/'


def chunks_prefix(recording_id: uuid.UUID) -> str:
    return f'{recording_prefix(recording_id)}chunks/'


def chunk_key(recording_id: uuid.UUID, seq: int, sha256: str) -> str:
    return f'{chunks_prefix(recording_id)}{seq}.{sha256[:HASH_IN_KEY]}'


def legacy_chunk_key(recording_id: uuid.UUID, seq: int) -> str:
    """Where version 0.1 kept a chunk; read only for recordings that were open during the upgrade."""
    return f'{chunks_prefix(recording_id)}{seq}'


def audio_key(recording_id: uuid.UUID, extension: str) -> str:
    return f'{recording_prefix(recording_id)}audio.{extension}'


def mp3_key(recording_id: uuid.UUID) -> str:
    return f'{recording_prefix(recording_id)}audio.mp3'


def recording_id_of(prefix: str) -> uuid.UUID | None:
    """The recording a listed `recordings/<id>/` prefix belongs to, or None for anything else."""
    name = prefix.removeprefix(RECORDINGS_PREFIX).strip('/')
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def original_key(recording_id: uuid.UUID, extension: str) -> str:
    """An imported file as it came, kept beside the audio that is played when that is a copy of it."""
    return f'{recording_prefix(recording_id)}original.{extension}'
