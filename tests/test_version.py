"""The version lives only in pyproject.toml; the page footer and /api/healthz show that same number."""

import tomllib
from pathlib import Path

import httpx
import pytest
from nicegui.testing.user import User

from services.core import version
from tests.test_pages import onboard

PYPROJECT = Path(__file__).resolve().parents[1] / 'pyproject.toml'


def pyproject_version() -> str:
    return tomllib.loads(PYPROJECT.read_text())['project']['version']


def test_healthz_reports_the_pyproject_version(api: httpx.Client) -> None:
    assert api.get('/api/healthz').json()['version'] == pyproject_version()


async def test_every_page_shows_the_version_in_its_footer(user: User) -> None:
    footer = f'Voice Recorder {pyproject_version()}'
    await user.open('/onboard')
    await user.should_see(marker='app-version', content=footer)
    await onboard(user, 'Ada')
    await user.should_see(marker='app-version', content=footer)
    await user.open('/recorder')
    await user.should_see(marker='app-version', content=footer)


def test_installed_metadata_is_the_fallback_without_pyproject(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(version, 'PYPROJECT', tmp_path / 'missing.toml')
    version.app_version.cache_clear()
    try:
        assert version.app_version() == pyproject_version()  # the editable install's metadata
    finally:
        version.app_version.cache_clear()
