"""The list's features below the page: favourites and tags (filtering the list, the search and the totals), titles made
from the transcript for recordings the user did not name, download names after title and day, and a search whose
partial words find whole ones (also past a stem: "connecti") with passages that mark their cuts once, and the
migration's reading of existing titles. On SQLite and PostgreSQL where the SQL differs.

No model runs: transcripts are stored through the queue as a worker stores them.
"""

import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlmodel import col, select

from services.container import Services
from services.core.database import Database
from services.core.errors import InvalidInput, NotFound
from services.core.models import Recording, UTCDateTime
from services.core.schema import alembic_config, upgrade
from services.recordings.download_names import content_disposition, download_name, transcript_download_name
from services.recordings.tags import TagLimits, clean_tags
from services.recordings.titles import auto_title
from services.transcripts.engine import Segment, Word
from services.transcripts.shapes import encode
from tests.conftest import UserFactory

LOCAL = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)  # storage plays no part here
SQLITE_ONLY = pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)
LONG_SPEECH = (
    'well good morning everyone this is the weekly planning call and before we start I want to say a few words '
    'about the office because a lot has happened there since the last time we all met in one room together and '
    'I want to thank the plumber who finally fixed the heating so we can all take our coats off now let us look at '
    'the numbers for the quarter and then decide who takes over the customer calls next week while Priya is away '
    'on holiday in the mountains with her family for two whole weeks and we will meet again when she is back'
)


def transcribe(services: Services, recording_id: uuid.UUID, words: str) -> None:
    """The recording's transcript stored as a worker stores it: queued, claimed, completed."""
    queue = services.transcripts.queue
    assert queue is not None and queue.enqueue_in(recording_id, 'en')
    job = queue.claim()
    assert job is not None and job.recording_id == recording_id
    spoken = tuple(Word(i * 500, i * 500 + 400, word) for i, word in enumerate(words.split()))
    text_, segments = encode([Segment(0, spoken[-1].end_ms, spoken)], spoken[-1].end_ms)
    assert queue.complete(job, text=text_, segments=segments)


def made(services: Services, user_id: uuid.UUID, title: str | None = None) -> Recording:
    return services.recordings.create(user_id=user_id, mime_type='audio/webm', title=title)


def ids(recordings: list[Recording]) -> list[uuid.UUID]:
    return [r.id for r in recordings]


@LOCAL
def test_favourites_and_tags_filter_the_list_its_totals_and_the_search(
    services: Services, make_user: UserFactory
) -> None:
    owner, stranger = make_user('Owner').id, make_user('Stranger').id
    memo, call, walk = (made(services, owner, title) for title in ('Budget memo', 'Budget call', 'Evening walk'))
    transcribe(services, call.id, 'we talked with the plumber about the budget')
    recordings = services.recordings

    starred = recordings.set_favourite(user_id=owner, recording_id=call.id, favourite=True)
    assert starred.favourite and starred.title == 'Budget call' and not starred.tags
    tagged = recordings.set_tags(
        user_id=owner, recording_id=call.id, tags=[' Work ', 'über  uns', 'WORK', '', 'Über uns']
    )
    assert tagged.tags == ['Work', 'über uns'] and tagged.favourite, 'trimmed, repeats in any case dropped'
    recordings.update(user_id=owner, recording_id=memo.id, tags=['work'], favourite=False)
    recordings.update(user_id=owner, recording_id=walk.id, tags=['Home'], favourite=True)
    made(services, stranger, 'Budget of a stranger')
    recordings.set_tags(user_id=stranger, recording_id=made(services, stranger).id, tags=['Work', 'Secret'])

    assert ids(recordings.list(user_id=owner, favourite=True)) == [walk.id, call.id]
    assert ids(recordings.list(user_id=owner, tag='WORK')) == [call.id, memo.id], 'a tag in any case'
    assert ids(recordings.list(user_id=owner, tag='ÜBER UNS')) == [call.id], 'case folded beyond ASCII'
    assert ids(recordings.list(user_id=owner, favourite=True, tag='work')) == [call.id]
    assert recordings.list(user_id=owner, tag='Secret') == [], "another user's tag finds nothing of mine"
    assert recordings.summary(user_id=owner, tag='work') == (2, 0)
    assert recordings.summary(user_id=owner, favourite=True, search='walk') == (1, 0)
    assert [(t.tag, t.count) for t in recordings.tags(user_id=owner)] == [('Home', 1), ('über uns', 1), ('Work', 2)]

    def searched(query: str, favourite: bool | None = None, tag: str | None = None) -> list[uuid.UUID]:
        hits = services.transcripts.search(user_id=owner, query=query, favourite=favourite, tag=tag)
        return [hit.recording.id for hit in hits]

    assert set(searched('budget')) == {memo.id, call.id}
    assert searched('budget', favourite=True) == [call.id], 'the transcript and title search keeps to the star'
    assert searched('plumb', tag='work') == [call.id], 'a partial word, in the words said, with a tag'
    assert searched('budget', tag='home') == [], 'nothing found is an empty list'
    assert searched('udge', tag='work') == [call.id, memo.id], 'titles that merely contain it, filtered too'

    with pytest.raises(NotFound):
        recordings.set_tags(user_id=stranger, recording_id=call.id, tags=['mine'])
    with pytest.raises(NotFound):
        recordings.set_favourite(user_id=stranger, recording_id=call.id, favourite=False)
    recordings.delete(user_id=owner, recording_id=call.id)
    assert [(t.tag.casefold(), t.count) for t in recordings.tags(user_id=owner)] == [('home', 1), ('work', 1)]
    assert recordings.set_tags(user_id=owner, recording_id=memo.id, tags=[]).tags == []
    assert recordings.list(user_id=owner, tag='work') == []


