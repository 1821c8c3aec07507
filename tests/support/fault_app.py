"""The real app with a storage that fails while a control file exists: a fault no real disk gives on demand."""

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.container import build_services, build_storage
from services.core.config import load_settings
from services.core.errors import ServiceUnavailable
from services.storage.protocol import Storage
from web import build_app, serve


class FlakyStorage:
    """Delegates to the real storage, except that writes and reads fail while `switch` exists."""

    def __init__(self, inner: Storage, switch: Path) -> None:
        self.inner = inner
        self.switch = switch

    def _check(self) -> None:
        if self.switch.exists():
            raise ServiceUnavailable('audio storage is unavailable (injected fault)')

    def put_bytes(self, key: str, data: bytes) -> None:
        self._check()
        self.inner.put_bytes(key, data)

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        self._check()
        self.inner.put_many(objects)

    def put_file(self, key: str, path: Path) -> None:
        self._check()
        self.inner.put_file(key, path)

    def copy_to(self, key: str, target: BinaryIO) -> int:
        self._check()
        return self.inner.copy_to(key, target)

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        self._check()
        return self.inner.iter_range(key, start, end)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete_prefix(self, prefix: str) -> int:
        self._check()
        return self.inner.delete_prefix(prefix)

    def list_children(self, prefix: str, *, after: str = '', limit: int = 1000) -> list[str]:
        return self.inner.list_children(prefix, after=after, limit=limit)

    def check(self) -> None:
        self._check()
        self.inner.check()

    def direct_url(self, key: str, *, content_type: str, download_name: str | None = None) -> str | None:
        return self.inner.direct_url(key, content_type=content_type, download_name=download_name)

    def close(self) -> None:
        self.inner.close()


def serve_with_flaky_storage(switch: Path) -> None:
    """As `python main.py` serves, but on a storage that fails while `switch` exists."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    settings = load_settings()
    build_app(build_services(settings, storage=FlakyStorage(build_storage(settings), switch)))
    serve(settings)


if __name__ == '__main__':
    serve_with_flaky_storage(Path(os.environ['VR_TEST_FAULT_SWITCH']))
