"""Page logic with NiceGUI's simulated user: onboarding, redirects, the records list and its actions."""

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction
from sqlmodel import select

from services.container import Services
from services.core.models import User as UserRow
from tests.conftest import record
from tests.support.app_server import ROOT

SERVER_WORK_RETRIES = 100  # should_see waits 0.1 s between tries: up to 10 s


async def onboard(user: User, name: str) -> str:
    await user.open('/onboard')
    user.find(marker='name-input').type(name)
    user.find(marker='onboard-submit').click()
    # The sign-up runs on the server's thread pool (a hash, a rate limit): on a machine busy with the whole suite
    # that takes longer than should_see's default three tries, so wait for it as for any condition.
    await user.should_see(marker='recovery-key', retries=SERVER_WORK_RETRIES)
    key = user.find(marker='recovery-key').elements.pop().text
    user.find(marker='recovery-continue').click()
    await user.should_see('Your recordings', retries=SERVER_WORK_RETRIES)
    return key


def user_id_named(services: Services, name: str) -> uuid.UUID:
    with services.database.session() as session:
        return session.exec(select(UserRow).where(UserRow.name == name)).one().id


async def test_pages_need_an_identity(user: User) -> None:
    for path in ('/records', '/recorder', '/'):
        await user.open(path)
        await user.should_see(marker='name-input')


async def test_onboarding_keeps_the_identity_and_skips_onboard_next_time(user: User) -> None:
    await onboard(user, '  Ada   Lovelace ')
    await user.should_see('Ada Lovelace')
    await user.should_see(marker='empty-state')
    await user.open('/onboard')
    await user.should_see('Your recordings')
    await user.open('/recorder')
    await user.should_see(marker='record-button')


async def test_onboarding_requires_a_name(user: User) -> None:
    await user.open('/onboard')
    user.find(marker='onboard-submit').click()
    await user.should_see('Please enter a name')
    user.find(marker='name-input').type('x' * 60)
    user.find(marker='onboard-submit').click()
    await user.should_see('At most 50 characters')
    await user.should_not_see('Your recordings')


async def test_records_show_newest_first_with_player_and_details(
    user: User, page_services: Services, webm_5s: bytes
) -> None:
    await onboard(user, 'Lin')
    owner = user_id_named(page_services, 'Lin')
    record(page_services, owner, webm_5s, title='First take')
    record(page_services, owner, webm_5s, title='<script>alert(1)</script>')
    await user.open('/records')
    await user.should_see(marker='recording-item')
    in_page_order = user.current_layout.descendants()
    titles = [element.text for element in in_page_order if 'recording-title' in element._markers]
    assert titles == ['<script>alert(1)</script>', 'First take']
    await user.should_see('0:05')
    players = user.find(marker='audio-player').elements
    assert len(players) == 2
    assert all('/audio?expires=' in player.props['src'] for player in players)
    assert len(user.find(marker='download-link').elements) == 2


async def test_rename_in_place(user: User, page_services: Services, webm_5s: bytes) -> None:
    await onboard(user, 'Sam')
    owner = user_id_named(page_services, 'Sam')
    ready = record(page_services, owner, webm_5s, title='Old name')
    await user.open('/records')
    await user.should_see(marker='rename-button')
    user.find(marker='rename-button').click()
    await user.should_see(marker='rename-input')
    user.find(marker='rename-input').clear().type('New name')
    user.find(marker='rename-save').click()
    await user.should_see(marker='recording-title', content='New name')
    assert page_services.recordings.get(user_id=owner, recording_id=ready.id).title == 'New name'
    user.find(marker='rename-button').click()
    await user.should_see(marker='rename-input')
    user.find(marker='rename-input').clear()
    user.find(marker='rename-save').click()
    await user.should_see('The title cannot be empty')
    assert page_services.recordings.get(user_id=owner, recording_id=ready.id).title == 'New name'