@LOCAL
@SQLITE_ONLY
def test_tags_past_their_limits_are_refused_in_plain_words_and_change_nothing(
    services: Services, make_user: UserFactory
) -> None:
    owner = make_user().id
    recording = made(services, owner, 'Tagged')
    services.recordings.update(user_id=owner, recording_id=recording.id, tags=['keep'], favourite=True)
    refusals = {
        'a recording can have at most 10 tags (11 were given)': [f'tag {i}' for i in range(11)],
        'the tag “xxxxxxxxxxxxxxxxxxxx…” is too long: at most 30 characters': ['x' * 31],
        'a tag cannot hold a control character': ['line\nbreak'],
    }
    for message, tags in refusals.items():
        with pytest.raises(InvalidInput, match=re.escape(message)):
            services.recordings.update(user_id=owner, recording_id=recording.id, tags=tags, favourite=False)
    with pytest.raises(InvalidInput, match='the title is too long: 201 characters, at most 200'):
        services.recordings.update(user_id=owner, recording_id=recording.id, title='y' * 201, favourite=False)
    kept = services.recordings.get(user_id=owner, recording_id=recording.id)
    assert (kept.tags, kept.favourite, kept.title) == (['keep'], True, 'Tagged'), 'one refusal refuses all'
    assert clean_tags([f't{i}' for i in range(10)] + ['T1'], TagLimits()) == [f't{i}' for i in range(10)]
    assert clean_tags(['  ', 'a' * 30], TagLimits(max_tags=1, max_chars=30)) == ['a' * 30]


@LOCAL
def test_a_recording_the_user_did_not_name_is_titled_by_its_words_and_never_again_once_named(
    services: Services, make_user: UserFactory
) -> None:
    owner = make_user().id
    unnamed, given = made(services, owner), made(services, owner, 'Standup notes')
    assert unnamed.title.startswith('Recording ') and not unnamed.named and given.named
    transcribe(services, unnamed.id, LONG_SPEECH)
    transcribe(services, given.id, LONG_SPEECH)
    titled = services.recordings.get(user_id=owner, recording_id=unnamed.id)
    assert titled.title == 'Well good morning everyone this is the weekly planning call'
    assert not titled.named, 'still the app’s title: a new transcript may replace it'
    assert services.recordings.get(user_id=owner, recording_id=given.id).title == 'Standup notes'
    recorded = services.recordings.create(  # what the recorder sends: its own default, in the user's local time
        user_id=owner, mime_type='audio/webm', title='Recording 2026-12-06 10:07', title_is_default=True
    )
    assert (recorded.title, recorded.named) == ('Recording 2026-12-06 10:07', False)
    transcribe(services, recorded.id, LONG_SPEECH)
    assert services.recordings.get(user_id=owner, recording_id=recorded.id).title.startswith('Well good morning')

    transcribe(services, unnamed.id, 'Pricing. Then lunch!')
    assert services.recordings.get(user_id=owner, recording_id=unnamed.id).title == 'Pricing. Then lunch'
    services.recordings.rename(user_id=owner, recording_id=unnamed.id, title='Pricing')
    transcribe(services, unnamed.id, 'something else entirely')
    renamed = services.recordings.get(user_id=owner, recording_id=unnamed.id)
    assert (renamed.title, renamed.named) == ('Pricing', True), 'a title the user gave is never overwritten'


