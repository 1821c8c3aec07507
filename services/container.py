"""Builds every service from settings, lazily and in one place, so tests can point them anywhere."""

from dataclasses import dataclass
from datetime import timedelta

from .chunks import ChunkService
from .config import Settings
from .database import Database
from .finalize import Finalizer
from .rate_limit import RateLimiter
from .recordings import RecordingLocks, RecordingService
from .signing import AudioLinks, AudioUrlSigner, UploadTokens
from .storage import LocalStorage, Storage
from .sweeper import StaleRecordingSweeper
from .users import UserService


@dataclass
class Services:
    settings: Settings
    database: Database
    storage: Storage
    users: UserService
    recordings: RecordingService
    chunks: ChunkService
    finalizer: Finalizer
    links: AudioLinks
    upload_tokens: UploadTokens
    sweeper: StaleRecordingSweeper
    rate_limiter: RateLimiter
    secret: str

    def close(self) -> None:
        self.database.dispose()


def build_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.local_storage_dir)


def build_services(settings: Settings, *, storage: Storage | None = None) -> Services:
    database = Database(settings.resolved_database_url)
    database.create_schema()
    storage = storage or build_storage(settings)
    locks = RecordingLocks()
    secret = settings.resolved_secret()
    finalizer = Finalizer(database=database, storage=storage, locks=locks, temp_dir=settings.data_dir / 'tmp')
    return Services(
        settings=settings,
        database=database,
        storage=storage,
        users=UserService(database),
        recordings=RecordingService(
            database=database, storage=storage, locks=locks, max_recordings_per_user=settings.max_recordings_per_user
        ),
        chunks=ChunkService(
            database=database,
            storage=storage,
            locks=locks,
            max_chunk_bytes=settings.max_chunk_bytes,
            max_chunks=settings.max_chunks_per_recording,
        ),
        finalizer=finalizer,
        links=AudioLinks(AudioUrlSigner(secret, settings.audio_url_expiry_s)),
        upload_tokens=UploadTokens(secret),
        sweeper=StaleRecordingSweeper(
            database=database, finalizer=finalizer, idle_after=timedelta(seconds=settings.stale_recording_s)
        ),
        rate_limiter=RateLimiter(settings.api_requests_per_minute),
        secret=secret,
    )
