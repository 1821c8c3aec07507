"""Transcripts, fully offline: speech with known words becomes text with word times, is searchable, survives a
killed worker, goes with its recording, and exports as well-formed subtitles.

The bundled Whisper model is loaded once per session; the services run on SQLite and PostgreSQL, local storage.
"""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
import wave
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from sqlmodel import select

from services.audio.formats import FORMATS
from services.container import Services
from services.core.models import Transcript, TranscriptState
from services.transcripts.decoding import FULL_PASS
from services.transcripts.engine import SegmentGuard, Transcriber, Transcription, guarded_words
from services.transcripts.languages import SQLITE_TOKENIZERS
from services.transcripts.models import (
    TINY_EN_SHA256,
    TranscriberUnavailable,
    check_model,
    model_folder,
    model_spec,
)
from services.transcripts.search import fts5_match, tsquery_text
from services.transcripts.worker import TranscriptWorker
from tests.conftest import UserFactory, in_process_worker, record, settings_env
from tests.support.app_server import ROOT, AppServer
from tests.support.audio_samples import live_webm, require, spoken_wav, spoken_webm
from tests.support.model_calls import ModelCalls

LOCAL_ONLY = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
LIBRIVOX = Path('/usr/share/pocketsphinx/test/data/librivox')  # human reading, from pocketsphinx-testdata
SQLITE_ONLY = pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)
PELICANS = 'Seven pelicans flew across the harbour at noon, looking for sardines.'
SHOPPING = 'Please remember to buy apples, bread and cheese tomorrow morning.'
# Plain prose: tiny.en hears espeak's voice well in sentences, but may drop a whole 30-second window of
# audio_samples.speech_wav's repeated counting as "no speech".
PARAGRAPH = (
    f'{PELICANS} {SHOPPING} The library opens at nine and closes early on Sundays. '
    'Our meeting about the garden project moved to Thursday afternoon. '
    'A gentle breeze carried the smell of fresh coffee down the street.'
)


@pytest.fixture(scope='session')
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp('spoken')
    texts = {'pelicans': PELICANS, 'shopping': SHOPPING, 'paragraph': PARAGRAPH, 'long': ' '.join([PARAGRAPH] * 3)}
    return {name: spoken_webm(text, folder, name) for name, text in texts.items()}


@pytest.fixture
def worker(services: Services, transcriber: Transcriber) -> TranscriptWorker:
    """The worker's loop in this process, with the session's model."""
    return in_process_worker(services, transcriber)


def transcribed(services: Services, worker: TranscriptWorker, audio: bytes, user_id: uuid.UUID, title: str) -> Any:
    recording = record(services, user_id, audio, title=title)
    assert services.transcripts.get(user_id=user_id, recording_id=recording.id).state == TranscriptState.QUEUED
    assert worker.work_once()
    return recording


def words_of(text: str) -> set[str]:
    return set(re.findall(r'[a-z]+', text.lower()))


@LOCAL_ONLY
def test_a_ready_recording_gets_its_words_with_times(
    services: Services, make_user: UserFactory, worker: TranscriptWorker, clips: dict[str, bytes]
) -> None:
    user_id = make_user('Speaker').id
    recording = transcribed(services, worker, clips['pelicans'], user_id, 'Harbour notes')
    transcript = services.transcripts.get(user_id=user_id, recording_id=recording.id)
    assert (transcript.state, transcript.progress, transcript.error) == (TranscriptState.DONE, 1.0, None)
    spoken = ' '.join(segment.text for segment in transcript.segments)
    assert {'pelicans', 'flew', 'across', 'noon', 'sardines'} <= words_of(spoken), spoken
    starts = [word.start_ms for segment in transcript.segments for word in segment.words]
    assert starts == sorted(starts) and len(starts) >= 8
    assert all(0 <= w.start_ms <= w.end_ms <= recording.duration_ms for s in transcript.segments for w in s.words)
    assert worker.work_once() is False, 'one job, done once'