async def test_delete_asks_then_can_be_undone_then_happens(
    user: User, page_services: Services, webm_5s: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pages.records

    monkeypatch.setattr(pages.records, 'UNDO_SECONDS', 1.0)
    await onboard(user, 'Dee')
    owner = user_id_named(page_services, 'Dee')
    ready = record(page_services, owner, webm_5s, title='Keep me maybe')
    await user.open('/records')
    await user.should_see(marker='delete-button')
    user.find(marker='delete-button').click()
    await user.should_see('Delete “Keep me maybe”?')
    await user.should_see('1 recording · 0:05 in all')
    user.find(marker='confirm-delete').click()
    await user.should_see(marker='undo-delete')
    await user.should_see('0 recordings · 0:00 in all')  # the totals leave out what the undo bar offers back
    await user.should_not_see(marker='empty-state')  # and "No recordings yet" waits until it is really gone
    user.find(marker='undo-delete').click()
    await user.should_see('1 recording · 0:05 in all')
    await user.should_see(marker='recording-title', content='Keep me maybe')
    await asyncio.sleep(1.5)
    assert page_services.recordings.list(user_id=owner)[0].id == ready.id  # undone: still there

    user.find(marker='delete-button').click()
    await user.should_see(marker='confirm-delete')
    user.find(marker='confirm-delete').click()
    for _ in range(40):
        if not page_services.recordings.list(user_id=owner):
            break
        await asyncio.sleep(0.1)
    assert page_services.recordings.list(user_id=owner) == []
    await user.should_see(marker='empty-state')
    assert not (page_services.settings.local_storage_dir / 'recordings' / str(ready.id)).exists()


async def test_search_totals_and_more_on_demand(user: User, page_services: Services, webm_5s: bytes) -> None:
    import pages.records

    await onboard(user, 'Max')
    owner = user_id_named(page_services, 'Max')
    record(page_services, owner, webm_5s, title='Team meeting notes')
    record(page_services, owner, webm_5s, title='Idea for a song')
    for i in range(pages.records.PAGE_SIZE):
        page_services.recordings.create(user_id=owner, mime_type='audio/webm', title=f'Draft {i:02}')
    await user.open('/records')
    await user.should_see(f'{pages.records.PAGE_SIZE + 2} recordings · 0:10 in all')
    assert len(user.find(marker='recording-item').elements) == pages.records.PAGE_SIZE
    user.find(marker='show-more').click()
    await user.should_see('Team meeting notes')
    assert len(user.find(marker='recording-item').elements) == pages.records.PAGE_SIZE + 2
    user.find(marker='search-input').type('SONG')
    await user.should_see('1 recording · 0:05 in all')
    assert [e.text for e in user.find(marker='recording-title').elements] == ['Idea for a song']
    user.find(marker='search-input').clear().type('100%_')
    await user.should_see('No recording has “100%_” in its title or in what was said.')
    user.find(marker='clear-search').click()  # the no-match state offers the way back
    await user.should_see(f'{pages.records.PAGE_SIZE + 2} recordings · 0:10 in all')


async def test_unfinished_recordings_show_their_state(user: User, page_services: Services) -> None:
    await onboard(user, 'Kim')
    owner = user_id_named(page_services, 'Kim')
    page_services.recordings.create(user_id=owner, mime_type='audio/webm', title='Still going')
    await user.open('/records')
    await user.should_see('Still going')
    await user.should_see('waiting for its last audio')
    await user.should_not_see(marker='audio-player')


async def test_recorder_page_offers_the_controls(user: User) -> None:
    await onboard(user, 'Noa')
    await user.open('/recorder')
    for marker in (
        'record-button',
        'pause-button',
        'resume-button',
        'stop-button',
        'recording-timer',
        'upload-status',
        'recorder',
    ):
        await user.should_see(marker=marker)


async def test_sign_out_and_back_in_with_the_recovery_key(user: User) -> None:
    key = await onboard(user, 'Rosa')
    user.find(marker='sign-out').click()
    await user.should_see(marker='name-input')
    await user.open('/records')
    await user.should_see(marker='name-input')  # signed out: the identity is gone
    user.find(marker='recovery-key-input').type('not-the-key')
    user.find(marker='recovery-submit').click()
    await user.should_see('does not match any account')
    user.find(marker='recovery-key-input').clear().type(key)
    user.find(marker='recovery-submit').click()
    await user.should_see('Your recordings')
    await user.should_see('Rosa')


def test_times_show_without_the_operating_systems_time_zone_database() -> None:
    """Minimal images have no /usr/share/zoneinfo; the `tzdata` package must stand in, or /records fails."""
    script = (
        'from datetime import UTC, datetime; from pages.formatting import format_local_time; '
        "print(format_local_time(datetime(2026, 1, 2, 3, 4, tzinfo=UTC), 'Europe/Berlin'), "
        'format_local_time(datetime(2026, 1, 2, 3, 4, tzinfo=UTC), None))'
    )
    environment = {**os.environ, 'PYTHONTZPATH': ''}  # no OS time-zone folders at all
    result = subprocess.run(
        [sys.executable, '-c', script], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['2026-01-02', '04:04', '2026-01-02', '03:04']


def nth(user: User, marker: str, index: int) -> UserInteraction:
    """The `index`th element with the marker in page order (find() gives a set), to act on one row."""
    elements = [e for e in user.current_layout.descendants() if marker in e._markers]
    return UserInteraction(user, {elements[index]}, None)


async def test_a_star_and_tags_on_a_row_filter_the_list(user: User, page_services: Services, webm_5s: bytes) -> None:
    await onboard(user, 'Fay')
    owner = user_id_named(page_services, 'Fay')
    record(page_services, owner, webm_5s, title='Standup')
    liked = record(page_services, owner, webm_5s, title='Song idea')
    await user.open('/records')
    await user.should_see('2 recordings · 0:10 in all')
    stars = user.find(marker='favourite-toggle').elements
    assert len(stars) == 2 and all(star.props['aria-pressed'] == 'false' for star in stars)
    nth(user, 'favourite-toggle', 1).click()  # the older one, "Standup"
    for _ in range(40):
        if page_services.recordings.list(user_id=owner, favourite=True):
            break
        await asyncio.sleep(0.05)
    assert nth(user, 'favourite-toggle', 1).elements.pop().props['aria-pressed'] == 'true'
    assert page_services.recordings.get(user_id=owner, recording_id=liked.id).favourite is False
    starred = [r.title for r in page_services.recordings.list(user_id=owner, favourite=True)]
    assert starred == ['Standup']

    nth(user, 'tag-input', 1).type('Work').trigger('keydown.enter')
    await user.should_see(marker='filter-tag', content='Work')
    assert page_services.recordings.list(user_id=owner, tag='work')[0].tags == ['Work']

    user.find(marker='filter-favourite').click()
    await user.should_see('1 recording · 0:05 in all')
    assert [e.text for e in user.find(marker='recording-title').elements] == ['Standup']
    user.find(marker='search-input').type('nothing like this')
    await user.should_see('Showing only recordings starred.')
    user.find(marker='show-all').click()
    await user.should_see('2 recordings · 0:10 in all')
    user.find(marker='filter-tag').click()
    await user.should_see('1 recording · 0:05 in all')
    user.find(marker='tag-chip').elements.pop().set_value(False)  # what its remove icon does
    await user.should_see('2 recordings · 0:10 in all')  # no recording carries the tag now: the filter went too
    assert page_services.recordings.list(user_id=owner, tag='work') == []


async def test_a_title_past_the_limit_is_refused_with_its_count(
    user: User, page_services: Services, webm_5s: bytes
) -> None:
    await onboard(user, 'Tia')
    owner = user_id_named(page_services, 'Tia')
    ready = record(page_services, owner, webm_5s, title='Short')
    await user.open('/records')
    await user.should_see(marker='rename-button')
    user.find(marker='rename-button').click()
    await user.should_see('5 / 200')
    user.find(marker='rename-input').clear().type('y' * 201)
    await user.should_see('201 / 200: too long, shorten it by 1')
    user.find(marker='rename-save').click()
    await user.should_see('The title is too long: at most 200 characters.')
    assert page_services.recordings.get(user_id=owner, recording_id=ready.id).title == 'Short'
    assert user.find(marker='rename-input').elements.pop().value == 'y' * 201, 'kept for shortening, not cut'
