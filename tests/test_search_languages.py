"""Search reads each transcript in its own language: the language a transcript was heard in reaches its search entry;
PostgreSQL stems German as German, SQLite finds it by its words with or without accents, and English stems as before
on both; a partial word finds the whole in every language. The language asked for a recording, else its owner's, is the
one its job is claimed in. The language map in services/transcripts/languages.py agrees with migration 0009.

No model runs: transcripts are stored through the queue as a worker stores them, on SQLite and PostgreSQL.
"""

import uuid

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import Session

from services.container import Services
from services.core.schema import alembic_config, head_revision, upgrade
from services.transcripts.engine import Segment, Word
from services.transcripts.languages import POSTGRESQL_CONFIGS, SQLITE_TOKENIZERS, postgresql_config, sqlite_tables
from services.transcripts.queue import TranscriptQueue
from services.transcripts.shapes import encode
from tests.conftest import UserFactory

pytestmark = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
SEARCH_TRIGGERS = {  # SQLite's, by migration 0009
    'recording_search_insert',
    'recording_search_rename',
    'recording_search_delete',
    'transcript_search_insert',
    'transcript_search_update',
    'transcript_search_delete',
}
GERMAN = 'Die alten Häuser am Hafen von Zanzibar'
ENGLISH = 'The pelicans were flying over the harbours of Zanzibar'


def queue_of(services: Services) -> TranscriptQueue:
    assert services.transcripts.queue is not None
    return services.transcripts.queue


def transcribed_as(services: Services, user_id: uuid.UUID, language: str, words: str, title: str) -> uuid.UUID:
    """A recording whose transcript is stored as a worker stores it: asked for in `language`, claimed, completed."""
    queue = queue_of(services)
    recording_id = services.recordings.create(user_id=user_id, mime_type='audio/webm', title=title).id
    assert queue.enqueue_in(recording_id, language)
    job = queue.claim()
    assert job is not None and (job.recording_id, job.language) == (recording_id, language)
    spoken = tuple(Word(i * 1000, i * 1000 + 800, word) for i, word in enumerate(words.split()))
    text_, segments = encode([Segment(0, spoken[-1].end_ms, spoken)], spoken[-1].end_ms)
    assert queue.complete(job, text=text_, segments=segments)
    return recording_id


def found(services: Services, user_id: uuid.UUID, query: str) -> set[uuid.UUID]:
    return {hit.recording.id for hit in services.transcripts.search(user_id=user_id, query=query)}


def is_postgresql(services: Services) -> bool:
    return services.database.engine.dialect.name == 'postgresql'


def test_each_transcript_is_searched_in_its_own_language(services: Services, make_user: UserFactory) -> None:
    user_id = make_user('Polyglot').id
    german = transcribed_as(services, user_id, 'de', GERMAN, 'Memo eins')
    english = transcribed_as(services, user_id, 'en', ENGLISH, 'Memo two')

    assert found(services, user_id, 'Häuser') == {german}
    assert found(services, user_id, 'hauser') == {german}, 'accents are folded'
    # PostgreSQL stems German as German; SQLite, whose only stemmer is English, finds it as the start of the word
    assert found(services, user_id, 'Haus') == {german}
    assert found(services, user_id, 'Hauses') == ({german} if is_postgresql(services) else set())
    assert found(services, user_id, 'pelican harbour fly') == {english}, 'English stems as before'
    assert found(services, user_id, 'Zanzibar') == {german, english}, 'one query, every language'
    [hit] = services.transcripts.search(user_id=user_id, query='Häuser')
    assert [piece.text for piece in hit.snippet if piece.match] == ['Häuser'] and hit.match_ms == 2000


def test_the_language_flows_from_the_queue_to_the_transcript_and_its_search_entry(
    services: Services, make_user: UserFactory
) -> None:
    reader, other = make_user('Reader').id, make_user('Other').id
    recording_id = transcribed_as(services, reader, 'en', 'we were running late', 'Memo')
    assert services.transcripts.get(user_id=reader, recording_id=recording_id).language == 'en'
    assert found(services, reader, 'run') == {recording_id}

    # asked for in German: the old words stay readable, still read as the English they were heard in
    assert queue_of(services).enqueue_in(recording_id, 'de')
    assert services.transcripts.get(user_id=reader, recording_id=recording_id).language == 'en'
    assert found(services, reader, 'run') == {recording_id}

    # the worker heard French: the result carries it, and the entry is read as French
    job = queue_of(services).claim()
    assert job is not None and job.language == 'de'
    text_, segments = encode([Segment(0, 900, (Word(0, 400, 'les'), Word(400, 900, 'chevaux')))], 900)
    assert queue_of(services).complete(job, text=text_, segments=segments, language='fr')
    assert services.transcripts.get(user_id=reader, recording_id=recording_id).language == 'fr'
    assert found(services, reader, 'chevaux') == {recording_id} and found(services, reader, 'running') == set()
    assert found(services, reader, 'cheval') == ({recording_id} if is_postgresql(services) else set())
    assert found(services, other, 'chevaux') == set()


def test_a_job_is_claimed_in_the_language_asked_for_the_recording_else_its_owners(
    services: Services, make_user: UserFactory
) -> None:
    queue = queue_of(services)
    user_id = make_user('Hablante').id
    recording_id = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Memo').id

    def claimed_in() -> str | None:
        job = queue.claim()
        assert job is not None and job.recording_id == recording_id
        assert queue.complete(job, text='', segments='[]', language=job.language)
        return job.language

    assert queue.enqueue(recording_id) and claimed_in() is None, 'nobody said: the model detects it'
    services.users.set_language(user_id, 'es')
    assert queue.enqueue(recording_id) and claimed_in() == 'es', "the owner's default"
    assert queue.enqueue_in(recording_id, 'de') and claimed_in() == 'de', '"transcribe again as German"'
    assert queue.enqueue(recording_id) and claimed_in() == 'de', 'queued again (late audio): still as asked'
    assert queue.enqueue_in(recording_id, None) and claimed_in() == 'es', 'asked for nothing: the default again'
    services.users.set_language(user_id, None)
    assert queue.enqueue(recording_id) and claimed_in() is None
    assert services.transcripts.get(user_id=user_id, recording_id=recording_id).language is None


