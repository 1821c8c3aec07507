"""Users take turns in the transcript queue: one user's backlog delays another's job by one job at most, and
"transcribe again" waits at the back of its own user's queue and is limited per user.

No transcription happens: the jobs are claimed and completed as a worker would, on SQLite and PostgreSQL.
"""

import uuid

import httpx
import pytest

from services.container import Services
from services.core.config import Settings
from services.transcripts.queue import TranscriptQueue
from tests.conftest import UserFactory, record
from tests.support.threads import run_together

pytestmark = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
AGAIN_PER_HOUR = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={'transcribe_again_per_user_per_hour': AGAIN_PER_HOUR})


def queue_of(services: Services) -> TranscriptQueue:
    assert services.transcripts.queue is not None
    return services.transcripts.queue


def queue_jobs(services: Services, user_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """`count` recordings of the user's, queued one after the other (the queue does not look at their audio)."""
    made = [services.recordings.create(user_id=user_id, mime_type='audio/webm').id for _ in range(count)]
    assert all(queue_of(services).enqueue(recording_id) for recording_id in made)
    return made


def work_through(queue: TranscriptQueue, limit: int | None = None) -> list[uuid.UUID]:
    """What one worker takes up, in order, until the queue is empty (or `limit` jobs are done)."""
    done: list[uuid.UUID] = []
    while (limit is None or len(done) < limit) and (job := queue.claim()) is not None:
        assert queue.complete(job, text='', segments='[]')
        done.append(job.recording_id)
    return done


def test_a_backlog_delays_another_users_job_by_one_job_at_most(services: Services, make_user: UserFactory) -> None:
    queue = queue_of(services)
    ada, bob = make_user('Ada').id, make_user('Bob').id
    backlog = queue_jobs(services, ada, 5)
    [first] = queue_jobs(services, bob, 1)
    order = work_through(queue)
    assert order.index(first) <= 1, 'behind one of her jobs at most'
    assert [job for job in order if job != first] == backlog, 'her own jobs keep their order'

    # the same while her backlog is being worked through: his next recording is the next job
    backlog = queue_jobs(services, ada, 5)
    assert work_through(queue, 2) == backlog[:2]
    [later] = queue_jobs(services, bob, 1)
    assert work_through(queue) == [later, *backlog[2:]]


def test_three_users_take_turns(services: Services, make_user: UserFactory) -> None:
    users = [make_user(name).id for name in ('Ada', 'Bob', 'Cy')]
    owner = {job: user for user in users for job in queue_jobs(services, user, 3)}  # all of Ada's first, then Bob's
    order = work_through(queue_of(services))
    assert [owner[job] for job in order] == users * 3
    for user in users:
        assert [job for job in order if owner[job] == user] == [job for job in owner if owner[job] == user]


def test_transcribe_again_waits_at_the_back_of_its_own_queue_and_is_limited(
    services: Services, make_user: UserFactory, api: httpx.Client, webm_5s: bytes
) -> None:
    queue = queue_of(services)
    ada, auth = make_user.with_auth('Ada')
    bob, bob_auth = make_user.with_auth('Bob')
    done, bobs_done = record(services, ada.id, webm_5s), record(services, bob.id, webm_5s)
    assert set(work_through(queue)) == {done.id, bobs_done.id}
    waiting = queue_jobs(services, ada.id, 2)
    url = f'/api/recordings/{done.id}/transcript'
    assert api.post(url, headers=auth).status_code == 202
    [bobs] = queue_jobs(services, bob.id, 1)
    order = work_through(queue)
    assert [job for job in order if job != bobs] == [*waiting, done.id], 'it does not overtake her other jobs'
    assert order.index(bobs) <= 1

    for _ in range(AGAIN_PER_HOUR - 1):
        assert api.post(url, headers=auth).status_code == 202
    refused = api.post(url, headers=auth)
    assert refused.status_code == 429 and int(refused.headers['Retry-After']) > 0, refused.text
    assert work_through(queue) == [done.id], 'queued once however often it was asked for'
    assert api.post(f'/api/recordings/{bobs_done.id}/transcript', headers=bob_auth).status_code == 202, 'per user'


@pytest.mark.parametrize('database_kind', ['postgresql'], indirect=True)
def test_workers_claiming_at_once_take_each_job_once(services: Services, make_user: UserFactory) -> None:
    """Several workers on PostgreSQL: claims skip each other's locked jobs, and the turn they take on the same
    user's row neither deadlocks nor loses a job."""
    queue = queue_of(services)
    jobs = [job for name in ('Ada', 'Bob', 'Cy') for job in queue_jobs(services, make_user(name).id, 8)]
    taken: list[list[uuid.UUID]] = [[] for _ in range(4)]
    run_together(*[lambda mine=mine: mine.extend(work_through(queue)) for mine in taken])
    claimed = [job for mine in taken for job in mine]
    assert sorted(claimed) == sorted(jobs)
