"""ffmpeg reads only the one file it is handed, as the container the recording declared.

A chunk that is a DASH manifest, a playlist or a script naming another user's audio fails cleanly, in plain
words without a server path, and never yields that audio; MP3 encodes are one per recording and capped; a hung
ffmpeg is killed.
"""

import base64
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from services.audio.exports import ExportService, recording_mp3_key
from services.audio.ffmpeg import ffmpeg_executable, remux
from services.audio.formats import FORMATS, check_container
from services.audio.peaks import compute_peaks
from services.container import Services
from services.core.errors import AudioProcessingFailed, InvalidInput
from services.core.models import Recording
from services.recordings.service import recording_audio_key
from tests.conftest import UserFactory, record

WEBM = FORMATS['audio/webm']


def on_sqlite_and_local(test: Callable[..., None]) -> Callable[..., None]:
    """Services on the embedded backends: the encoder, not the backend, is under test."""
    test = pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)(test)
    return pytest.mark.parametrize('storage_kind', ['local'], indirect=True)(test)


def reference_payloads(victims: Path) -> dict[str, bytes]:
    """Inputs that make a guessing ffmpeg open another user's real audio in `victims`, on the same disk."""
    webm, ogg = victims / 'audio.webm', victims / 'audio.ogg'
    mpd = (
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT5S" minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">'
        '<Period><AdaptationSet mimeType="audio/webm"><Representation id="a" bandwidth="32000" codecs="opus">'
        f'<BaseURL>file://{webm}</BaseURL></Representation></AdaptationSet></Period></MPD>\n'
    )
    # HLS takes segments only with known extensions (.ogg, .m4a, not .webm); safe ffconcat only plain neighbours
    hls = f'#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:5.0,\nfile://{ogg}\n#EXT-X-ENDLIST\n'
    texts = {
        'dash-manifest': mpd,
        'hls-playlist': hls,
        'ffconcat-script': f'ffconcat version 1.0\nfile {ogg.name}\n',
        'subfile-url': f'subfile,,start,0,end,0,,:{webm}',
        'file-url': f'file:{webm}',
        'data-uri': 'data:audio/webm;base64,' + base64.b64encode(webm.read_bytes()).decode(),
    }
    return {name: text.encode() for name, text in texts.items()}


PAYLOADS = ['dash-manifest', 'hls-playlist', 'ffconcat-script', 'subfile-url', 'file-url', 'data-uri']
FOLLOWED_BY_A_GUESSING_FFMPEG = ['dash-manifest', 'hls-playlist', 'ffconcat-script']


@pytest.fixture(scope='session')
def container_samples(speech_5s: Path, webm_5s: bytes) -> dict[str, bytes]:
    """Speech in each container as a recorder writes it to a pipe (WebM, Ogg, fragmented MP4), and as files a user
    imports (MP3, WAV, FLAC, MP4 video's audio)."""
    fragmented = ['-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4']
    encodings = {
        'audio/ogg': ['-c:a', 'libopus', '-f', 'ogg'],
        'audio/mp4': fragmented,
        'video/mp4': fragmented,
        'audio/mpeg': ['-c:a', 'libmp3lame', '-f', 'mp3'],
        'audio/wav': ['-c:a', 'pcm_s16le', '-f', 'wav'],
        'audio/flac': ['-c:a', 'flac', '-f', 'flac'],
    }
    samples = {'audio/webm': webm_5s}
    for mime_type, options in encodings.items():  # a file, not a pipe: an imported FLAC or WAV knows its length
        target = speech_5s.with_name(f'sample-{mime_type.replace("/", "-")}')
        command = [ffmpeg_executable(), '-v', 'error', '-y', '-i', str(speech_5s), *options, str(target)]
        subprocess.run(command, check=True, capture_output=True)
        samples[mime_type] = target.read_bytes()
    return samples


@pytest.fixture
def container_heads(container_samples: dict[str, bytes]) -> dict[str, bytes]:
    return {mime_type: data[:4096] for mime_type, data in container_samples.items()}


@pytest.fixture
def victims(tmp_path: Path, container_samples: dict[str, bytes]) -> Path:
    """A folder holding another user's recordings; the payloads under test are written beside them."""
    folder = tmp_path / 'shared'
    folder.mkdir()
    (folder / 'audio.webm').write_bytes(container_samples['audio/webm'])
    (folder / 'audio.ogg').write_bytes(container_samples['audio/ogg'])
    return folder


