"""Running test work in threads of its own, all at once, so races happen as they would between requests."""

import threading
from collections.abc import Callable
from typing import Any


def run_together(*work: Callable[[], Any]) -> None:
    """Start every callable at the same moment in a thread of its own; re-raise the first error."""
    if not work:
        return
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def run(job: Callable[[], Any]) -> None:
        try:
            start.wait()
            job()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