@LOCAL_ONLY
def test_search_finds_a_recording_by_a_spoken_word_not_in_its_title(
    services: Services, make_user: UserFactory, worker: TranscriptWorker, clips: dict[str, bytes]
) -> None:
    user_id, stranger = make_user('Speaker').id, make_user('Stranger').id
    birds = transcribed(services, worker, clips['pelicans'], user_id, 'Monday')
    transcribed(services, worker, clips['shopping'], user_id, 'Tuesday')
    transcribed(services, worker, clips['pelicans'], stranger, 'Their pelicans')

    [hit] = services.transcripts.search(user_id=user_id, query='pelicans')
    assert hit.recording.id == birds.id and hit.rank > 0
    matched = [piece.text.lower() for piece in hit.snippet if piece.match]
    assert matched and all(text.startswith('pelican') for text in matched)
    spoken = [w for s in services.transcripts.get(user_id=user_id, recording_id=birds.id).segments for w in s.words]
    pelicans = next(w for w in spoken if w.word.lower().startswith('pelican'))
    assert hit.match_ms == pelicans.start_ms

    # titles too, kept in step with a rename; words from both; nothing of another user's
    services.recordings.rename(user_id=user_id, recording_id=birds.id, title='Birdwatching trip')
    assert [h.recording.id for h in services.transcripts.search(user_id=user_id, query='birdwatching')] == [birds.id]
    assert [h.recording.id for h in services.transcripts.search(user_id=user_id, query='birdwatching noon')] == [
        birds.id
    ]
    assert services.transcripts.search(user_id=user_id, query='Monday') == []
    assert [h.recording.title for h in services.transcripts.search(user_id=stranger, query='sardines')] == [
        'Their pelicans'
    ]


@LOCAL_ONLY
@pytest.mark.parametrize(
    'query', ['"', 'pelicans" OR "', 'owner_key:x', '{title}: x', 'NEAR(a b', 'a AND', '*', "'; DROP TABLE x; --", '-']
)
def test_search_takes_any_text_as_words(services: Services, make_user: UserFactory, query: str) -> None:
    user_id = make_user('Speaker').id
    record_title = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='x and a')
    hits = services.transcripts.search(user_id=user_id, query=query)
    assert all(hit.recording.id == record_title.id for hit in hits)


def test_fts5_queries_quote_every_word() -> None:
    """Each word quoted and matched as the start of a word; no quote, backslash or operator of the user's is left."""
    owner = uuid.UUID(int=1)
    assert (
        fts5_match(owner, 'Pelicans" OR x:')
        == f'owner_key:"{owner.hex}" AND {{title body}}: ("pelicans"* AND "or"* AND "x"*)'
    )
    assert fts5_match(owner, '"*:(){}') is None
    assert tsquery_text("Plumb' & !x:* \\'Häus नमस्ते") == "'plumb':* & 'x':* & 'häus':* & 'नमस्ते':*"
    assert tsquery_text("'&|!<->:*") is None


@LOCAL_ONLY
def test_a_title_containing_the_query_comes_after_the_ranked_hits(
    services: Services, make_user: UserFactory, worker: TranscriptWorker, clips: dict[str, bytes]
) -> None:
    user_id = make_user('Speaker').id
    spoken = transcribed(services, worker, clips['shopping'], user_id, 'Errands')
    # inside a word, not at its start: no word-start (prefix) match, only the title's plain "contains"
    partial = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Shortbread class')
    hits = services.transcripts.search(user_id=user_id, query='bread')
    assert [hit.recording.id for hit in hits] == [spoken.id, partial.id]
    assert hits[1].match_ms is None and [p.text for p in hits[1].snippet if p.match] == ['bread']
    assert [h.recording.id for h in services.transcripts.search(user_id=user_id, query='bread', offset=1)] == [
        partial.id
    ]