def assert_plain_failure(error: AudioProcessingFailed, expected: str, *paths: Path) -> None:
    assert error.message == expected
    assert '/' not in error.message and not any(str(path) in error.message for path in paths)


# --- reference-following payloads -------------------------------------------------------------------------------


@pytest.mark.parametrize('declared', list(FORMATS))
def test_real_audio_of_each_container_still_remuxes_and_draws(
    declared: str, container_samples: dict[str, bytes], tmp_path: Path
) -> None:
    fmt = FORMATS[declared]
    source, target = tmp_path / f'joined.{fmt.extension}', tmp_path / f'final.{fmt.extension}'
    source.write_bytes(container_samples[declared])
    assert remux(source, target, fmt, timeout_s=60) == pytest.approx(5000, abs=200)
    assert max(compute_peaks(target, duration_ms=5000, fmt=fmt, timeout_s=60)) == 1.0


@pytest.mark.parametrize('declared', list(FORMATS))
@pytest.mark.parametrize('payload', PAYLOADS)
def test_remux_never_follows_a_reference_to_another_file(payload: str, declared: str, victims: Path) -> None:
    fmt = FORMATS[declared]
    source, target = victims / f'joined.{fmt.extension}', victims / f'final.{fmt.extension}'
    source.write_bytes(reference_payloads(victims)[payload])
    with pytest.raises(AudioProcessingFailed) as caught:
        remux(source, target, fmt)
    assert_plain_failure(caught.value, f'the audio could not be processed: it is not valid {fmt.label} audio', source)
    assert not target.exists()


@pytest.mark.parametrize('declared', list(FORMATS))
@pytest.mark.parametrize('payload', PAYLOADS)
def test_waveform_never_follows_a_reference_to_another_file(payload: str, declared: str, victims: Path) -> None:
    fmt = FORMATS[declared]
    source = victims / f'upload.{fmt.extension}'
    source.write_bytes(reference_payloads(victims)[payload])
    with pytest.raises(AudioProcessingFailed) as caught:
        compute_peaks(source, duration_ms=5000, fmt=fmt)
    expected = f'the audio could not be decoded for its waveform: it is not valid {fmt.label} audio'
    assert_plain_failure(caught.value, expected, source)


@pytest.mark.parametrize('payload', PAYLOADS)
@on_sqlite_and_local
def test_mp3_never_follows_a_reference_to_another_file(
    payload: str, services: Services, make_user: UserFactory, webm_5s: bytes, victims: Path, tmp_path: Path
) -> None:
    user_id, ready = ready_recording(services, make_user, webm_5s)
    store_as_audio(services, ready, reference_payloads(victims)[payload], tmp_path)
    with pytest.raises(AudioProcessingFailed) as caught:
        services.exports.mp3(user_id=user_id, recording_id=ready.id)
    assert_plain_failure(caught.value, 'the MP3 could not be made: it is not valid WebM audio', tmp_path)
    assert not services.storage.exists(recording_mp3_key(ready))


def test_a_file_name_is_never_read_as_a_pattern_or_a_protocol(victims: Path) -> None:
    for index in range(3):  # what image2 would read for `chunk%d.webm`
        (victims / f'chunk{index}.webm').write_bytes((victims / 'audio.webm').read_bytes())
    for name in ('chunk%d.webm', 'chunk*.webm', 'subfile,,start,0,end,0,,:audio.webm', 'data:audio.webm'):
        source, target = victims / name, victims / 'final.webm'
        source.write_bytes(b'not audio' * 100)
        with pytest.raises(AudioProcessingFailed):
            remux(source, target, WEBM)
        with pytest.raises(AudioProcessingFailed):
            compute_peaks(source, duration_ms=5000, fmt=WEBM)
        assert not target.exists()


