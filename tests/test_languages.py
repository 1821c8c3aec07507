"""Languages: Whisper base hears German, Spanish and English (espeak speech of known sentences) as what they are; the
worker stores the language it heard, and the API and search follow it; a user's default language and "transcribe again
as …" take only Whisper's codes, and refuse anything else plainly, changing nothing.

Whisper base is loaded once per session and each clip is transcribed once (~3 CPU-s each); the worker hears the German
clip once more, on SQLite; PostgreSQL's search is shown the same German transcript, stored as the worker stores it.
"""

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from nicegui.testing.general_fixtures import get_path_to_main_file
from nicegui.testing.user import User as SimulatedUser
from nicegui.testing.user_simulation import user_simulation
from sqlmodel import select

from services.audio.formats import FORMATS
from services.container import Services
from services.core.models import TranscriptState, User
from services.transcripts.engine import Transcriber, Transcription
from services.transcripts.languages import WHISPER_LANGUAGES, language_name
from services.transcripts.models import load_model, model_folder, model_spec
from services.transcripts.shapes import encode
from services.transcripts.worker import TranscriptWorker
from tests.conftest import UserFactory, in_process_worker, record
from tests.support.audio_samples import spoken_webm
from tests.test_pages import SERVER_WORK_RETRIES

# One xdist worker runs this module, so Whisper base is loaded and each clip heard once, not once per worker.
pytestmark = pytest.mark.xdist_group('whisper_base')
LOCAL_ONLY = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
SQLITE_ONLY = pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)
# Sentences Whisper base hears well in espeak's voices (single short sentences are detected less surely: see the
# README); the key words are ones it spells right.
SPOKEN = {
    'de': 'Der Klempner kommt morgen um neun Uhr und repariert die Heizung im Keller. '
    'Wir fahren am Wochenende mit dem Zug nach Hamburg.',
    'es': 'Hace buen tiempo hoy, por la tarde vamos a pasear al parque. '
    'Las casas viejas del puerto se renuevan en verano.',
    'en': 'The plumber will fix the kitchen sink on Thursday afternoon. '
    'Please remember to buy apples, bread and cheese tomorrow morning.',
}
KEY_WORDS = {
    'de': {'morgen', 'heizung', 'keller', 'wochenende', 'zug', 'hamburg'},
    'es': {'tiempo', 'tarde', 'pasear', 'parque', 'casas', 'viejas', 'puerto'},
    'en': {'plumber', 'kitchen', 'thursday', 'apples', 'cheese'},
}


@pytest.fixture(scope='session')
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp('models')


def loaded(name: str, models_dir: Path) -> Transcriber:
    return Transcriber(load_model(model_folder(model_spec(name), models_dir)))


@pytest.fixture(scope='session')
def multilingual(models_dir: Path) -> Transcriber:
    """Whisper base, multilingual: the default model."""
    return loaded('base', models_dir)


@pytest.fixture(scope='session')
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp('languages')
    return {language: spoken_webm(text, folder, language, voice=language) for language, text in SPOKEN.items()}


@pytest.fixture(scope='session')
def heard(
    multilingual: Transcriber, clips: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Transcription]:
    """Each clip heard once, through our own decoding path, with nobody saying its language."""
    folder = tmp_path_factory.mktemp('heard')
    found: dict[str, Transcription] = {}
    for language, audio in clips.items():
        path = folder / f'{language}.webm'
        path.write_bytes(audio)
        webm = FORMATS['audio/webm']
        found[language] = multilingual.transcribe_file(path, webm, language=None, duration_ms=15_000, timeout_s=120)
    return found


def words_of(text: str) -> set[str]:
    return set(re.findall(r'\w+', text.lower()))


def spoken_text(transcription: Transcription) -> str:
    return ' '.join(word.text for segment in transcription.segments for word in segment.words)


@pytest.mark.parametrize('language', list(SPOKEN))
def test_each_language_is_heard_as_what_it_is(heard: dict[str, Transcription], language: str) -> None:
    transcription = heard[language]
    assert transcription.language == language, spoken_text(transcription)
    assert KEY_WORDS[language] <= words_of(spoken_text(transcription)), spoken_text(transcription)


