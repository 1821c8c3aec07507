"""Vocabulary: the names and terms a user keeps are cleaned and bounded (within what Whisper's prompt holds), refused in
plain words past their bounds with nothing changed, carried by the owner's transcript jobs, and make Whisper base spell
a made-up name right that it did not spell right without them.

Whisper base hears the one clip twice (once for a user with the vocabulary, once for a user without; ~12 CPU-s in all),
through the worker as production runs it, on SQLite; the API's checks run on SQLite and PostgreSQL.
"""

import random
import re
import string

import httpx
import pytest
from nicegui.testing.user import User as SimulatedUser
from pydantic import ValidationError

from services.container import Services
from services.core.config import Settings
from services.core.errors import InvalidInput
from services.transcripts.decoding import heard_as_speech
from services.transcripts.engine import Transcriber
from services.transcripts.vocabulary import (
    PROMPT_BUDGET,
    VocabularyLimits,
    checked_vocabulary,
    vocabulary_prompt,
)
from tests.conftest import UserFactory, in_process_worker, record
from tests.support.audio_samples import spoken_webm
from tests.test_pages import SERVER_WORK_RETRIES, onboard, user_id_named

LOCAL_ONLY = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
SQLITE_ONLY = pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)
LIMITS = VocabularyLimits()  # the defaults, as the `settings` fixture has them
# Six plain sentences, then the names: Whisper base (espeak's voice) writes "a man's ebar budget" and "Oskar Stottia"
# without the vocabulary. With it, it also read "Zanzibar, Oskarsdottir" out over the last second (the guard's case).
SPOKEN = (
    'The plumber will fix the kitchen sink on Thursday afternoon. '
    'Please remember to buy apples, bread and cheese tomorrow morning. '
    'The train to the coast leaves at seven and arrives before lunch. '
    'Our garden needs water every evening during the hot summer weeks. '
    'The library closes early on Sundays, so return the books on Saturday. '
    'My sister painted the fence blue and the door a bright yellow. '
    'Please send the Zanzibar budget to Priya Venkataraman and Oskarsdottir.'
)
HINDI = ['प्रियंका वेंकटरमन', 'तिरुवनंतपुरम', 'कन्याकुमारी', 'विशाखापत्तनम', 'चेन्नई महानगर', 'हैदराबाद', 'बेंगलुरु']
VOCABULARY = ['Zanzibar', 'Priya Venkataraman', 'Oskarsdottir', 'Kwabena Asante-Darko', 'Siobhan', 'Quillfeather']


def test_entries_are_trimmed_and_repeats_dropped_in_order() -> None:
    given = ['  Zanzibar ', 'priya   venkataraman', '', '   ', 'ZANZIBAR', 'Priya Venkataraman', 'Zyntrix\u00a0Pro']
    assert checked_vocabulary(given, LIMITS) == ['Zanzibar', 'priya venkataraman', 'Zyntrix Pro']
    assert checked_vocabulary([], LIMITS) == [] and vocabulary_prompt([]) is None
    assert vocabulary_prompt(['Zanzibar', 'Priya Venkataraman']) == 'Zanzibar, Priya Venkataraman'


@pytest.mark.parametrize(
    ('entries', 'said'),
    [
        ([f'Name{i}' for i in range(LIMITS.max_entries + 1)], 'at most 30 names or terms, not 31'),
        (['x' * (LIMITS.max_entry_chars + 1)], 'is too long: at most 40 characters an entry'),
        ([f'{i:02d}' + 'y' * 38 for i in range(5)], 'the vocabulary is too long: 200 characters, at most 160'),
        (['Zanzi\tbar'], 'holds a control character'),
        (['Zanzibar\nPriya'], 'holds a control character'),
        (['zero\u200bwidth'], 'holds a control character'),
        (['\x00'], 'holds a control character'),
        (HINDI, "more room than the speech model's prompt holds"),  # 81 characters, 252 bytes
    ],
    ids=['entries', 'entry chars', 'chars', 'tab', 'line break', 'zero width', 'nul', 'prompt bytes'],
)
def test_a_vocabulary_past_its_bounds_is_refused_in_plain_words(entries: list[str], said: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(said)):
        checked_vocabulary(entries, LIMITS)