@pytest.mark.parametrize('payload', FOLLOWED_BY_A_GUESSING_FFMPEG)
def test_an_unguarded_ffmpeg_would_have_followed_the_reference(payload: str, victims: Path) -> None:
    """Keeps the payloads honest: on this ffmpeg they really are the reported attack."""
    source, target = victims / 'joined.webm', victims / 'final.mka'
    source.write_bytes(reference_payloads(victims)[payload])
    command = [ffmpeg_executable(), '-v', 'error', '-nostdin', '-i', str(source), '-c', 'copy', '-f', 'matroska']
    subprocess.run([*command, str(target)], capture_output=True, check=False, timeout=60)
    assert target.exists() and target.stat().st_size > 10_000, f'ffmpeg no longer follows a {payload}'


# --- the first chunk's container -------------------------------------------------------------------------------


@pytest.mark.parametrize('declared', list(FORMATS))
def test_check_container_accepts_what_recorders_write(declared: str, container_heads: dict[str, bytes]) -> None:
    check_container(FORMATS[declared], container_heads[declared])


@pytest.mark.parametrize('declared', list(FORMATS))
@pytest.mark.parametrize('payload', PAYLOADS)
def test_check_container_refuses_references(payload: str, declared: str, victims: Path) -> None:
    fmt = FORMATS[declared]
    refusal = f'^the first chunk is not {fmt.label} audio, as the recording declared$'
    if payload in FOLLOWED_BY_A_GUESSING_FFMPEG:  # named for what it is
        refusal = '^this file is a playlist or a list of other files, not audio: import the audio file itself$'
    with pytest.raises(InvalidInput, match=refusal):
        check_container(fmt, reference_payloads(victims)[payload])


@pytest.mark.parametrize(
    ('declared', 'actual'),
    [(d, a) for d in FORMATS for a in FORMATS if FORMATS[d].signatures != FORMATS[a].signatures],  # MP4 is MP4
)
def test_check_container_refuses_another_container(
    declared: str, actual: str, container_heads: dict[str, bytes]
) -> None:
    with pytest.raises(InvalidInput, match=f'not {FORMATS[declared].label} audio'):
        check_container(FORMATS[declared], container_heads[actual])


@pytest.mark.parametrize('head', [b'', b'\x1a\x45', b'\x00\x00\x00\x18ft'])
def test_check_container_refuses_a_truncated_head(head: bytes) -> None:
    for fmt in FORMATS.values():
        with pytest.raises(InvalidInput):
            check_container(fmt, head)


# --- encoders: one per recording, a cap per process, a timeout ----------------------------------------------------


class FfmpegLaunches:
    """Counts the MP3 encoders really started (then delegates to the real Popen), with when each ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, delay_s: float = 0.0) -> None:
        self.runs: list[Any] = []
        launches, real = self, subprocess.Popen

        class TrackedPopen(real):  # type: ignore[misc]
            def __init__(self, args: list[str], **kwargs: Any) -> None:
                tracked = 'libmp3lame' in args
                if tracked:
                    time.sleep(delay_s)  # widen the window in which a second encoder could start
                super().__init__(args, **kwargs)
                self.started, self.ended = time.monotonic(), float('inf')
                if tracked:
                    launches.runs.append(self)

            def wait(self, timeout: float | None = None) -> int:
                code = super().wait(timeout)
                self.ended = min(self.ended, time.monotonic())
                return int(code)

        monkeypatch.setattr(subprocess, 'Popen', TrackedPopen)

    def most_at_once(self) -> int:
        return max((sum(1 for o in self.runs if o.started <= r.started < o.ended) for r in self.runs), default=0)


def ready_recording(services: Services, make_user: UserFactory, audio: bytes) -> tuple[uuid.UUID, Recording]:
    user_id = make_user('Encoder').id
    return user_id, record(services, user_id, audio)


def store_as_audio(services: Services, recording: Recording, data: bytes, tmp_path: Path) -> None:
    """What the storage holds as this recording's audio, replaced: the encoder must read it as its container."""
    path = tmp_path / f'stored-{recording.id}'
    path.write_bytes(data)
    services.storage.put_file(recording_audio_key(recording), path)


def all_at_once(count: int, call: Callable[[], Any]) -> list[Any]:
    """`count` threads released together; each answer is a result or the exception raised."""
    start = threading.Barrier(count)

    def one() -> Any:
        start.wait()
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: one(), range(count)))