def test_whisper_knows_exactly_the_languages_we_list(multilingual: Transcriber) -> None:
    assert multilingual.multilingual
    assert sorted(WHISPER_LANGUAGES) == sorted(multilingual.model.supported_languages)
    assert language_name('de') == 'German' and language_name('yue') == 'Cantonese'


def test_silence_tells_no_language_and_a_given_one_is_kept(multilingual: Transcriber) -> None:
    silence = np.zeros(16_000 * 5, np.float32)
    assert multilingual.transcribe_samples(silence, language=None) == Transcription([], None)
    assert multilingual.transcribe_samples(silence, language='de') == Transcription([], 'de')


def test_an_english_only_model_hears_english_whatever_it_is_told(models_dir: Path) -> None:
    english_only = loaded('tiny.en', models_dir)
    assert not english_only.multilingual
    silence = np.zeros(16_000 * 2, np.float32)
    assert english_only.transcribe_samples(silence, language=None).language == 'en'
    assert english_only.transcribe_samples(silence, language='de').language == 'en'


@pytest.fixture
def worker(services: Services, multilingual: Transcriber) -> TranscriptWorker:
    return in_process_worker(services, multilingual)


def found(services: Services, user_id: uuid.UUID, query: str) -> set[uuid.UUID]:
    return {hit.recording.id for hit in services.transcripts.search(user_id=user_id, query=query)}


@LOCAL_ONLY
@SQLITE_ONLY
def test_the_worker_stores_the_language_it_heard(
    services: Services, make_user: UserFactory, worker: TranscriptWorker, api: httpx.Client, clips: dict[str, bytes]
) -> None:
    user, auth = make_user.with_auth('Sprecherin')
    recording = record(services, user.id, clips['de'], title='Notiz')
    url = f'/api/recordings/{recording.id}/transcript'
    assert api.get(url, headers=auth).json()['language'] is None, 'not heard yet'
    assert worker.work_once()

    body = api.get(url, headers=auth).json()
    assert (body['state'], body['language']) == ('done', 'de')
    assert {'wochenende', 'heizung'} <= words_of(' '.join(segment['text'] for segment in body['segments']))
    assert found(services, user.id, 'Wochenende') == {recording.id}


@LOCAL_ONLY
def test_a_german_transcript_is_found_by_its_words_and_their_starts(
    services: Services, make_user: UserFactory, heard: dict[str, Transcription]
) -> None:
    queue = services.transcripts.queue
    assert queue is not None
    user_id = make_user('Sprecherin').id
    made = {}
    for language, transcription in heard.items():  # stored as the worker stores what it heard
        made[language] = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Notiz').id
        assert queue.enqueue(made[language])
        job = queue.claim()
        assert job is not None and job.recording_id == made[language]
        text, segments = encode(transcription.segments, 15_000)
        assert queue.complete(job, text=text, segments=segments, language=transcription.language)

    assert found(services, user_id, 'Wochenende') == {made['de']}, 'a German word, read as German'
    assert found(services, user_id, 'Wochen heiz') == {made['de']}, 'the starts of German words find them'
    [hit] = services.transcripts.search(user_id=user_id, query='heiz')
    assert [piece.text.lower() for piece in hit.snippet if piece.match] == ['heizung']
    assert found(services, user_id, 'puert') == {made['es']} and found(services, user_id, 'plumb') == {made['en']}


@LOCAL_ONLY
def test_a_users_default_language_is_set_through_the_api(
    services: Services, make_user: UserFactory, api: httpx.Client
) -> None:
    user, auth = make_user.with_auth('Ada')
    url = f'/api/profile/{user.id}'
    assert api.get(url, headers=auth).json()['language'] is None
    assert api.patch(url, json={'language': 'de'}, headers=auth).json()['language'] == 'de'
    assert api.patch(url, json={}, headers=auth).json()['language'] == 'de', 'left out: left as it is'
    for wrong in ['xx', 'DE', 'german', '', 'x' * 17, 7]:
        refused = api.patch(url, json={'language': wrong}, headers=auth)
        assert refused.status_code == 422 and refused.json()['error'], wrong
    assert api.get(url, headers=auth).json()['language'] == 'de', 'a refusal changes nothing'
    assert api.patch(url, json={'language': None}, headers=auth).json()['language'] is None, 'null: detected'
    _, other = make_user.with_auth('Other')
    assert api.patch(url, json={'language': 'es'}, headers=other).status_code == 404
    assert services.users.get(user.id).language is None