@pytest.mark.parametrize(
    ('words', 'title'),
    [
        ('', None),
        ('  …  ', None),
        ('"hello, world" (she said).', 'Hello, world she said'),
        ('so, uh... we start', 'So, uh... we start'),
        ('Zanzibar' * 10, ('Zanzibar' * 10)[:60]),
        ('one two three', 'One two three'),
        ('a ' * 40, 'A' + ' a' * 29),
    ],
)
def test_auto_titles_are_cut_at_a_word_without_punctuation_hanging(words: str, title: str | None) -> None:
    made = auto_title(words)
    assert made == title
    assert made is None or len(made) <= 60


@pytest.mark.parametrize(
    ('title', 'name'),
    [
        ('Weekly notes', 'Weekly notes – 2026-12-06.webm'),
        ('Recording 2026-12-06 10:07 UTC', 'Recording 2026-12-06 10-07 UTC.webm'),
        ('A/B: test? <draft> "v2" | final*', 'A-B- test draft v2 - final – 2026-12-06.webm'),
        ('  ..dots.. ', 'dots – 2026-12-06.webm'),
        ('CON', '_CON – 2026-12-06.webm'),
        ('???', 'Recording – 2026-12-06.webm'),
        ('Ünïcødé 🎙️ Grüße', 'Ünïcødé 🎙️ Grüße – 2026-12-06.webm'),
    ],
)
def test_download_names_carry_the_title_and_day_and_are_safe_file_names(title: str, name: str) -> None:
    recording = Recording(
        user_id=uuid.uuid4(), title=title, mime_type='audio/webm', created_at=datetime(2026, 12, 6, 10, 7, tzinfo=UTC)
    )
    assert download_name(recording) == name
    assert download_name(recording, mp3=True) == name.removesuffix('.webm') + '.mp3'
    assert transcript_download_name(recording, 'srt') == name.removesuffix('.webm') + '.srt'
    long = Recording(user_id=uuid.uuid4(), title='é' * 200, mime_type='audio/mp4', created_at=recording.created_at)
    assert len(download_name(long).encode()) < 255


def test_content_disposition_names_the_file_for_every_client() -> None:
    assert content_disposition('Notes – 2026-12-06.webm') == (
        'attachment; filename="Notes - 2026-12-06.webm"; filename*=UTF-8\'\'Notes%20%E2%80%93%202026-12-06.webm'
    )
    assert content_disposition('Café.mp3') == 'attachment; filename="Cafe.mp3"; filename*=UTF-8\'\'Caf%C3%A9.mp3'
    assert content_disposition('plain.srt') == 'attachment; filename="plain.srt"'
    assert content_disposition('日本.txt') == 'attachment; filename="__.txt"; filename*=UTF-8\'\'%E6%97%A5%E6%9C%AC.txt'


@LOCAL
def test_search_passages_mark_their_cuts_once_and_partial_words_find_whole_ones(
    services: Services, make_user: UserFactory
) -> None:
    owner = make_user().id
    planning, short = made(services, owner, 'Planning'), made(services, owner, 'Short')
    transcribe(services, planning.id, LONG_SPEECH)
    transcribe(services, short.id, 'the heater is broken')

    [middle] = services.transcripts.search(user_id=owner, query='plumb')
    assert middle.recording.id == planning.id
    assert [p.text for p in middle.snippet if p.match] == ['plumber']
    assert middle.snippet[0].text == '… ' and middle.snippet[-1].text == ' …', 'cut on both sides'
    [start] = services.transcripts.search(user_id=owner, query='wel')
    assert start.snippet[0].text != '… ' and start.snippet[-1].text == ' …', 'the passage starts where the words do'
    [whole] = services.transcripts.search(user_id=owner, query='heat brok')
    assert whole.recording.id == short.id
    assert all('…' not in p.text for p in whole.snippet), f'nothing was cut: {whole.snippet}'
    for hit in (middle, start, whole):
        shown = ''.join(p.text for p in hit.snippet)
        assert '… …' not in shown and shown.count('…') <= 2
    assert services.transcripts.search(user_id=owner, query='zebra') == []

    stemmed = made(services, owner, 'Network')
    transcribe(services, stemmed.id, 'the connection dropped while the kids were running around in happiness')
    for typed, word in [('connecti', 'connection'), ('runnin', 'running'), ('happin', 'happiness')]:
        [hit] = services.transcripts.search(user_id=owner, query=typed)
        assert hit.recording.id == stemmed.id, f'{typed!r}: the start of a word past its stem finds it'
        assert [p.text for p in hit.snippet if p.match] == [word] and hit.match_ms is not None
    [both] = services.transcripts.search(user_id=owner, query='connecti runnin')
    assert [p.text for p in both.snippet if p.match] == ['connection', 'running']
    assert [h.recording.id for h in services.transcripts.search(user_id=owner, query='connected')] == [stemmed.id]