@LOCAL_ONLY
def test_the_api_serves_the_transcript_its_files_and_search(
    services: Services, make_user: UserFactory, worker: TranscriptWorker, api: httpx.Client, clips: dict[str, bytes]
) -> None:
    reader, auth = make_user.with_auth('Reader')
    recording = record(services, reader.id, clips['shopping'], title='Errands')
    url = f'/api/recordings/{recording.id}/transcript'
    assert api.get(url, headers=auth).json()['state'] == 'queued'
    assert api.get(url, params={'format': 'srt'}, headers=auth).status_code == 409
    assert worker.work_once()

    body = api.get(url, headers=auth).json()
    assert (body['state'], body['progress'], body['language']) == ('done', 1.0, 'en')
    assert {'start_ms', 'end_ms', 'word'} == set(body['segments'][0]['words'][0])

    srt = api.get(url, params={'format': 'srt'}, headers=auth)
    assert srt.headers['content-type'].startswith('text/plain')
    day = f'{recording.created_at:%Y-%m-%d}'
    assert srt.headers['content-disposition'] == (
        f'attachment; filename="Errands - {day}.srt"; filename*=UTF-8\'\'Errands%20%E2%80%93%20{day}.srt'
    )
    assert_srt(srt.text)
    vtt = api.get(url, params={'format': 'vtt'}, headers=auth)
    assert vtt.headers['content-type'].startswith('text/vtt') and vtt.headers['content-disposition'].endswith('.vtt')
    assert_vtt(vtt.text)
    txt = api.get(url, params={'format': 'txt'}, headers=auth)
    assert {'apples', 'cheese'} <= words_of(txt.text) and txt.headers['content-disposition'].endswith('.txt')
    assert api.get(url, params={'format': 'pdf'}, headers=auth).status_code == 422

    found = api.get(f'/api/records/{reader.id}', params={'q': 'cheese'}, headers=auth).json()
    assert [item['id'] for item in found] == [str(recording.id)]
    assert found[0]['match_ms'] > 0 and any(p['match'] and p['text'].lower() == 'cheese' for p in found[0]['snippet'])
    assert 'snippet' not in api.get(f'/api/records/{reader.id}', headers=auth).json()[0]

    again = api.post(url, headers=auth)
    assert again.status_code == 202 and again.json()['state'] == 'queued'
    assert again.json()['segments'], 'the finished transcript stays readable while it is made again'

    _, other = make_user.with_auth('Other')
    assert api.get(url, headers=other).status_code == 404
    assert api.get(url, params={'format': 'txt'}, headers=other).status_code == 404
    assert api.post(url, headers=other).status_code == 404


TIME = r'(\d\d):(\d\d):(\d\d)[,.](\d\d\d)'


def cue_times(line: str) -> tuple[int, int]:
    match = re.fullmatch(f'{TIME} --> {TIME}', line)
    assert match, line
    h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
    return (h1 * 3600 + m1 * 60 + s1) * 1000 + ms1, (h2 * 3600 + m2 * 60 + s2) * 1000 + ms2


def assert_srt(text: str) -> None:
    blocks = text.strip().split('\n\n')
    assert blocks
    for number, block in enumerate(blocks, start=1):
        index, times, *words = block.split('\n')
        assert index == str(number) and ',' in times and words and all(words)
        start, end = cue_times(times)
        assert start <= end


def assert_vtt(text: str) -> None:
    header, *blocks = text.strip().split('\n\n')
    assert header == 'WEBVTT' and blocks
    for block in blocks:
        times, *words = block.split('\n')
        assert '.' in times and words and '<' not in ''.join(words)
        start, end = cue_times(times)
        assert start <= end


