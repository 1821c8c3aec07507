"""The credential cache under many users at once: never an answer from a read `max_age_s` old, and the users falling
due read together (one query for many) rather than one query each."""

import asyncio
import time
import uuid
from collections.abc import Collection

import pytest

from services.access.credentials import CredentialCache, Credentials
from services.core.errors import Unauthorized

MAX_AGE_S = 0.2
USERS = 50


class Store:
    """The users' credential versions, and each read made of them: when it began and for how many users."""

    def __init__(self, users: list[uuid.UUID]) -> None:
        self.versions = dict.fromkeys(users, 1)
        self.reads: list[tuple[float, int]] = []

    def read(self, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Credentials]:
        self.reads.append((time.monotonic(), len(user_ids)))
        return {user: Credentials(self.versions[user]) for user in user_ids if user in self.versions}


async def test_pages_of_many_users_cost_a_few_reads_and_every_change_is_seen_within_the_age() -> None:
    users = [uuid.uuid4() for _ in range(USERS)]
    store = Store(users)
    cache = CredentialCache(store.read, MAX_AGE_S)
    watched = users[0]
    outcomes: list[tuple[float, bool]] = []  # for the watched user: when each check began, and whether it held
    changed_at = 0.0

    async def page(user: uuid.UUID, until: float) -> None:
        while time.monotonic() < until:
            began = time.monotonic()
            try:
                await cache.check(user, 1)
                held = True
            except Unauthorized:
                held = False
            if user == watched:
                outcomes.append((began, held))
            await asyncio.sleep(0.01)

    async def sign_out_elsewhere() -> None:  # as another instance would: in the database only
        nonlocal changed_at
        await asyncio.sleep(1.0)
        changed_at = time.monotonic()
        store.versions[watched] = 2

    until = time.monotonic() + 2.0
    await asyncio.gather(sign_out_elsewhere(), *(page(user, until) for user in users))

    after = [held for began, held in outcomes if began >= changed_at + MAX_AGE_S]
    assert after and not any(after), 'a check that began past the age after the change was answered from before it'
    assert any(held for began, held in outcomes if began < changed_at), outcomes[:5]
    # Each user alone, re-read every age: 50 users × 2 s / 0.2 s = 500 reads. Together: the 50 first reads, then a
    # shared read every quarter of the age at most (and a lone one for a check that could not wait).
    assert len(store.reads) <= USERS + 2.0 / (MAX_AGE_S / 4) + 10, len(store.reads)
    assert max(count for _, count in store.reads) > USERS // 2, 'the users falling due were read together'


async def test_a_user_who_does_not_exist_is_refused() -> None:
    cache = CredentialCache(Store([]).read, MAX_AGE_S)
    with pytest.raises(Unauthorized):
        await cache.check(uuid.uuid4(), 1)
