"""Numbers and names a client chooses never cause a server error (issue 21, finding 5): a byte range of thousands
of digits, a page offset past 64 bits, a time zone that is no zone. Each gets a 4xx (or, for a range, what RFC 9110
allows) and costs the log at most one line per period, never a traceback."""

import logging
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from nicegui.testing.user import User

from services.container import Services
from services.core.models import Recording, RecordingPublic
from tests.conftest import UserFactory, record
from tests.support.app_server import AppServer
from tests.test_pages import onboard, user_id_named

HUGE = '9' * 4400  # past the 4300 digits Python's int() will read
ONE_BACKEND = pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)


@pytest.fixture
def ready(services: Services, make_user: UserFactory, webm_5s: bytes) -> tuple[Recording, dict[str, str]]:
    owner, auth = make_user.with_auth('Owner')
    return record(services, owner.id, webm_5s), auth


def audio_url(services: Services, recording: Recording, route: str) -> str:
    if route == 'owner':
        return f'/api/recordings/{recording.id}/audio'
    share = services.shares.create(user_id=recording.user_id, recording_id=recording.id, lifetime=timedelta(hours=1))
    return f'/api/shares/{share.id}/audio'


@ONE_BACKEND
@pytest.mark.parametrize('route', ['owner', 'share'])
def test_a_byte_range_of_thousands_of_digits_is_answered_as_rfc_9110_says(
    api: httpx.Client,
    services: Services,
    ready: tuple[Recording, dict[str, str]],
    route: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    recording, auth = ready
    url = audio_url(services, recording, route)
    audio = api.get(url, headers=auth).content
    cases = [
        (f'bytes={HUGE}-', 416, b''),  # starts past the end
        (f'bytes={HUGE}-{HUGE}', 416, b''),
        (f'bytes=0-{HUGE}', 206, audio),  # ends past the end: up to the end
        (f'bytes=-{HUGE}', 206, audio),  # a suffix longer than the audio: all of it
        (f'bytes={"0" * 4400}7-', 206, audio[7:]),  # leading zeros are allowed
    ]
    for byte_range, status, body in cases:
        response = api.get(url, headers={**auth, 'Range': byte_range})
        assert response.status_code == status, (byte_range[:20], response.text)
        if status == 416:
            assert response.headers['Content-Range'] == f'bytes */{len(audio)}'
        else:
            assert response.content == body
    ignored = api.get(url, headers={**auth, 'Range': f'bytes={HUGE}-', 'If-Range': '"a validator we never sent"'})
    assert (ignored.status_code, ignored.content) == (200, audio)
    for _ in range(50):
        assert api.get(url, headers={**auth, 'Range': f'bytes={HUGE}-'}).status_code == 416
    assert not [r for r in caplog.records if r.exc_info], 'a traceback was logged'
    logged = [r.getMessage() for r in caplog.records if r.name == 'api.errors']
    assert len(logged) == 1 and '→ 416' in logged[0], logged  # 52 refusals, one line


@pytest.mark.parametrize(
    ('database_kind', 'storage_kind'), [('sqlite', 'local'), ('postgresql', 'local')], indirect=True
)
def test_a_page_offset_past_64_bits_is_refused_with_422(
    api: httpx.Client, make_user: UserFactory, caplog: pytest.LogCaptureFixture
) -> None:
    user, auth = make_user.with_auth('Pager')
    for query in ('', '&q=bread'):
        for offset in (2**63, 10**30, 1_000_001):
            response = api.get(f'/api/records/{user.id}?offset={offset}{query}', headers=auth)
            assert response.status_code == 422 and 'offset' in response.json()['error'], response.text
        assert api.get(f'/api/records/{user.id}?offset=1000000{query}', headers=auth).json() == []
    assert not [r for r in caplog.records if r.exc_info], 'a traceback was logged'


async def test_a_time_zone_that_is_no_zone_shows_times_in_utc(
    user: User, page_services: Services, webm_5s: bytes
) -> None:
    await onboard(user, 'Zoe')
    made = record(page_services, user_id_named(page_services, 'Zoe'), webm_5s, title='Zoned')
    utc = made.created_at.strftime('%Y-%m-%d %H:%M')
    for time_zone in ('America', 'America/', '../../etc/passwd', 'zone.tab', 'UTC\x00', ['not', 'text'], 7):
        await user.open('/recorder')
        user.find(marker='recorder').trigger('started', {'recording_id': str(made.id), 'time_zone': time_zone})
        await user.open('/records')
        await user.should_see('Zoned')
        await user.should_see(utc)
    await user.open('/recorder')
    user.find(marker='recorder').trigger('started', {'time_zone': 'Asia/Tokyo'})  # a real zone is still honoured
    await user.open('/records')
    await user.should_see((made.created_at + timedelta(hours=9)).strftime('%Y-%m-%d %H:%M'))


def test_unknown_urls_and_refusals_cost_the_real_app_one_log_line_per_period(tmp_path: Path) -> None:
    """The production app's log, not a test client's: 404s for made-up URLs (NiceGUI logs each with its whole
    URL) and the API's refusals are one line per period each, and none has a traceback."""
    server = AppServer(tmp_path / 'data').start()
    try:
        before = len(server.log_path.read_text().splitlines())
        for attempt in range(30):
            assert httpx.get(f'{server.url}/made-up-{attempt}?pad={"x" * 2000}').status_code == 404
            share_audio = f'{server.url}/api/shares/{uuid.uuid4()}/audio'
            assert httpx.get(share_audio, headers={'Range': f'bytes={HUGE}-'}).status_code == 404
        lines = server.log_path.read_text().splitlines()[before:]
    finally:
        server.stop()
    server.assert_clean_log()
    assert len([line for line in lines if 'not found' in line]) <= 2, lines  # one of each kind
    assert all(len(line) < 600 for line in lines), 'a client-chosen URL was logged whole'


async def test_recorder_events_a_client_makes_up_are_dropped(
    user: User, page_services: Services, webm_5s: bytes
) -> None:
    """The page's websocket carries any event a client sends: one the recorder could not have sent changes nothing
    and logs no error (the fixture fails the test on any ERROR line); a real one still shows."""
    await onboard(user, 'Eve')
    made = record(page_services, user_id_named(page_services, 'Eve'), webm_5s, title='Real one')
    await user.open('/recorder')
    recorder = user.find(marker='recorder')
    for args in ({}, {'title': 1}, ['x'], 'text', {'id': 'not-an-id', 'title': 'Fake', 'duration_ms': 'long'}):
        recorder.trigger('saved', args).trigger('recovered', args).trigger('started', args)
    await user.should_not_see(marker='saved-card')
    recorder.trigger('saved', RecordingPublic.model_validate(made).model_dump(mode='json'))
    await user.should_see('Saved “Real one” (0:05)')