@LOCAL_ONLY
def test_a_deleted_recording_takes_its_transcript_and_search_entries_along(
    services: Services, make_user: UserFactory, worker: TranscriptWorker, clips: dict[str, bytes]
) -> None:
    user_id = make_user('Speaker').id
    recording = transcribed(services, worker, clips['pelicans'], user_id, 'Gone soon')
    assert services.transcripts.search(user_id=user_id, query='sardines')
    services.recordings.delete(user_id=user_id, recording_id=recording.id)
    assert services.transcripts.search(user_id=user_id, query='sardines') == []
    assert services.transcripts.search(user_id=user_id, query='gone') == []
    with services.database.session() as session:
        assert session.get(Transcript, recording.id) is None
        if session.connection().dialect.name == 'sqlite':
            from sqlalchemy import text

            for table in SQLITE_TOKENIZERS:  # one table per tokenizer (languages.py)
                left = session.exec(text(f'SELECT count(*) FROM {table}')).one()  # type: ignore[call-overload]
                assert left[0] == 0, table


@LOCAL_ONLY
def test_a_job_queued_again_never_takes_an_older_result(
    services: Services, make_user: UserFactory, clips: dict[str, bytes]
) -> None:
    """Late audio re-assembles a recording while its transcript is being made: the newer queueing wins."""
    queue = services.transcripts.queue
    assert queue is not None
    user_id = make_user('Speaker').id
    recording = record(services, user_id, clips['pelicans'])
    job = queue.claim()
    assert job is not None and job.recording_id == recording.id
    services.finalizer.on_ready(recording.id)  # what a re-assembly calls
    assert queue.complete(job, text='stale', segments='[]') is False
    assert queue.renew(job) is False
    again = queue.claim()
    assert again is not None and again.generation > job.generation and again.attempt == 1


@LOCAL_ONLY
def test_recordings_made_before_transcripts_are_queued_newest_first(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    queue = services.transcripts.queue
    assert queue is not None
    user_id = make_user('Speaker').id
    made = [record(services, user_id, webm_5s, title=f'Old {i}') for i in range(3)]
    with services.database.session() as session:  # as if made before this release
        session.exec(Transcript.__table__.delete())  # type: ignore[attr-defined]
        session.commit()
    assert queue.backfill(limit=2) == 2
    with services.database.session() as session:
        queued = set(session.exec(select(Transcript.recording_id)).all())
    assert queued == {made[2].id, made[1].id}
    assert queue.backfill(limit=2) == 1 and queue.backfill() == 0


@LOCAL_ONLY
@SQLITE_ONLY
def test_transcripts_can_be_turned_off(settings: Any, webm_5s: bytes) -> None:
    from services.container import build_services

    services = build_services(settings.model_copy(update={'transcribe': False}))
    try:
        user_id = UserFactory(services)('Speaker').id
        recording = record(services, user_id, webm_5s)
        assert services.transcripts.get(user_id=user_id, recording_id=recording.id).state == TranscriptState.OFF
        with services.database.session() as session:
            assert session.exec(select(Transcript)).all() == []
        with pytest.raises(Exception, match='turned off'):
            services.transcripts.transcribe_again(user_id=user_id, recording_id=recording.id)
    finally:
        services.close()


def test_long_audio_is_heard_in_windows_with_nothing_lost_or_doubled(
    transcriber: Transcriber, clips: dict[str, bytes], tmp_path: Path
) -> None:
    """Windows of 7 s instead of 10 minutes: speech cut by a window's end is heard again whole, never twice."""
    audio = tmp_path / 'speech.webm'
    audio.write_bytes(clips['paragraph'])
    whole = transcriber.transcribe_file(audio, FORMATS['audio/webm'], language='en', duration_ms=23_000, timeout_s=60)
    windowed = Transcriber(transcriber.model, window_s=7).transcribe_file(
        audio, FORMATS['audio/webm'], language='en', duration_ms=23_000, timeout_s=60
    )
    words = [w for s in windowed.segments for w in s.words]
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts) and starts[-1] > 18_000
    heard = [w.text for w in words]
    assert abs(len(words) - sum(len(s.words) for s in whole.segments)) <= 4, heard
    assert {'pelicans', 'cheese', 'library', 'garden', 'coffee', 'street'} <= words_of(' '.join(heard)), heard


def test_silence_stays_silent(transcriber: Transcriber) -> None:
    assert transcriber.transcribe_samples(np.zeros(16_000 * 8, np.float32), language='en').segments == []