def test_a_partial_word_finds_the_whole_in_every_language(services: Services, make_user: UserFactory) -> None:
    user_id = make_user('Partial').id
    english = transcribed_as(services, user_id, 'en', 'The plumber fixed the kitchen sink', 'Repairs')
    german = transcribed_as(services, user_id, 'de', GERMAN, 'Hafen')
    spanish = transcribed_as(services, user_id, 'es', 'El fontanero arregla la cocina el jueves', 'Cocina')
    untranscribed = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Wochenendeinkauf').id

    assert found(services, user_id, 'plumb') == {english}
    assert found(services, user_id, 'plum kitch') == {english}, 'every word, each as the start of one'
    assert found(services, user_id, 'Häus') == {german} and found(services, user_id, 'zanz hafe') == {german}
    assert found(services, user_id, 'fontan') == {spanish} and found(services, user_id, 'jue') == {spanish}
    assert found(services, user_id, 'Wochenend') == {untranscribed}, 'a title too'
    assert found(services, user_id, 'plumbago') == set(), 'a longer word is not found in a shorter one'
    [hit] = services.transcripts.search(user_id=user_id, query='plumb')
    assert [piece.text for piece in hit.snippet if piece.match] == ['plumber'] and hit.match_ms == 1000


def test_a_recording_without_a_transcript_is_found_by_the_words_of_its_title(
    services: Services, make_user: UserFactory
) -> None:
    user_id = make_user('Titles').id
    recording_id = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Gärten im Frühling').id
    assert found(services, user_id, 'Gärten') == {recording_id}
    # no language: read word by word; SQLite folds accents, PostgreSQL's 'simple' does not (no unaccent extension)
    assert found(services, user_id, 'garten fruhling') == (set() if is_postgresql(services) else {recording_id})
    services.recordings.rename(user_id=user_id, recording_id=recording_id, title='Seaside walk')
    assert found(services, user_id, 'seaside') == {recording_id} and found(services, user_id, 'Gärten') == set()


def test_the_databases_read_languages_as_the_language_map_says(services: Services, make_user: UserFactory) -> None:
    """Migration 0009 holds a frozen copy of the map: a change to languages.py needs a migration too."""
    if is_postgresql(services):
        with services.database.session() as session:
            assert_postgresql_map(session)
        return
    user_id = make_user('Map').id
    languages: list[str | None] = ['en', 'de', 'fr', 'xx', None]
    made = {}
    for language in languages:
        if language is None:
            made[language] = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='none').id
        else:
            made[language] = transcribed_as(services, user_id, language, 'some words', f'in {language}')
    with services.database.session() as session:
        for language, recording_id in made.items():
            holding = [table for table in SQLITE_TOKENIZERS if entries(session, table, recording_id)]
            assert holding == sqlite_tables(language), language
        triggers = session.exec(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all()  # type: ignore[call-overload]
        assert {name for (name,) in triggers} >= SEARCH_TRIGGERS, 'a table rebuild (batch mode) drops them'


def assert_postgresql_map(session: Session) -> None:
    shipped = {row[0] for row in session.exec(text('SELECT cfgname FROM pg_ts_config')).all()}  # type: ignore[call-overload]
    for code in [*POSTGRESQL_CONFIGS, 'xx', None]:
        read = session.exec(text('SELECT transcript_search_config(:code)::text').bindparams(code=code)).one()[0]  # type: ignore[call-overload]
        wanted = postgresql_config(code)
        assert read == (wanted if wanted in shipped else 'simple'), code


def entries(session: Session, table: str, recording_id: uuid.UUID) -> int:
    query = text(f'SELECT count(*) FROM {table} WHERE {table} MATCH :key').bindparams(
        key=f'recording_key:"{recording_id.hex}"'
    )
    return int(session.exec(query).one()[0])  # type: ignore[call-overload]


def test_migration_0009_reads_existing_transcripts_in_their_language_and_back(
    services: Services, make_user: UserFactory
) -> None:
    user_id = make_user('Early').id
    german = transcribed_as(services, user_id, 'de', GERMAN, 'Memo eins')
    english = transcribed_as(services, user_id, 'en', ENGLISH, 'Memo two')
    untranscribed = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Gärten').id
    engine = services.database.engine
    before = ScriptDirectory.from_config(alembic_config()).get_revision('0009').down_revision
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), str(before))
    with services.database.session() as session:  # as 0004 left it: English for everyone
        if is_postgresql(services):
            assert "'häuser'" in vector_of(session, german) and "'haus'" not in vector_of(session, german)
        else:
            assert all(entries(session, 'recording_search', r) == 1 for r in (german, english, untranscribed))
    assert upgrade(engine) == head_revision()
    assert found(services, user_id, 'Häuser') == {german} and found(services, user_id, 'pelican') == {english}
    assert found(services, user_id, 'Gärten') == {untranscribed}
    if is_postgresql(services):
        with services.database.session() as session:
            assert "'haus'" in vector_of(session, german)


def vector_of(session: Session, recording_id: uuid.UUID) -> str:
    query = text('SELECT search_vector::text FROM transcript WHERE recording_id = :id').bindparams(id=recording_id)
    return str(session.exec(query).one()[0])  # type: ignore[call-overload]
