"""Builds every service from settings, lazily and in one place, so tests can point them anywhere."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from services.access.audio_links import AudioLinks, AudioUrlSigner
from services.access.rate_limit import RateLimits, build_rate_limits
from services.access.sharing import ShareService
from services.access.upload_tokens import UploadTokens
from services.access.users import UserService
from services.audio.exports import ExportService
from services.audio.waveforms import WaveformService
from services.core.config import Settings
from services.core.database import Database
from services.core.priority import background_ffmpeg_niceness
from services.core.schema import upgrade
from services.core.user_slots import UserSlots
from services.recordings.chunk_batches import ChunkBatches
from services.recordings.chunks import ChunkService
from services.recordings.finalize import Finalizer
from services.recordings.imports import ImportLimits, ImportService
from services.recordings.orphans import OrphanSweeper
from services.recordings.quota import StorageQuota
from services.recordings.service import RecordingService
from services.recordings.sweeper import StaleRecordingSweeper
from services.recordings.tags import TagLimits
from services.storage.local import LocalStorage
from services.storage.protocol import Storage
from services.storage.spool import SpooledStorage
from services.transcripts.live_store import LiveTranscripts
from services.transcripts.queue import TranscriptQueue
from services.transcripts.service import TranscriptService


@dataclass
class Services:
    settings: Settings
    database: Database
    storage: Storage
    users: UserService
    recordings: RecordingService
    chunks: ChunkService
    imports: ImportService
    finalizer: Finalizer
    links: AudioLinks
    upload_tokens: UploadTokens
    sweeper: StaleRecordingSweeper
    rate_limits: RateLimits
    waveforms: WaveformService
    exports: ExportService
    shares: ShareService
    transcripts: TranscriptService
    live: LiveTranscripts
    finalize_slots: UserSlots
    chunk_batches: ChunkBatches

    def close(self) -> None:
        self.waveforms.close()
        self.exports.close()
        self.chunk_batches.close()
        self.database.dispose()
        self.storage.close()


def build_storage(settings: Settings) -> Storage:
    if settings.storage == 'local':
        return LocalStorage(settings.local_storage_dir)
    assert settings.s3_bucket  # Settings refuses s3 without a bucket
    from services.storage.s3 import S3Storage  # boto3 costs 0.15 s to import: only an S3 deployment pays it

    storage = S3Storage(
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        path_style=settings.s3_path_style,
        max_connections=settings.s3_max_concurrency,
        url_expiry_s=settings.audio_url_expiry_s,
    )
    storage.ensure_bucket(create=settings.s3_create_bucket)
    return SpooledStorage(storage, settings.data_dir / 'spool') if settings.s3_spool else storage


def build_transcripts(settings: Settings, database: Database) -> TranscriptService:
    """Jobs are queued only when transcripts are on; a worker process (worker.py) does them."""
    queue = None
    if settings.transcribe:
        lease = timedelta(seconds=settings.transcribe_lease_s)
        queue = TranscriptQueue(database=database, lease=lease, language=settings.transcribe_language)
    return TranscriptService(database=database, queue=queue)


def build_finalizer(settings: Settings, database: Database, storage: Storage) -> Finalizer:
    # Local reads are fast and sequential is fine; S3 pays a round trip per chunk, so fetch several at once.
    fetch_workers = settings.s3_max_concurrency if settings.storage == 's3' else 1
    return Finalizer(
        database=database,
        storage=storage,
        temp_dir=settings.data_dir / 'tmp',
        max_chunks=settings.max_chunks_per_recording,
        max_duration_ms=settings.max_recording_s * 1000,
        ffmpeg_timeout_s=settings.ffmpeg_timeout_s,
        fetch_workers=fetch_workers,
        max_import_bytes=settings.max_import_bytes,
        max_concurrent_encoders=settings.max_concurrent_encoders,
    )


def build_sweeper(
    settings: Settings, database: Database, storage: Storage, finalizer: Finalizer, waveforms: WaveformService
) -> StaleRecordingSweeper:
    return StaleRecordingSweeper(
        database=database,
        storage=storage,
        finalizer=finalizer,
        idle_after=timedelta(seconds=settings.stale_recording_s),
        late_audio_retention=timedelta(seconds=settings.late_audio_retention_s),
        waveforms=waveforms,
        orphans=OrphanSweeper(database=database, storage=storage, temp_dir=settings.data_dir / 'tmp'),
    )


def build_exports(settings: Settings, database: Database, storage: Storage, quota: StorageQuota) -> ExportService:
    return ExportService(
        database=database,
        storage=storage,
        temp_dir=settings.data_dir / 'tmp',
        max_concurrent_encoders=settings.max_concurrent_encoders,
        max_exports_per_user=settings.max_exports_per_user,
        max_queued_exports=settings.max_queued_exports,
        quota=quota,
        ffmpeg_timeout_s=settings.ffmpeg_timeout_s,
        niceness=background_ffmpeg_niceness(settings.background_priority),
    )


def build_imports(settings: Settings, database: Database, storage: Storage) -> ImportService:
    limits = ImportLimits(settings.max_import_bytes, settings.max_imports_per_user, settings.max_recordings_per_user)
    return ImportService(database=database, storage=storage, limits=limits)


def build_services(settings: Settings, *, storage: Storage | None = None) -> Services:
    database = Database(settings.resolved_database_url)
    if settings.auto_migrate:
        upgrade(database.engine)
    storage = storage or build_storage(settings)
    secret = settings.resolved_secret()
    finalizer = build_finalizer(settings, database, storage)
    waveforms = WaveformService(
        database=database,
        storage=storage,
        temp_dir=settings.data_dir / 'tmp',
        ffmpeg_timeout_s=settings.ffmpeg_timeout_s,
        niceness=background_ffmpeg_niceness(settings.background_priority),
    )
    transcripts = build_transcripts(settings, database)
    quota = StorageQuota(database=database, max_bytes_per_user=settings.max_bytes_per_user)
    chunks = ChunkService(
        database=database,
        storage=storage,
        quota=quota,
        max_chunk_bytes=settings.max_chunk_bytes,
        max_chunks=settings.max_chunks_per_recording,
    )

    def on_ready(recording_id: uuid.UUID) -> None:  # a new or re-assembled recording
        waveforms.schedule(recording_id)
        transcripts.on_ready(recording_id)

    finalizer.on_ready = on_ready
    return Services(
        settings=settings,
        database=database,
        storage=storage,
        users=UserService(
            database, credential_recheck_s=settings.credential_recheck_s, vocabulary_limits=settings.vocabulary_limits
        ),
        recordings=RecordingService(
            database=database,
            storage=storage,
            max_recordings_per_user=settings.max_recordings_per_user,
            tag_limits=TagLimits(settings.max_tags_per_recording, settings.max_tag_chars),
        ),
        chunks=chunks,
        imports=build_imports(settings, database, storage),
        finalizer=finalizer,
        links=AudioLinks(AudioUrlSigner(secret, settings.audio_url_expiry_s), storage),
        upload_tokens=UploadTokens(secret),
        sweeper=build_sweeper(settings, database, storage, finalizer, waveforms),
        rate_limits=build_rate_limits(settings),
        waveforms=waveforms,
        exports=build_exports(settings, database, storage, quota),
        shares=ShareService(database),
        transcripts=transcripts,
        live=LiveTranscripts(database=database),
        chunk_batches=ChunkBatches(chunks.add_chunks, max_in_flight=settings.max_chunks_in_flight),
        finalize_slots=UserSlots('recordings being saved', per_user=settings.max_finalizes_per_user),
    )