def test_speech_then_silence_gets_no_invented_words(base_transcriber: Transcriber, tmp_path: Path) -> None:
    """A sentence, then 10 s of silence: the words said and nothing after them ("Thank you." is Whisper's habit)."""
    said = spoken_wav(PELICANS, tmp_path / 'said.wav')
    padded = tmp_path / 'said-then-silence.wav'
    subprocess.run([require('sox'), str(said), str(padded), 'pad', '0', '10'], check=True, capture_output=True)
    webm = tmp_path / 'said-then-silence.webm'
    live_webm(padded, webm)
    heard = base_transcriber.transcribe_file(
        webm, FORMATS['audio/webm'], language='en', duration_ms=15_000, timeout_s=60
    )
    words = [word for segment in heard.segments for word in segment.words]
    with wave.open(str(said)) as audio:
        speech_end_ms = audio.getnframes() * 1000 // audio.getframerate()
    assert words and words[-1].text.lower().startswith('sardines'), [w.text for w in words]
    assert all(word.end_ms <= speech_end_ms for word in words), [(w.text, w.end_ms) for w in words]


def test_silence_the_vad_lets_through_gets_no_words(base_transcriber: Transcriber) -> None:
    """The guards behind the VAD: given 10 s of silence whole, Whisper base says "You" (and tiny.en too); dropped."""
    unfiltered = Transcriber(base_transcriber.model, decoding=replace(FULL_PASS, vad_filter=False))
    assert unfiltered.transcribe_samples(np.zeros(16_000 * 10, np.float32), language='en').segments == []


def test_a_window_without_speech_runs_no_language_detection(base_transcriber: Transcriber, tmp_path: Path) -> None:
    """faster-whisper detects the language even of a window its voice detection emptied (a 30-s encoder pass: 3
    minutes of noise cost 3.7 CPU-s instead of 0.8), so a window with no speech is not given to it while the
    language is unknown; speech still is, and its language is heard."""
    counted = ModelCalls(base_transcriber.model)  # a skipped pass and an empty one give the same empty transcript
    transcriber = Transcriber(counted)
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal(16_000 * 20) * 0.01).astype(np.float32)
    assert transcriber.transcribe_samples(hiss, language=None) == Transcription([], None)
    assert counted.transcribed == []
    said = tmp_path / 'said-16k.wav'
    subprocess.run(
        [require('sox'), str(spoken_wav(PELICANS, tmp_path / 'said.wav')), '-r', '16000', str(said)], check=True
    )
    with wave.open(str(said)) as audio:
        speech = np.frombuffer(audio.readframes(audio.getnframes()), '<i2').astype(np.float32) / 32768
    heard = transcriber.transcribe_samples(np.concatenate((hiss, speech)), language=None)
    assert len(counted.transcribed) == 1 and heard.language == 'en' and heard.segments


def test_a_sound_that_repeats_is_not_written_down_as_a_loop(base_transcriber: Transcriber) -> None:
    """A LibriVox reader's sentence, then its last half second over and over (a buzz): Whisper base wrote it as
    "N-N-N-N-N-…" after the sentence; the sentence stays, the loop goes."""
    with wave.open(str(LIBRIVOX / 'sense_and_sensibility_01_austen_64kb-0880.wav')) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16_000, 1, 2)
        speech = np.frombuffer(clip.readframes(clip.getnframes()), '<i2').astype(np.float32) / 32768
    audio = np.concatenate((speech, np.tile(speech[-8_000:], 20)))
    heard = [w.text for s in base_transcriber.transcribe_samples(audio, language='en').segments for w in s.words]
    assert 'young man' in ' '.join(heard).lower(), heard
    # Unguarded: 26 more words, "N", "-N", …; Whisper's fallback samples at random, so a word of the sentence may come
    # out otherwise or once more ("… young man and"), or the loop may be the sentence again (the tests above), but no
    # word of the loop is kept.
    assert not [word for word in heard if re.fullmatch(r'[\W_]*(n[\W_]*)+', word.lower())], heard
    assert len(heard) <= 14, heard


