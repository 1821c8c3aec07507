"""All settings in one typed object, read from `VR_*` environment variables and an optional `.env` file."""

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix='VR_', env_file='.env', extra='ignore')

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
    sweep_interval_s: float = Field(default=60, gt=0)
    environment: Literal['development', 'production'] = 'development'
    cors_origins: str = Field(default='', description='comma-separated origins allowed to call the API')
    max_recording_s: int = Field(default=4 * 3600, gt=0)
    max_recordings_per_user: int = Field(default=1000, gt=0)
    api_requests_per_minute: int = Field(default=1200, gt=0, description='per user, per app instance')

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(',') if origin.strip()]

    @property
    def max_chunks_per_recording(self) -> int:
        """The recording-length limit in chunks; twice the nominal count leaves room for chunks the browser split."""
        return 2 * self.max_recording_s * 1000 // self.chunk_timeslice_ms + 10

    def check_production_ready(self) -> None:
        """Production must not run on a secret nobody chose: it signs every identity and link."""
        if self.environment == 'production' and (not self.secret or len(self.secret) < 32):
            raise ValueError(
                'VR_ENVIRONMENT=production needs VR_SECRET set to a random value of at least 32 characters'
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
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