def test_existing_recordings_count_as_named_unless_their_title_is_the_default(database_url: str) -> None:
    titles = {
        'Recording 2026-12-06 10:07 UTC': False,
        'Recording 2026-12-06 10:07': True,  # not the app's pattern: someone typed it
        'Recording 2026-12-06 10:07 UTC, part two': True,
        'Weekly notes': True,
    }
    database = Database(database_url)
    user_id, now = uuid.uuid4(), datetime.now(UTC)
    try:
        with database.engine.begin() as connection:
            command.upgrade(alembic_config(connection), '0012')
            columns = (sa.column('id', sa.Uuid()), sa.column('name'), sa.column('token_hash'))
            user = sa.table('user', *columns, sa.column('created_at', UTCDateTime()))
            connection.execute(sa.insert(user).values(id=user_id, name='Old', token_hash='2' * 64, created_at=now))
            insert = text(
                'INSERT INTO recording (id, user_id, title, mime_type, status, created_at, updated_at) '
                "VALUES (:id, :user_id, :title, 'audio/webm', 'READY', :now, :now)"
            ).bindparams(
                sa.bindparam('id', type_=sa.Uuid()),
                sa.bindparam('user_id', type_=sa.Uuid()),
                sa.bindparam('now', type_=UTCDateTime()),
            )
            for title in titles:
                connection.execute(insert, {'id': uuid.uuid4(), 'user_id': user_id, 'title': title, 'now': now})
        upgrade(database.engine)
        with database.session() as session:
            stored = session.exec(select(Recording).where(col(Recording.user_id) == user_id)).all()
        assert {r.title: r.named for r in stored} == titles
        assert {(r.favourite, r.tags) for r in stored} == {(False, None)}
    finally:
        database.dispose()


@LOCAL
def test_the_api_stars_tags_renames_and_filters(api: httpx.Client, services: Services, make_user: UserFactory) -> None:
    owner, auth = make_user.with_auth('Owner')
    _, stranger = make_user.with_auth('Stranger')
    first = api.post('/api/recordings', json={'mime_type': 'audio/webm', 'title': 'Call with Priya'}, headers=auth)
    second = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth)
    first_id, second_id = first.json()['id'], second.json()['id']
    assert (first.json()['favourite'], first.json()['tags'], first.json()['named']) == (False, [], True)
    assert second.json()['named'] is False

    changed = api.patch(
        f'/api/recordings/{first_id}', json={'favourite': True, 'tags': ['Work', ' work ', 'Clients']}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()['favourite'], changed.json()['tags'], changed.json()['title']) == (
        True,
        ['Work', 'Clients'],
        'Call with Priya',
    )
    renamed = api.patch(f'/api/recordings/{second_id}', json={'title': 'Ideas', 'tags': ['work']}, headers=auth)
    assert (renamed.json()['title'], renamed.json()['named'], renamed.json()['favourite']) == ('Ideas', True, False)

    too_many = api.patch(f'/api/recordings/{first_id}', json={'tags': [str(i) for i in range(11)]}, headers=auth)
    assert too_many.status_code == 422
    assert too_many.json()['error'] == 'a recording can have at most 10 tags (11 were given)'
    too_long = api.patch(f'/api/recordings/{first_id}', json={'title': 'x' * 201, 'favourite': False}, headers=auth)
    assert too_long.status_code == 422 and 'at most 200' in too_long.json()['error']
    assert api.get(f'/api/recordings/{first_id}', headers=auth).json()['favourite'] is True, 'nothing changed'
    assert api.patch(f'/api/recordings/{first_id}', json={'favourite': False}, headers=stranger).status_code == 404
    assert api.patch(f'/api/recordings/{first_id}', json={'colour': 'red'}, headers=auth).status_code == 422

    def listed(path: str, **params: str) -> list[str]:
        response = api.get(path, params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [r['id'] for r in response.json()]

    mine = f'/api/records/{owner.id}'
    assert listed(mine, favourite='true') == [first_id] == listed('/api/recordings', favourite='true')
    assert listed('/api/recordings', tag='WORK') == [second_id, first_id]
    assert listed('/api/recordings', tag='clients', q='priya') == [first_id]
    assert listed('/api/recordings', tag='clients', q='ideas') == []
    assert listed('/api/recordings', favourite='false') == [second_id, first_id]
    hit = api.get('/api/recordings', params={'q': 'prIya', 'favourite': 'true'}, headers=auth).json()
    assert [h['id'] for h in hit] == [first_id] and hit[0]['tags'] == ['Work', 'Clients'] and hit[0]['snippet']
    assert api.get('/api/tags', headers=auth).json() == [{'tag': 'Clients', 'count': 1}, {'tag': 'Work', 'count': 2}]
    assert api.get('/api/tags', headers=stranger).json() == []
    assert api.get('/api/recordings', headers=stranger).json() == []