def test_a_sentence_and_a_loop_in_one_segment_keep_the_sentence() -> None:
    """Whisper sometimes gives the sentence and the loop after it as one segment (it did on an AVX2 machine, where
    the whole segment was judged a loop and dropped): the loop is cut off before the segment is judged."""
    said = ['And', 'the', 'young', 'man', 'left.']
    loop = ['N-N-N-N-N-N-N-N'] * 6
    words = [SimpleNamespace(start=i * 0.4, end=i * 0.4 + 0.3, word=f' {w}') for i, w in enumerate(said + loop)]
    segment = SimpleNamespace(
        start=0.0, end=len(words) * 0.4, text=' '.join(said + loop), no_speech_prob=0.1, words=words
    )
    kept = guarded_words(segment, 1000, FULL_PASS)
    assert kept is not None and [word.text for word in kept.words] == said
    assert kept.end_ms == 1000 + round(4 * 0.4 * 1000 + 300), 'it ends with its last word, not the loop'
    only_loop = SimpleNamespace(start=0.0, end=2.4, text=' '.join(loop), no_speech_prob=0.1, words=words[len(said) :])
    assert guarded_words(only_loop, 0, FULL_PASS) is None


def whisper_segment(start_s: float, said: list[str]) -> SimpleNamespace:
    """A segment as faster-whisper gives it: its words 0.4 s apart, with their times."""
    words = [
        SimpleNamespace(start=start_s + i * 0.4, end=start_s + i * 0.4 + 0.3, word=f' {w}') for i, w in enumerate(said)
    ]
    return SimpleNamespace(
        start=start_s, end=start_s + len(said) * 0.4, text=' '.join(said), no_speech_prob=0.1, words=words
    )


def test_a_sentence_written_over_and_over_keeps_its_first_saying() -> None:
    """Whisper base's temperature fallback once wrote the reader's sentence again and again over a buzz (28 words for
    8, no "N" among them): a phrase said three times in a row is a loop, as one word five times is."""
    sentence = ['He', 'was', 'not', 'an', 'ill-disposed', 'young', 'man.']
    kept = guarded_words(whisper_segment(0.0, sentence * 3 + sentence[:4]), 0, FULL_PASS)
    assert kept is not None and [word.text for word in kept.words] == sentence
    said_twice = ['Go', 'team,', 'go', 'team!', 'We', 'won', 'the', 'cup.']
    kept = guarded_words(whisper_segment(0.0, said_twice), 0, FULL_PASS)
    assert kept is not None and [word.text for word in kept.words] == said_twice, 'twice may be said'


def test_a_segment_that_only_says_the_one_before_again_is_dropped() -> None:
    """The same loop across segments: the sentence, then a segment of it again (whole or in part, once or more)."""
    sentence = ['He', 'was', 'not', 'an', 'ill-disposed', 'young', 'man.']
    guard = SegmentGuard(0, FULL_PASS)
    heard = [
        guard.keep(whisper_segment(0.0, sentence)),
        guard.keep(whisper_segment(3.0, sentence + sentence[:3])),
        guard.keep(whisper_segment(8.0, sentence[:4])),
        guard.keep(whisper_segment(10.0, ['Yes.'])),
        guard.keep(whisper_segment(11.0, ['Yes.'])),
        guard.keep(whisper_segment(12.0, ['His', 'wife', 'was', 'not', 'so.'])),
    ]
    assert [' '.join(w.text for w in s.words) if s else None for s in heard] == [
        ' '.join(sentence),
        None,
        None,
        'Yes.',
        'Yes.',
        'His wife was not so.',
    ]


def test_a_wrong_or_missing_model_is_refused_plainly(tmp_path: Path) -> None:
    with pytest.raises(TranscriberUnavailable, match=r'has model\.bin'):
        check_model(tmp_path, None)
    (tmp_path / 'model.bin').write_bytes(b'not a model')
    with pytest.raises(TranscriberUnavailable, match='damaged or not ours'):
        check_model(tmp_path, TINY_EN_SHA256)
    check_model(tmp_path, None)  # an operator's own model: only its presence is checked