def test_the_settings_bound_the_vocabulary_and_refuse_bounds_the_prompt_cannot_hold() -> None:
    assert Settings(_env_file=None).vocabulary_limits == LIMITS and LIMITS.always_fit()
    narrow = Settings(_env_file=None, vocabulary_max_entries=3, vocabulary_max_chars=20).vocabulary_limits
    with pytest.raises(InvalidInput, match='at most 3 names'):
        checked_vocabulary(['a', 'b', 'c', 'd'], narrow)
    with pytest.raises(ValidationError, match='lower one of them'):
        Settings(_env_file=None, vocabulary_max_chars=500)


def test_whatever_it_holds_a_vocabulary_let_through_fits_whispers_prompt(base: Transcriber) -> None:
    """The checks count UTF-8 bytes, and no token is shorter than one: here the largest vocabularies they let through,
    in a-z, in every printable ASCII character, and in scripts that take the most tokens, as faster-whisper counts."""
    tokenizer = base.model.hf_tokenizer
    alphabets = {
        'a-z': string.ascii_lowercase,
        'ascii': string.ascii_letters + string.digits + string.punctuation,
        'tibetan': 'ཀཁགངཅཆཇཉཏཐདནཔཕབམཙཚཛཝཞཟའཡརལཤསཧཨ',
        'georgian': 'აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ',
        'cjk': '北京深圳腾讯计算机系统有限公司东都千代田区张伟大学',
        'emoji': '🦄🐙🦀🐝🌵🍄🎺🧭🪁🛶',
    }
    for name, letters in alphabets.items():
        entries = largest_accepted(letters)
        tokens = len(tokenizer.encode(' ' + (vocabulary_prompt(entries) or ''), add_special_tokens=False).ids)
        assert 0 < tokens <= PROMPT_BUDGET, (name, tokens)
        if name == 'a-z':
            assert sum(map(len, entries)) == LIMITS.max_chars, 'a-z reaches the character limit, never the byte budget'


def largest_accepted(letters: str) -> list[str]:
    """As many entries of random `letters` as the checks let through, each as long as they let it be."""
    entries: list[str] = []
    for index in range(LIMITS.max_entries):
        draw = random.Random(index)
        for length in range(LIMITS.max_entry_chars, 0, -1):
            entry = ''.join(draw.choices(letters, k=length))
            try:
                entries = checked_vocabulary([*entries, entry], LIMITS)
                break
            except InvalidInput:
                continue
    return entries


def test_only_the_vocabulary_read_out_where_whisper_doubted_speech_is_dropped() -> None:
    hotwords = vocabulary_prompt(VOCABULARY)
    assert not heard_as_speech(' Zanzibar, Oskarsdottir,', no_speech_prob=0.5, hotwords=hotwords)
    assert heard_as_speech(' Zanzibar, Oskarsdottir,', no_speech_prob=0.5), 'no vocabulary given: nothing to read out'
    assert heard_as_speech(' Priya.', no_speech_prob=0.15, hotwords=hotwords), 'a name said on its own is kept'
    assert heard_as_speech(' Send it to Priya.', no_speech_prob=0.5, hotwords=hotwords), 'more than the vocabulary'


@LOCAL_ONLY
def test_the_vocabulary_is_set_through_the_api_and_refused_past_its_bounds(
    services: Services, make_user: UserFactory, api: httpx.Client
) -> None:
    user, auth = make_user.with_auth('Ada')
    url = f'/api/profile/{user.id}'
    assert api.get(url, headers=auth).json()['vocabulary'] == []
    changed = api.patch(url, json={'language': 'de', 'vocabulary': [' Zanzibar ', 'zanzibar', 'Priya']}, headers=auth)
    assert (changed.status_code, changed.json()['vocabulary'], changed.json()['language']) == (
        200,
        ['Zanzibar', 'Priya'],
        'de',
    )
    assert api.patch(url, json={}, headers=auth).json()['vocabulary'] == ['Zanzibar', 'Priya'], 'left out: kept'
    refusals = [
        {'vocabulary': [f'Name{i}' for i in range(31)]},
        {'vocabulary': ['x' * 41]},
        {'vocabulary': ['Zanzi\tbar']},
        {'vocabulary': [7]},
        {'vocabulary': 'Zanzibar'},
        {'vocabulary': ['Oskarsdottir'], 'language': 'klingon'},  # the vocabulary is fine, the language is not
        {'vocabulary': ['x' * 41], 'language': 'es'},  # the language is fine, the vocabulary is not
    ]
    for body in refusals:
        refused = api.patch(url, json=body, headers=auth)
        assert refused.status_code == 422 and refused.json()['error'], body
    profile = api.get(url, headers=auth).json()
    assert (profile['vocabulary'], profile['language']) == (['Zanzibar', 'Priya'], 'de'), 'a refusal changes nothing'
    assert api.patch(url, json={'vocabulary': None}, headers=auth).json()['vocabulary'] == [], 'null: none'
    _, other = make_user.with_auth('Other')
    assert api.patch(url, json={'vocabulary': ['Mine']}, headers=other).status_code == 404
    assert services.users.get(user.id).vocabulary == []


