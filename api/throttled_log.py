"""A log line that a client (or an overload) can cause thousands of times a second, written once per period."""

import logging
import time

log = logging.getLogger(__name__)


class ThrottledLog:
    """At most one line per period, with how many were left out since the last: writing each would cost more than
    the answer, and let one client fill the disk."""

    def __init__(self, every_s: float, logger: logging.Logger | None = None, *, level: int = logging.WARNING) -> None:
        self.every_s = every_s
        self.logger = logger or log
        self.level = level
        self._last_at = -every_s
        self._unlogged = 0

    def note(self, message: str) -> None:
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_at >= self.every_s:
            more = f' ({self._unlogged - 1} more since the last report)' if self._unlogged > 1 else ''
            self.logger.log(self.level, '%s%s', message, more)
            self._last_at, self._unlogged = now, 0
