"""Group commit: concurrent callers share batches, and each learns its own outcome only after its batch is written."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.group_commit import GroupCommit


class Ledger:
    """A stand-in for the database: remembers what was committed, in which batch, slowly like an fsync."""

    def __init__(self, fail_items: set[int] | None = None, fail_batch: bool = False) -> None:
        self.committed: set[int] = set()
        self.batches: list[list[int]] = []
        self.fail_items = fail_items or set()
        self.fail_batch = fail_batch
        self.lock = threading.Lock()

    def write(self, items: list[int]) -> list[str | BaseException]:
        time.sleep(0.005)
        if self.fail_batch:
            raise OSError('disk gone')
        with self.lock:
            self.batches.append(items)
            self.committed.update(i for i in items if i not in self.fail_items)
        return [ValueError(f'bad {i}') if i in self.fail_items else f'ok {i}' for i in items]


def submit_all(group: GroupCommit[int, str], ledger: Ledger, count: int) -> list[str | BaseException]:
    def one(item: int) -> str | BaseException:
        try:
            result = group.submit(item)
        except (ValueError, OSError) as error:
            return error
        assert item in ledger.committed, 'returned before its row was committed'
        return result

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_callers_share_batches_and_each_gets_its_own_result() -> None:
    ledger = Ledger()
    results = submit_all(GroupCommit(ledger.write), ledger, 200)
    assert results == [f'ok {i}' for i in range(200)]
    assert sorted(i for batch in ledger.batches for i in batch) == list(range(200))
    assert max(len(batch) for batch in ledger.batches) > 1
    assert len(ledger.batches) < 200


def test_a_failed_item_fails_only_its_caller() -> None:
    ledger = Ledger(fail_items={3, 7})
    results = submit_all(GroupCommit(ledger.write), ledger, 20)
    assert [i for i, r in enumerate(results) if isinstance(r, ValueError)] == [3, 7]
    assert all(r == f'ok {i}' for i, r in enumerate(results) if i not in {3, 7})


def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    ledger = Ledger(fail_batch=True)
    group: GroupCommit[int, str] = GroupCommit(ledger.write)
    with pytest.raises(OSError, match='disk gone'):
        group.submit(1)
    ledger.fail_batch = False
    assert group.submit(2) == 'ok 2'
