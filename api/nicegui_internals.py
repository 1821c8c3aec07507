"""The one seam to NiceGUI's internals: everything the app relies on that NiceGUI does not promise to keep.

tests/test_nicegui_seam.py checks each of these against the installed NiceGUI, so an upgrade that changes one
fails there by name instead of in a user's browser.

Server side (this module is the only Python code that touches them):
- `nicegui.core.sio`: NiceGUI's python-socketio `AsyncServer`. The audio channel adds its `/vr` namespace to it,
  so audio shares the page's websocket (one connection, one port, through any proxy that passes NiceGUI).
- `core.sio.eio.max_http_buffer_size`: engine.io's cap on one message, which is also a long-polling request's
  body; the body-size middleware lets socket requests through up to it.
- The loggers `engineio.server` (a traceback for each socket message socket.io cannot decode: malformed JSON, a
  number orjson cannot hold) and `nicegui` (a warning with the whole URL for each URL not found): a client can
  cause either at will, so `quiet_client_mistakes` makes each one line per period, as for any client mistake.
- `SOCKET_PREFIX` (`/_nicegui_ws/`): where NiceGUI mounts that server; the middleware recognises socket traffic
  by it, and socket.io clients (tests, bench) connect to `/_nicegui_ws/socket.io`.
- `nicegui.run.thread_pool`: the executor `run.io_bound` sends page actions' blocking work to (by default
  min(32, cores + 4) threads: 6 on two cores). `size_page_thread_pool` replaces it with one of a chosen size.

Browser side (assets/recorder/audio_channel.mjs, the recorder's one module that touches them):
- `window.socket`: the socket.io client NiceGUI's `nicegui.js` opens for the page. The recorder opens `/vr`
  on its manager (`window.socket.io.socket('/vr', ...)`) rather than a connection of its own.
- NiceGUI's `connect_error` handler on `window.socket`, which reloads the page when the reconnect times out
  (the server forgot the page's client). The recorder takes it off (`listeners`/`off`) and calls it only once no
  audio is left unsent, so a reload never drops a recording.
- `#popup`: NiceGUI's "Connection lost" notice, which the recorder hides while it defers that reload.

Browser side (assets/waveform.js and assets/transcript.js):
- `getHtmlElement(id)`: nicegui.js's global that finds an element's DOM node by its NiceGUI id. The waveform and
  the transcript follow their recording's `<audio>` element through it.
"""

import logging
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import socketio
from nicegui import core, run

from api.throttled_log import ThrottledLog

SOCKET_PREFIX = '/_nicegui_ws/'
ENGINEIO_LOGGER = 'engineio.server'
NICEGUI_LOGGER = 'nicegui'
DECODING_MODULES = ('socketio.packet', 'engineio.packet')
log = logging.getLogger(__name__)


def socket_server() -> socketio.AsyncServer:
    """Read at call time: NiceGUI creates the server when `nicegui.nicegui` is imported, not `nicegui.core`."""
    return core.sio


def socket_message_limit() -> int:
    """The most bytes engine.io accepts in one message, and so in one long-polling request body."""
    return int(core.sio.eio.max_http_buffer_size)


def size_page_thread_pool(threads: int) -> None:
    """`run.io_bound` reads the module's pool at each call, so a new one serves every call from now on."""
    previous, run.thread_pool = run.thread_pool, ThreadPoolExecutor(threads, thread_name_prefix='page-io')
    previous.shutdown(wait=False)


class ClientMistakes(logging.Filter):
    """Lets a record through unless `mistake` says a client caused it; those become one line per period."""

    def __init__(self, mistake: Callable[[logging.LogRecord], str | None]) -> None:
        super().__init__()
        self.mistake = mistake
        self.throttled = ThrottledLog(10.0, log)

    def filter(self, record: logging.LogRecord) -> bool:
        summary = self.mistake(record)
        if summary is None:
            return True
        self.throttled.note(summary)
        return False


def undecodable_message(record: logging.LogRecord) -> str | None:
    error = record.exc_info[1] if record.exc_info else None
    if not isinstance(error, ValueError):
        return None
    frames = [frame for frame, _line in traceback.walk_tb(error.__traceback__)]
    in_decoder = any(frame.f_globals.get('__name__') in DECODING_MODULES for frame in frames)
    unknown_type = bool(frames) and frames[-1].f_code.co_name == '_handle_eio_message'
    return (
        f'dropped a socket message that could not be decoded: {str(error)[:200]}'
        if in_decoder or unknown_type
        else None
    )


def url_not_found(record: logging.LogRecord) -> str | None:
    message = record.getMessage()
    if record.levelno != logging.WARNING or not message.endswith(' not found'):
        return None
    return f'URL not found: {message.removesuffix(" not found")[:200]}'


def quiet_client_mistakes() -> None:
    """What NiceGUI's servers log for each mistake a client makes, one line per period: engine.io's traceback for
    a socket message it cannot decode, NiceGUI's warning (with the whole URL) for each URL not found."""
    for name, mistake in ((ENGINEIO_LOGGER, undecodable_message), (NICEGUI_LOGGER, url_not_found)):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, ClientMistakes) for existing in logger.filters):
            logger.addFilter(ClientMistakes(mistake))