@pytest.fixture(scope='session')
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Ten minutes in a Matroska file: seconds of work for an encoder, made in a fraction of one."""
    path = tmp_path_factory.mktemp('long') / 'long.mka'
    command = [ffmpeg_executable(), '-v', 'error', '-f', 'lavfi', '-i', 'sine=d=600:r=48000', '-c:a', 'flac']
    subprocess.run([*command, '-f', 'matroska', str(path)], check=True, capture_output=True)
    return path.read_bytes()


@on_sqlite_and_local
def test_simultaneous_mp3_requests_start_one_encoder(
    services: Services, make_user: UserFactory, webm_5s: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, ready = ready_recording(services, make_user, webm_5s)
    launches = FfmpegLaunches(monkeypatch, delay_s=0.3)
    answers = all_at_once(6, lambda: services.exports.mp3(user_id=user_id, recording_id=ready.id))
    assert len(launches.runs) == 1
    assert all(isinstance(answer, Recording) and answer.id == ready.id for answer in answers), answers
    assert services.storage.size(recording_mp3_key(ready)) > 1000


@on_sqlite_and_local
def test_simultaneous_mp3_requests_share_one_failure(
    services: Services, make_user: UserFactory, webm_5s: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, ready = ready_recording(services, make_user, webm_5s)
    store_as_audio(services, ready, b'not audio' * 1000, tmp_path)
    launches = FfmpegLaunches(monkeypatch, delay_s=0.3)
    answers = all_at_once(4, lambda: services.exports.mp3(user_id=user_id, recording_id=ready.id))
    assert len(launches.runs) == 1
    assert all(isinstance(answer, AudioProcessingFailed) for answer in answers), answers


@pytest.mark.parametrize(('cap', 'expected'), [(1, 1), (2, 2)])
@on_sqlite_and_local
def test_encoders_at_once_stay_within_the_cap(
    cap: int,
    expected: int,
    services: Services,
    make_user: UserFactory,
    webm_5s: bytes,
    long_audio: bytes,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    exports = ExportService(
        database=services.database, storage=services.storage, temp_dir=tmp_path, max_concurrent_encoders=cap
    )
    owners = [ready_recording(services, make_user, webm_5s) for _ in range(2)]
    for _, ready in owners:  # a second of encoding each: without the cap they would surely overlap
        store_as_audio(services, ready, long_audio, tmp_path)
    launches = FfmpegLaunches(monkeypatch)
    asks = iter(owners)
    lock = threading.Lock()

    def next_mp3() -> Recording:
        with lock:
            user_id, ready = next(asks)
        return exports.mp3(user_id=user_id, recording_id=ready.id)

    answers = all_at_once(2, next_mp3)
    assert all(isinstance(answer, Recording) for answer in answers), answers
    assert len(launches.runs) == 2
    assert launches.most_at_once() == expected  # with a cap of 2 they overlap: the check can see an overlap


@on_sqlite_and_local
def test_a_timed_out_mp3_encode_is_killed_with_a_plain_error(
    services: Services,
    make_user: UserFactory,
    webm_5s: bytes,
    long_audio: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_id, ready = ready_recording(services, make_user, webm_5s)
    store_as_audio(services, ready, long_audio, tmp_path)
    exports = ExportService(
        database=services.database, storage=services.storage, temp_dir=tmp_path, ffmpeg_timeout_s=0.05
    )
    launches = FfmpegLaunches(monkeypatch)
    began = time.monotonic()
    with pytest.raises(AudioProcessingFailed) as caught:
        exports.mp3(user_id=user_id, recording_id=ready.id)
    assert time.monotonic() - began < 1.0
    assert_plain_failure(caught.value, 'the MP3 could not be made: it took too long', tmp_path)
    assert [run.returncode for run in launches.runs] == [-9]  # SIGKILL: nothing left running
    assert not services.storage.exists(recording_mp3_key(ready))


def test_a_timed_out_waveform_decode_is_killed_with_a_plain_error(long_audio: bytes, tmp_path: Path) -> None:
    source = tmp_path / 'long.webm'
    source.write_bytes(long_audio)
    began = time.monotonic()
    with pytest.raises(AudioProcessingFailed) as caught:
        compute_peaks(source, duration_ms=600_000, fmt=WEBM, timeout_s=0.05)
    assert time.monotonic() - began < 1.0
    assert_plain_failure(caught.value, 'the audio could not be decoded for its waveform: it took too long', tmp_path)