@LOCAL_ONLY
def test_transcribe_again_as_a_language_forces_it(
    services: Services, make_user: UserFactory, api: httpx.Client, webm_5s: bytes
) -> None:
    queue = services.transcripts.queue
    assert queue is not None
    user, auth = make_user.with_auth('Ada')
    recording = record(services, user.id, webm_5s, title='Memo')
    job = queue.claim()
    assert job is not None and job.language is None, 'nobody said: detected'
    assert queue.complete(job, text='hola', segments='[[0,500,[[0,500,"hola"]]]]', language='it')
    url = f'/api/recordings/{recording.id}/transcript'

    refused = api.post(url, json={'language': 'klingon'}, headers=auth)
    assert refused.status_code == 422 and 'not a language the speech model knows' in refused.json()['error']
    assert api.get(url, headers=auth).json()['state'] == 'done' and queue.claim() is None, 'nothing was queued'

    again = api.post(url, json={'language': 'es'}, headers=auth)
    assert again.status_code == 202 and again.json()['state'] == 'queued'
    assert again.json()['language'] == 'it', 'the words shown are still the ones heard before, in their language'
    job = queue.claim()
    assert job is not None and job.language == 'es'
    assert queue.complete(job, text='hola', segments='[[0,500,[[0,500,"hola"]]]]', language='es')
    assert api.get(url, headers=auth).json()['language'] == 'es'

    assert api.post(url, headers=auth).status_code == 202, 'no body: the default language, else detected'
    job = queue.claim()
    assert job is not None and job.language is None
    assert queue.complete(job, text='', segments='[]')
    assert services.transcripts.get(user_id=user.id, recording_id=recording.id).state == TranscriptState.DONE


@pytest.fixture
async def user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[SimulatedUser]:
    """NiceGUI's simulated user on the real main.py with transcripts on; no worker runs beside it (the test does a
    job's part itself, through the queue, as a worker would)."""
    monkeypatch.setenv('VR_DATA_DIR', str(tmp_path / 'data'))
    monkeypatch.setenv('VR_SECRET', 'test-secret-of-at-least-32-characters')
    monkeypatch.setenv('VR_TRANSCRIBE_WORKER', 'external')
    async with user_simulation(main_file=get_path_to_main_file(request)) as simulated:
        yield simulated
    errors = [r for r in caplog.get_records('call') if r.levelname == 'ERROR']
    assert not errors, f'unexpected ERROR logs: {[r.getMessage() for r in errors]}'


async def choose(user: SimulatedUser, marker: str, option: str) -> None:
    user.find(marker=marker).click()  # opens the options
    user.find(option).click()


async def test_the_records_page_shows_the_language_and_sets_the_ones_to_hear(
    user: SimulatedUser, page_services: Services, webm_5s: bytes
) -> None:
    queue = page_services.transcripts.queue
    assert queue is not None
    await user.open('/onboard')
    user.find(marker='name-input').type('Greta')
    user.find(marker='onboard-submit').click()
    await user.should_see(marker='recovery-key', retries=SERVER_WORK_RETRIES)
    user.find(marker='recovery-continue').click()
    await user.should_see('Your recordings', retries=SERVER_WORK_RETRIES)
    with page_services.database.session() as session:
        greta = session.exec(select(User).where(User.name == 'Greta')).one()
    recording = record(page_services, greta.id, webm_5s, title='Notiz')
    job = queue.claim()
    assert job is not None and job.language is None
    assert queue.complete(
        job, text='hallo Welt', segments='[[0,900,[[0,400,"hallo"],[400,900,"Welt"]]]]', language='de'
    )

    await user.open('/records')
    await user.should_see(marker='transcript-language')
    assert user.find(marker='transcript-language').elements.pop().text == 'German'

    await choose(user, 'default-language', 'Spanish')
    await user.should_see('New recordings are transcribed in Spanish')
    assert page_services.users.get(greta.id).language == 'es'

    user.find(marker='transcribe-again').click()
    await user.should_see(marker='transcribe-language')
    await user.should_see('Your language (Spanish)')
    await choose(user, 'transcribe-language', 'French')
    user.find(marker='transcribe-again-confirm').click()
    await user.should_see('Transcript: waiting for its turn')
    job = queue.claim()
    assert job is not None and (job.recording_id, job.language) == (recording.id, 'fr')
