"""The Docker files cannot be built here (no engine), so what can be checked by a program is checked here."""

import re

import yaml

from services.config import Settings

from .app_server import ROOT


def compose_app_environment() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / 'compose.yaml').read_text())
    return {name: str(value) for name, value in compose['services']['app']['environment'].items()}


def with_defaults(value: str) -> str:
    """What compose substitutes for `${NAME:-default}` when NAME is unset (and a stand-in for required ones)."""
    value = re.sub(r'\$\{[A-Z_]+:-([^}]*)\}', r'\1', value)
    return re.sub(r'\$\{[A-Z_]+:\?[^}]*\}', 'x' * 32, value)


def test_compose_configures_the_app_with_real_settings_only() -> None:
    environment = {name: with_defaults(value) for name, value in compose_app_environment().items()}
    unknown = {name for name in environment if name.startswith('VR_')} - {
        f'VR_{field.upper()}' for field in Settings.model_fields
    }
    assert unknown == set(), f'compose.yaml sets settings the app does not have: {unknown}'
    settings = Settings(
        _env_file=None, **{name[3:].lower(): value for name, value in environment.items() if name.startswith('VR_')}
    )
    assert (settings.storage, settings.s3_path_style) == ('s3', True)
    assert settings.resolved_database_url.startswith('postgresql+psycopg://')
    assert {'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'} <= environment.keys()


def test_compose_creates_the_bucket_the_app_uses() -> None:
    compose = yaml.safe_load((ROOT / 'compose.yaml').read_text())
    bucket = compose_app_environment()['VR_S3_BUCKET']
    assert f'mc mb --ignore-existing store/{bucket}' in ' '.join(compose['services']['bucket']['command'])
    assert compose['services']['app']['depends_on']['bucket'] == {'condition': 'service_completed_successfully'}
    assert set(compose['volumes']) == {'app-data', 'postgres-data', 'minio-data'}


def test_the_image_copies_every_folder_the_app_runs_from() -> None:
    dockerfile = (ROOT / 'Dockerfile').read_text()
    copied = set(re.findall(r'^COPY (\S+) ', dockerfile, flags=re.MULTILINE))
    assert {'pyproject.toml', 'main.py', 'pages', 'services', 'assets', 'migrations'} <= copied
    assert dockerfile.index('COPY pyproject.toml') < dockerfile.index('pip install') < dockerfile.index('COPY main.py')
    assert re.search(r'^USER app$', dockerfile, flags=re.MULTILINE)
    assert 'HEALTHCHECK' in dockerfile and '/api/healthz' in dockerfile