@LOCAL_ONLY
def test_a_job_carries_its_owners_vocabulary_as_it_is_when_claimed(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    queue = services.transcripts.queue
    assert queue is not None
    user = make_user('Ada')
    services.users.set_vocabulary(user.id, ['Before'])
    record(services, user.id, webm_5s, title='Memo')
    services.users.set_vocabulary(user.id, ['Zanzibar', 'Priya Venkataraman'])
    job = queue.claim()
    assert job is not None and job.vocabulary == ('Zanzibar', 'Priya Venkataraman')
    assert queue.complete(job, text='', segments='[]')
    newcomer = make_user('Bo')
    record(services, newcomer.id, webm_5s, title='Memo')
    job = queue.claim()
    assert job is not None and job.vocabulary == (), 'no vocabulary ever given'


@pytest.fixture(scope='module')
def base(base_transcriber: Transcriber) -> Transcriber:
    """Whisper base, the default model: the session's (tests/conftest.py)."""
    return base_transcriber


@pytest.fixture(scope='module')
def names_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return spoken_webm(SPOKEN, tmp_path_factory.mktemp('vocabulary'), 'names')


def heard_words(api: httpx.Client, recording_id: object, auth: dict[str, str]) -> list[str]:
    body = api.get(f'/api/recordings/{recording_id}/transcript', headers=auth).json()
    assert body['state'] == 'done', body
    return re.findall(r'[\w-]+', ' '.join(segment['text'] for segment in body['segments']).lower())


@LOCAL_ONLY
@SQLITE_ONLY
def test_a_made_up_name_is_spelled_right_with_the_vocabulary_and_was_not_without(
    services: Services, make_user: UserFactory, api: httpx.Client, base: Transcriber, names_clip: bytes
) -> None:
    worker = in_process_worker(services, base, timeout_s=300)
    with_it, with_auth = make_user.with_auth('Priya')
    assert api.patch(f'/api/profile/{with_it.id}', json={'vocabulary': VOCABULARY}, headers=with_auth).is_success
    without, without_auth = make_user.with_auth('Sam')
    heard_with = record(services, with_it.id, names_clip, title='Budget').id
    heard_without = record(services, without.id, names_clip, title='Budget').id
    assert worker.work_once() and worker.work_once()

    words = heard_words(api, heard_with, with_auth)
    assert {'zanzibar', 'priya', 'venkataraman', 'oskarsdottir'} <= set(words), words
    assert words.count('zanzibar') == words.count('oskarsdottir') == 1, 'said once, written once: not read out again'
    assert {'plumber', 'kitchen', 'library', 'yellow'} <= set(words), 'the rest is heard as before'
    words = heard_words(api, heard_without, without_auth)
    assert 'zanzibar' not in words and 'oskarsdottir' not in words, words
    assert {'plumber', 'kitchen', 'library', 'yellow'} <= set(words)


async def test_the_account_page_edits_the_vocabulary_with_its_count_and_refusal(
    user: SimulatedUser, page_services: Services
) -> None:
    await onboard(user, 'Priya')
    owner = user_id_named(page_services, 'Priya')
    await user.should_see(marker='vocabulary-input')
    await user.should_see('0 of 30 entries, 0 of 160 characters')
    user.find(marker='vocabulary-input').type('Zanzibar\n  Oskarsdottir \nzanzibar\n')
    await user.should_see('2 of 30 entries, 20 of 160 characters')
    user.find(marker='vocabulary-save').click()
    await user.should_see('Saved 2 entries', retries=SERVER_WORK_RETRIES)
    assert page_services.users.get(owner).vocabulary == ['Zanzibar', 'Oskarsdottir']

    user.find(marker='vocabulary-input').type('\n' + 'Q' * 41)
    await user.should_see('3 of 30 entries, 61 of 160 characters')
    user.find(marker='vocabulary-save').click()
    await user.should_see('is too long: at most 40 characters an entry', retries=SERVER_WORK_RETRIES)
    assert page_services.users.get(owner).vocabulary == ['Zanzibar', 'Oskarsdottir'], 'a refusal changes nothing'
