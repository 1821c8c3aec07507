"""All settings in one typed object, read from `VR_*` environment variables and an optional `.env` file."""

import contextlib
import os
import secrets
import threading
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.priority import BackgroundPriority
from services.transcripts.languages import WHISPER_LANGUAGES
from services.transcripts.models import DEFAULT_MODEL, model_spec
from services.transcripts.vocabulary import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_ENTRY_CHARS,
    PROMPT_BUDGET,
    VocabularyLimits,
)


class SettingsError(ValueError):
    """A setting the app cannot start with; the message names it (`VR_PORT: ...`) in one line for the log."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix='VR_', env_file='.env', extra='ignore', validate_by_name=True)

    host: str = '127.0.0.1'
    port: int = 8080
    data_dir: Path = Path('data')
    database_url: str | None = Field(default=None, description='SQLAlchemy URL; default: SQLite in the data dir')
    auto_migrate: bool = Field(default=True, description='upgrade the database schema at start-up')
    storage: Literal['local', 's3'] = 'local'
    s3_bucket: str | None = None
    s3_region: str | None = Field(default=None, description='default: the AWS chain (AWS_REGION, ~/.aws/config)')
    s3_endpoint_url: str | None = Field(default=None, description='for MinIO and other S3-compatible servers')
    s3_public_endpoint_url: str | None = Field(default=None, description='the endpoint browsers reach, if different')
    s3_path_style: bool = False
    s3_create_bucket: bool = False
    s3_spool: bool = Field(default=True, description='also keep received chunks on local disk for a fast finalize')
    s3_max_concurrency: int = Field(default=16, ge=1, le=128, description='parallel S3 requests per finalize')
    secret: str | None = Field(default=None, description='signs browser storage, upload tokens and audio URLs')
    max_chunk_bytes: int = Field(default=512 * 1024, gt=0, le=900 * 1024)
    max_chunks_in_flight: int = Field(default=256, gt=0, description='chunks stored at once; more get "busy"')
    audio_url_expiry_s: int = Field(default=3600, gt=0, le=7 * 24 * 3600, description='S3 presigns at most 7 days')
    recorder_reconnect_timeout_s: float = Field(default=90.0, gt=0)
    chunk_timeslice_ms: int = Field(default=1000, ge=100, le=10_000)
    stale_recording_s: float = Field(default=600, gt=0, description='finalize a recording idle this long')
    late_audio_retention_s: float = Field(
        default=30 * 24 * 3600, gt=0, description='how long an auto-finished recording takes audio a browser held'
    )
    max_bytes_per_user: int = Field(default=5 * 2**30, gt=0, description='storage quota per user, checked per chunk')
    sweep_interval_s: float = Field(default=60, gt=0)
    environment: Literal['development', 'production'] = 'development'
    cors_origins: str = Field(default='', description='comma-separated origins allowed to call the API')
    max_recording_s: int = Field(default=4 * 3600, gt=0)
    max_recordings_per_user: int = Field(default=1000, gt=0)
    max_tags_per_recording: int = Field(default=10, ge=0, le=100, description='tags one recording may carry')
    max_tag_chars: int = Field(default=30, ge=1, le=50, description='characters of one tag')
    api_requests_per_minute: int = Field(default=1200, gt=0, description='per user, per app instance')
    max_concurrent_encoders: int = Field(default=2, ge=1, le=32, description='MP3 encodes at once, per instance')
    max_exports_per_user: int = Field(default=2, ge=1, le=32, description='MP3 encodes one user may have going')
    max_queued_exports: int = Field(default=32, ge=1, le=1024, description='MP3 encodes waiting or running, in all')
    max_finalizes_per_user: int = Field(default=2, ge=1, le=32, description='recordings one user saves at once')
    max_import_bytes: int = Field(default=2 * 2**30, gt=0, description='the largest file a user may import')
    max_imports_per_user: int = Field(default=3, ge=1, le=100, description='imports one user may have going')
    worker_threads: int = Field(
        default=40, ge=4, le=1024, description='threads for blocking work in requests and page actions, each pool'
    )
    ffmpeg_timeout_s: float = Field(default=900, gt=0, description='any single ffmpeg run is killed after this')
    # Abuse limits: request bodies, sign-ups and the audio channel, counted per client address or per user.
    max_json_body_bytes: int = Field(default=64 * 1024, gt=0, le=16 * 1024 * 1024, description='except audio chunks')
    onboard_per_address_per_hour: int = Field(default=20, gt=0, description='sign-ups and recovery-key sign-ins')
    vr_connects_per_address_per_minute: int = Field(default=60, gt=0, description='audio channel connections')
    vr_events_per_user_per_minute: int = Field(default=1200, gt=0, description='audio channel events; 429 retries')
    credential_recheck_s: float = Field(
        default=1.0, gt=0, le=60, description='a sign-out on another instance reaches open pages and audio within this'
    )
    trusted_proxy_count: int = Field(default=0, ge=0, le=10, description='proxies that append to X-Forwarded-For')
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices('VR_REDIS_URL', 'NICEGUI_REDIS_URL'),
        description='shares the rate limits between instances; default: NICEGUI_REDIS_URL, else in memory',
    )
    secure_cookies: bool | None = Field(default=None, description='Secure cookies; default: on in production')
    # Transcripts: a worker process (never the web process) turns each ready recording's speech into text, offline.
    transcribe: bool = Field(default=True, description='false: no transcripts, no jobs, no worker')
    transcribe_worker: Literal['embedded', 'external'] = Field(
        default='embedded', description='embedded: the app runs its workers itself; external: `python main.py worker`'
    )
    transcribe_workers: int = Field(
        default_factory=lambda: available_cores(),
        ge=1,
        le=64,
        description='worker processes, each transcribing one recording at a time on one core; default: one per core',
    )
    transcribe_model: str = Field(
        default=DEFAULT_MODEL, description='base (multilingual), tiny.en (English only) or a CTranslate2 model folder'
    )
    transcribe_language: str | None = Field(
        default=None, description="the language spoken, for users who chose none; default: detected (one of Whisper's)"
    )
    background_priority: BackgroundPriority = Field(
        default='idle',
        description='transcript workers, waveforms and MP3 copies: idle (the CPU only when recording leaves it), '
        'low (nice only) or normal',
    )
    transcribe_timeout_s: float = Field(default=3600, gt=0, description='one recording; longer ones fail')
    transcribe_lease_s: float = Field(
        default=60, ge=1, le=3600, description='a job whose worker fell silent this long is taken up again'
    )
    live_transcripts: int = Field(
        default_factory=lambda: 2 * available_cores(),
        ge=0,
        le=256,
        description='recordings heard at once while they are made (0: no live words); default: 2 per core',
    )
    live_threads: int = Field(
        default_factory=lambda: available_cores(),
        ge=1,
        le=64,
        description="the live worker's compute threads, each hearing one stream at a time; default: one per core",
    )
    live_poll_s: float = Field(
        default=0.5, ge=0.1, le=10, description='how often a recorder page reads new live words (and a worker chunks)'
    )
    transcribe_again_per_user_per_hour: int = Field(
        default=30, gt=0, description='"transcribe again" requests per user; each one costs a whole transcription'
    )
    # A user's vocabulary (names and terms the model listens for) must fit Whisper's prompt of 223 tokens: the
    # defaults do whatever letters a-z it holds (services/transcripts/vocabulary.py says why), and larger limits
    # that could not are refused at start-up.
    vocabulary_max_entries: int = Field(default=DEFAULT_MAX_ENTRIES, ge=1, description='names and terms per user')
    vocabulary_max_entry_chars: int = Field(default=DEFAULT_MAX_ENTRY_CHARS, ge=1, description='characters per entry')
    vocabulary_max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=1, description="characters of a user's entries")

    @property
    def cookies_secure(self) -> bool:
        """Browsers then send the session cookie over https only; production is assumed to sit behind TLS."""
        return self.environment == 'production' if self.secure_cookies is None else self.secure_cookies

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(',') if origin.strip()]

    @property
    def max_chunks_per_recording(self) -> int:
        """The recording-length limit in chunks; twice the nominal count leaves room for chunks the browser split."""
        return 2 * self.max_recording_s * 1000 // self.chunk_timeslice_ms + 10

    def check_production_ready(self) -> None:
        """The secret signs every identity and link: a short chosen one is guessable anywhere, a missing one in
        production means each instance would generate its own."""
        if self.secret and len(self.secret) < 32:
            raise SettingsError(
                f'VR_SECRET is {len(self.secret)} characters; set a random value of at least 32 '
                '(e.g. openssl rand -base64 48)'
            )
        if self.environment == 'production' and not self.secret:
            raise SettingsError(
                'VR_ENVIRONMENT=production needs VR_SECRET set to a random value of at least 32 characters'
            )

    @field_validator('transcribe_model')
    @classmethod
    def _a_model_we_can_find(cls, value: str) -> str:
        model_spec(value)  # a name that is neither a bundled model nor a folder is refused, saying which names exist
        return value

    @field_validator('transcribe_language', mode='before')
    @classmethod
    def _a_language_whisper_knows(cls, value: object) -> object:
        if value in ('', None):
            return None  # VR_TRANSCRIBE_LANGUAGE= : detect it
        if value not in WHISPER_LANGUAGES:
            raise ValueError(f"{value!r} is not one of Whisper's language codes (en, de, es, …)")
        return value

    @model_validator(mode='after')
    def _vocabulary_fits_the_prompt(self) -> 'Settings':
        if not self.vocabulary_limits.always_fit():
            raise ValueError(
                f'VR_VOCABULARY_MAX_CHARS and VR_VOCABULARY_MAX_ENTRIES: {self.vocabulary_max_chars} characters in '
                f"{self.vocabulary_max_entries} entries could take more than the speech model's prompt holds "
                f'({PROMPT_BUDGET} tokens); lower one of them'
            )
        return self

    @property
    def vocabulary_limits(self) -> VocabularyLimits:
        return VocabularyLimits(
            max_entries=self.vocabulary_max_entries,
            max_entry_chars=self.vocabulary_max_entry_chars,
            max_chars=self.vocabulary_max_chars,
        )

    @model_validator(mode='after')
    def _s3_needs_a_bucket(self) -> 'Settings':
        if self.storage == 's3' and not self.s3_bucket:
            raise ValueError('VR_STORAGE=s3 needs VR_S3_BUCKET')
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f'sqlite:///{(self.data_dir / "voice-recorder.db").resolve()}'

    @property
    def local_storage_dir(self) -> Path:
        return self.data_dir / 'audio'

    def resolved_secret(self) -> str:
        """The configured secret, or one generated once and kept in the data dir so restarts keep sessions valid."""
        if self.secret:
            return self.secret
        path = self.data_dir / 'secret.key'
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _create_once(path, secrets.token_urlsafe(48))
        return path.read_text().strip()


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _create_once(path: Path, text: str) -> None:
    """Write `text` to `path` unless another process got there first. Instances starting together on one data dir
    must end with one secret, never read a half-written file, and nobody may read it but its owner: it is written
    beside the name, readable by the owner only from the start, then linked to the name, which fails if taken."""
    temp = path.with_name(f'.{path.name}-{os.getpid()}-{threading.get_ident()}')
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def load_settings() -> Settings:
    """The settings from the environment and `.env`, as start-up needs them; a bad one raises `SettingsError`."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise SettingsError(describe_invalid(error)) from None
    settings.check_production_ready()
    return settings


def describe_invalid(error: ValidationError) -> str:
    """The first problem, named by its variable: `VR_PORT: Input should be a valid integer`."""
    problem = error.errors()[0]
    where = '_'.join(str(part) for part in problem['loc']).upper()
    return f'VR_{where}: {problem["msg"]}' if where else problem['msg']
