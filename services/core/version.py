"""The app's version, kept in one place: the `version` in pyproject.toml's [project] table."""

import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / 'pyproject.toml'
DISTRIBUTION = 'voice-recorder'


@cache
def app_version() -> str:
    """pyproject.toml beside the code first (a checkout, the image), so a bumped version shows without a reinstall;
    the installed package's metadata when the code runs without it."""
    try:
        return str(tomllib.loads(PYPROJECT.read_text())['project']['version'])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return 'unknown'
