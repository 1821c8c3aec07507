"""How numbers and dates read on the pages."""

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from services.transcripts.languages import WHISPER_LANGUAGES


def format_duration(ms: int | None) -> str:
    """The app's one duration format, for the recorder's timer, a row and the player alike
    (`assets/recorder/duration.mjs` writes the same in the browser): m:ss, h:mm:ss past an hour, whole seconds cut,
    never rounded up, as a running clock shows them."""
    if ms is None:
        return '–'
    total = max(0, ms) // 1000
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f'{hours}:{minutes:02}:{seconds:02}' if hours else f'{minutes}:{seconds:02}'


def format_size(size: int | None) -> str:
    if size is None:
        return '–'
    for unit in ('bytes', 'KB', 'MB'):
        if size < 1000:
            return f'{size:.0f} {unit}' if unit == 'bytes' else f'{size:.1f} {unit}'
        size /= 1000  # type: ignore[assignment]
    return f'{size:.1f} GB'


def format_local_time(moment: datetime, time_zone: str | None) -> str:
    return moment.astimezone(ZoneInfo(valid_time_zone(time_zone))).strftime('%Y-%m-%d %H:%M')


def valid_time_zone(name: object) -> str:
    """The IANA zone a browser named, or UTC: it comes from the client, and ZoneInfo raises more than it documents
    for names that are not zones ("America" is a folder of them: IsADirectoryError)."""
    return name if isinstance(name, str) and name in known_time_zones() else 'UTC'


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())  # reads the zone folders: once


def language_choices(unset: str, current: str | None = None) -> dict[str, str]:
    """The languages Whisper knows, by name, for a select: '' (None) is labelled `unset`, `current` is marked."""
    named = sorted(WHISPER_LANGUAGES.items(), key=lambda item: item[1])
    return {'': unset} | {code: f'{name} (now)' if code == current else name for code, name in named}