def worker_process(settings: Any, log: Path, **env_overrides: str) -> 'subprocess.Popen[bytes]':
    """`python main.py worker`, one worker in its own process unless told otherwise, on tiny.en (half base's CPU)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(('PYTEST', 'NICEGUI', 'VR_'))}
    own = {
        'VR_DATA_DIR': str(settings.data_dir),
        'VR_TRANSCRIBE_LEASE_S': '2',
        'VR_TRANSCRIBE_WORKERS': '1',
        'VR_TRANSCRIBE_MODEL': 'tiny.en',
        **env_overrides,
    }
    env = {**inherited, **settings_env(settings), **own}
    with log.open('ab') as output:
        return subprocess.Popen(
            [sys.executable, 'main.py', 'worker'], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def state_of(services: Services, recording_id: uuid.UUID) -> Transcript:
    with services.database.session() as session:
        found = session.get(Transcript, recording_id)
    assert found is not None
    return found


def wait_for(condition: Any, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f'{what} did not happen in {timeout_s} s:\n{log.read_text()[-3000:]}'
        time.sleep(0.05)


@LOCAL_ONLY
def test_a_killed_workers_job_is_taken_up_by_another(
    services: Services, make_user: UserFactory, clips: dict[str, bytes], tmp_path: Path
) -> None:
    user_id = make_user('Speaker').id
    recording = record(services, user_id, clips['long'])  # about a minute: several seconds of work
    log = tmp_path / 'workers.log'
    first = worker_process(services.settings, log)
    try:
        transcribing = lambda: state_of(services, recording.id).progress > 0  # noqa: E731
        wait_for(transcribing, 60, 'the first worker starting the job', log)
        first.send_signal(signal.SIGKILL)
        first.wait()
        stalled = state_of(services, recording.id)
        assert (stalled.state, stalled.attempts) == (TranscriptState.TRANSCRIBING, 1) and stalled.progress < 1
        # the same model named as an operator's own folder would be: loaded from there, its presence checked only
        own_folder = str(model_folder(model_spec('tiny.en'), tmp_path))
        second = worker_process(services.settings, log, VR_TRANSCRIBE_MODEL=own_folder)
        try:
            done = lambda: state_of(services, recording.id).state == TranscriptState.DONE  # noqa: E731
            wait_for(done, 120, 'the second worker finishing the job', log)
        finally:
            second.terminate()
            assert second.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        first.kill()
    finished = state_of(services, recording.id)
    assert finished.attempts == 2 and finished.error is None
    assert {'pelicans', 'library', 'garden', 'coffee'} <= words_of(finished.text or ''), finished.text


def worker_children(pid: int, *, live: bool = False) -> list[int]:
    """The transcription workers `pid` started (`live`: its live worker), read from /proc."""
    found = []
    for folder in Path('/proc').glob('[0-9]*'):
        try:
            parent = int((folder / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            arguments = (folder / 'cmdline').read_bytes().split(b'\0')
            if parent == pid and b'worker' in arguments and (b'--live' in arguments) == live:
                found.append(int(folder.name))
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return found


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def idle_threads(pid: int) -> list[int]:
    """The threads of `pid` under SCHED_IDLE: those that hear audio. Its main thread writes to the database and
    must not be one (a SCHED_IDLE thread holding SQLite's write lock holds up the web process's commits)."""
    found = []
    for task in Path(f'/proc/{pid}/task').iterdir():
        try:
            if os.sched_getscheduler(int(task.name)) == os.SCHED_IDLE:
                found.append(int(task.name))
        except OSError:
            continue  # ended meanwhile
    return found


@LOCAL_ONLY
@SQLITE_ONLY
def test_workers_take_as_many_jobs_at_once_as_there_are_workers(
    services: Services, make_user: UserFactory, clips: dict[str, bytes], tmp_path: Path
) -> None:
    """`python main.py worker` with VR_TRANSCRIBE_WORKERS=2: two child processes at nice 10, one job each at the same
    time; stopping the command stops them."""
    user_id = make_user('Speaker').id
    recordings = [record(services, user_id, clips['paragraph'], title=f'Paragraph {i}') for i in range(2)]
    log = tmp_path / 'workers.log'
    pool = worker_process(services.settings, log, VR_TRANSCRIBE_WORKERS='2')
    try:
        states = lambda: {state_of(services, r.id).state for r in recordings}  # noqa: E731
        wait_for(lambda: states() == {TranscriptState.TRANSCRIBING}, 60, 'both jobs being transcribed at once', log)
        workers = worker_children(pool.pid)
        assert len(workers) == 2 and [niceness(pid) for pid in workers] == [10, 10], log.read_text()[-3000:]
        assert [os.sched_getscheduler(pid) for pid in workers] == [os.SCHED_OTHER] * 2, 'its database writes'
        assert all(idle_threads(pid) for pid in workers), 'what hears the audio gets the CPU only when idle'
        wait_for(lambda: states() == {TranscriptState.DONE}, 120, 'both transcripts', log)
    finally:
        pool.terminate()
        assert pool.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert not any(Path(f'/proc/{pid}').exists() for pid in workers), 'the workers stop with the command'
    assert all('pelicans' in (state_of(services, r.id).text or '').lower() for r in recordings)


def test_the_app_runs_its_own_workers_and_stops_them(tmp_path: Path, clips: dict[str, bytes]) -> None:
    """Embedded mode: `python main.py` starts VR_TRANSCRIBE_WORKERS worker processes at start-up, at a lower CPU
    priority, and one live worker a little above them; they go when the app goes. They transcribe with the default
    model, Whisper base, joined into the data dir."""
    server = AppServer(tmp_path / 'data', env={'VR_TRANSCRIBE': 'true', 'VR_TRANSCRIBE_WORKERS': '2'}).start()
    try:
        api = httpx.Client(base_url=server.url, timeout=30)
        answer = api.post('/api/onboard', json={'name': 'Embedded'}).json()
        auth = {'Authorization': f'Bearer {answer["token"]}'}
        recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
        headers = {**auth, 'Content-Type': 'application/octet-stream'}
        for seq, start in enumerate(range(0, len(clips['pelicans']), 16_000)):
            piece = clips['pelicans'][start : start + 16_000]
            assert api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=headers).is_success
        assert api.post(f'/api/recordings/{recording_id}/finalize', headers=auth).is_success
        url = f'/api/recordings/{recording_id}/transcript'
        wait_for(lambda: api.get(url, headers=auth).json()['state'] == 'done', 90, 'the transcript', server.log_path)
        assert 'pelicans' in api.get(url, params={'format': 'txt'}, headers=auth).text.lower()
        assert server.process is not None
        workers = worker_children(server.process.pid)
        assert len(workers) == 2 and [niceness(pid) for pid in workers] == [10, 10], server.log()
        live_workers = worker_children(server.process.pid, live=True)  # and one live worker, above them
        assert [niceness(pid) for pid in live_workers] == [5], server.log()
        policies = [os.sched_getscheduler(pid) for pid in [*workers, *live_workers]]
        assert policies == [os.SCHED_OTHER] * 3, 'the threads that write to the database are never SCHED_IDLE'
        hearing = [idle_threads(pid) for pid in [*workers, *live_workers]]
        assert any(hearing[:2]) and hearing[2], 'recording first: what hears the audio gets the CPU only when idle'
        workers += live_workers
        assert (tmp_path / 'data' / 'models' / 'whisper-base' / 'model.bin').is_file()
    finally:
        server.stop()
    gone = lambda: not any(Path(f'/proc/{pid}').exists() for pid in workers)  # noqa: E731
    wait_for(gone, 15, 'the workers ending', server.log_path)
