"""How numbers and dates read on the pages."""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def format_duration(ms: int | None) -> str:
    if ms is None:
        return '–'
    total = round(ms / 1000)
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
    try:
        zone = ZoneInfo(time_zone) if time_zone else ZoneInfo('UTC')
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo('UTC')
    return moment.astimezone(zone).strftime('%Y-%m-%d %H:%M')
