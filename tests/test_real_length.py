"""A recording's length is the sound it holds, not what its timestamps claim: a file whose timestamps were
rewritten to claim a fraction of its length is refused in plain words, the length limit counts the real sound,
and the MP3 copy counts in the owner's storage quota."""

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from services.audio.exports import recording_mp3_key
from services.audio.ffmpeg import ffmpeg_executable
from services.audio.formats import FORMATS
from services.audio.real_length import opus_packet_samples, packet_length_ms
from services.container import Services
from services.core.errors import AudioProcessingFailed, LimitReached
from services.core.models import RecordingStatus
from tests.conftest import UserFactory, record
from tests.support.audio_samples import split

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('real_length')

WEBM = FORMATS['audio/webm']
backends = pytest.mark.parametrize(
    ('database_kind', 'storage_kind'), [('sqlite', 'local'), ('postgresql', 's3')], indirect=True
)
embedded = pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)


def ffmpeg(*arguments: str) -> None:
    subprocess.run([ffmpeg_executable(), '-v', 'error', '-y', *arguments], check=True, capture_output=True)


@pytest.fixture(scope='module')
def tone_60s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('length') / 'tone.webm'
    ffmpeg('-f', 'lavfi', '-i', 'sine=f=440:d=60:r=48000', '-c:a', 'libopus', '-b:a', '12k', '-f', 'webm', str(path))
    return path


def with_timestamps_divided(source: Path, by: int) -> bytes:
    """The same packets, their timestamps divided: the container then claims 1/`by` of the audio's length."""
    target = source.with_name(f'{source.stem}-over-{by}.webm')
    ffmpeg('-f', 'webm', '-i', str(source), '-c', 'copy', '-bsf:a', f'setts=ts=TS/{by}', '-f', 'webm', str(target))
    return target.read_bytes()


@pytest.mark.parametrize(
    ('packet', 'samples'),
    [
        (bytes([0b11111_000]), 960),  # CELT 20 ms, one frame
        (bytes([0b00011_001]), 2 * 2880),  # SILK 60 ms, two frames
        (bytes([0b01111_010]), 2 * 960),  # hybrid 20 ms, two frames of different sizes
        (bytes([0b10000_011, 6]), 6 * 120),  # CELT 2.5 ms, six frames (code 3 counts them in the next byte)
        (bytes([0b00011_011, 63]), 5760),  # 63 × 60 ms is not allowed: a packet decodes to 120 ms at most
        (b'', 0),
    ],
)
def test_an_opus_packet_says_how_much_sound_it_holds(packet: bytes, samples: int) -> None:
    assert opus_packet_samples(packet) == samples


def test_the_packets_tell_the_real_length_whatever_the_timestamps_say(tone_60s: Path) -> None:
    lying = tone_60s.with_name('lying.webm')
    lying.write_bytes(with_timestamps_divided(tone_60s, 1000))
    assert abs(packet_length_ms(tone_60s, WEBM) - 60_000) < 100
    assert abs(packet_length_ms(lying, WEBM) - 60_000) < 100


@backends
def test_a_recording_whose_timestamps_claim_a_fraction_of_its_sound_is_refused_in_plain_words(
    api: httpx.Client, make_user: UserFactory, services: Services, tone_60s: Path
) -> None:
    user, auth = make_user.with_auth('Liar')
    created = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()
    for seq, piece in enumerate(split(with_timestamps_divided(tone_60s, 1000), 16_000)):
        assert api.put(f'/api/recordings/{created["id"]}/chunks/{seq}', content=piece, headers=auth).is_success
    refused = api.post(f'/api/recordings/{created["id"]}/finalize', headers=auth)
    assert refused.status_code == 422
    assert refused.json()['error'] == (
        'the audio cannot be saved: its timestamps say it lasts 0.1 s, but it holds 1 min 0 s of sound'
    )
    stored = services.recordings.get(user_id=user.id, recording_id=uuid.UUID(created['id']))
    assert stored.status == RecordingStatus.FAILED and stored.duration_ms is None


@backends
def test_an_honest_recording_keeps_its_length(services: Services, make_user: UserFactory, tone_60s: Path) -> None:
    ready = record(services, make_user('Honest').id, tone_60s.read_bytes())
    assert ready.status == RecordingStatus.READY
    assert abs((ready.duration_ms or 0) - 60_000) < 100


@embedded
def test_the_length_limit_counts_the_real_sound(services: Services, make_user: UserFactory, tone_60s: Path) -> None:
    services.finalizer.max_duration_ms, services.finalizer.duration_slack_ms = 20_000, 0
    user_id = make_user('Long').id
    with pytest.raises(AudioProcessingFailed, match=r'the audio is longer than the .*-hour limit of one recording'):
        record(services, user_id, tone_60s.read_bytes())
    services.finalizer.duration_slack_ms = 60_000  # the timestamps' claim fits the limit; the refusal is the lie's
    with pytest.raises(AudioProcessingFailed, match=r'its timestamps say it lasts 0\.1 s'):
        record(services, user_id, with_timestamps_divided(tone_60s, 1000))


@backends
def test_the_mp3_copy_counts_in_the_quota(services: Services, make_user: UserFactory, tone_60s: Path) -> None:
    user_id = make_user('Quota').id
    ready = record(services, user_id, tone_60s.read_bytes())
    before = services.exports.quota.used_bytes(user_id) if services.exports.quota else 0
    assert before == ready.size_bytes
    services.exports.mp3(user_id=user_id, recording_id=ready.id)
    mp3_size = services.storage.size(recording_mp3_key(ready))
    assert services.exports.quota and services.exports.quota.used_bytes(user_id) == before + mp3_size
    services.recordings.delete(user_id=user_id, recording_id=ready.id)
    assert services.exports.quota.used_bytes(user_id) == 0


@embedded
def test_an_mp3_that_would_not_fit_the_quota_is_refused_before_it_is_made(
    services: Services, make_user: UserFactory, tone_60s: Path
) -> None:
    user_id = make_user('Full').id
    ready = record(services, user_id, tone_60s.read_bytes())
    assert services.exports.quota
    services.exports.quota.max_bytes_per_user = (ready.size_bytes or 0) + 1000  # a minute of MP3 is far more
    with pytest.raises(LimitReached, match='an MP3 copy of this recording would not fit in your storage'):
        services.exports.mp3(user_id=user_id, recording_id=ready.id)
    assert not services.storage.exists(recording_mp3_key(ready))
