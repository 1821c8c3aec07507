"""The NiceGUI internals listed in api/nicegui_internals.py are still there and still behave as the app expects.

A NiceGUI upgrade that changes one fails here, naming it, rather than as lost audio in a user's browser.
"""

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import nicegui
import pytest
import socketio
from nicegui import app
from nicegui import run as nicegui_run
from starlette.routing import Mount

from api.audio_channel import NAMESPACE, AudioChannel
from api.nicegui_internals import SOCKET_PREFIX, size_page_thread_pool, socket_message_limit, socket_server
from services.container import Services, build_services
from services.core.config import Settings
from tests.support.app_server import AppServer

NICEGUI = Path(nicegui.__file__).parent
UPGRADED = f'NiceGUI {nicegui.__version__} changed what api/nicegui_internals.py relies on'


def shipped(relative_path: str) -> str:
    path = NICEGUI / relative_path
    assert path.is_file(), f'{UPGRADED}: it no longer ships {relative_path}'
    return path.read_text(encoding='utf-8')


def block_after(text: str, marker: str) -> str:
    """The `{ ... }` block that follows `marker`, by brace counting (enough for NiceGUI's own formatted source)."""
    start = text.index('{', text.index(marker))
    depth = 0
    for end in range(start, len(text)):
        depth += {'{': 1, '}': -1}.get(text[end], 0)
        if depth == 0:
            return text[start : end + 1]
    raise AssertionError(f'no end to the block after {marker!r}')


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(Settings(_env_file=None, data_dir=tmp_path / 'data', secret='s' * 32))
    yield built
    built.close()


def test_the_socket_server_is_python_socketios_with_an_engineio_message_cap() -> None:
    server = socket_server()
    assert isinstance(server, socketio.AsyncServer), f'{UPGRADED}: core.sio is a {type(server)!r}'
    cap = getattr(getattr(server, 'eio', None), 'max_http_buffer_size', None)
    assert isinstance(cap, int) and cap > 0, f'{UPGRADED}: core.sio.eio.max_http_buffer_size is {cap!r}'
    assert socket_message_limit() == cap


def test_the_socket_server_is_mounted_where_clients_and_the_middleware_look_for_it() -> None:
    mounts = {route.path: route.app for route in app.routes if isinstance(route, Mount)}
    mounted = mounts.get(SOCKET_PREFIX.rstrip('/'))
    assert mounted is not None, f'{UPGRADED}: nothing is mounted at {SOCKET_PREFIX}; mounts are {sorted(mounts)}'
    served = getattr(mounted, 'engineio_server', None)
    assert served is socket_server(), f'{UPGRADED}: {SOCKET_PREFIX} serves {served!r}, not core.sio'
    assert f'{SOCKET_PREFIX}socket.io' in shipped('static/nicegui.js'), f'{UPGRADED}: the page connects elsewhere'


def test_the_audio_channel_registers_its_events_on_niceguis_server(services: Services) -> None:
    server = socket_server()
    before = server.handlers.get(NAMESPACE)
    try:
        AudioChannel(services, server).register()
        registered = set(server.handlers.get(NAMESPACE, {}))
    finally:  # leave NiceGUI's server as this test found it
        if before is None:
            server.handlers.pop(NAMESPACE, None)
        else:
            server.handlers[NAMESPACE] = before
    assert registered == {'connect', 'disconnect', 'create', 'chunk', 'finalize', 'status'}, (
        f'{UPGRADED}: /vr has {registered}'
    )


def test_the_page_script_keeps_its_socket_on_window_socket() -> None:
    script = shipped('static/nicegui.js')
    assert re.search(r'window\.socket\s*=\s*io\(', script), (
        f'{UPGRADED}: nicegui.js no longer assigns window.socket = io(...); the recorder opens /vr on that client'
    )


def test_the_page_script_reloads_from_a_connect_error_handler_on_window_socket() -> None:
    """The recorder lifts these handlers off with `listeners('connect_error')` and defers them while audio is unsent."""
    script = shipped('static/nicegui.js')
    assert 'connect_error:' in script, f'{UPGRADED}: nicegui.js has no connect_error handler for the recorder to wrap'
    handler = block_after(script, 'connect_error:')
    assert 'window.location.reload()' in handler, f'{UPGRADED}: its connect_error handler no longer reloads the page'
    registration = block_after(script, 'Object.entries(messageHandlers)')
    assert re.search(r'window\.socket\.on\(\s*event\b', registration), (
        f'{UPGRADED}: the messageHandlers (connect_error among them) are no longer added with window.socket.on, '
        'so socket.listeners("connect_error") would not find NiceGUI\'s handler'
    )
    assert 'connect_error' in block_after(script, 'const messageHandlers'), (
        f'{UPGRADED}: connect_error is no longer one of the messageHandlers added to window.socket'
    )


def test_the_page_script_finds_an_elements_dom_node_with_get_html_element() -> None:
    """The waveform and the transcript find their recording's <audio> by its NiceGUI id through this global."""
    script = shipped('static/nicegui.js')
    assert re.search(r'^function getHtmlElement\(id\)', script, re.MULTILINE), (
        f'{UPGRADED}: nicegui.js no longer defines a global getHtmlElement(id); waveform.js and transcript.js use it'
    )
    assert 'document.getElementById' in block_after(script, 'function getHtmlElement(id)'), (
        f'{UPGRADED}: getHtmlElement no longer returns the DOM node (document.getElementById)'
    )


def test_the_connection_lost_notice_is_still_the_popup_element() -> None:
    assert 'id="popup"' in shipped('templates/index.html'), (
        f'{UPGRADED}: no #popup in its page template; the recorder hides that notice while it defers a reload'
    )


def test_the_served_app_frames_websockets_with_websockets_sansio_and_no_compression(tmp_path: Path) -> None:
    """main.py serves NiceGUI through `ui.run_with` on a uvicorn of its own: `ui.run` would pin the pure-Python
    wsproto. Audio does not deflate, so per-message compression is declined in the handshake."""
    server = AppServer(tmp_path / 'data').start()
    try:
        with socket.create_connection(('127.0.0.1', server.port), timeout=10) as connection:
            connection.sendall(
                (
                    f'GET {SOCKET_PREFIX}socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n'
                    f'Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
                    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n'
                ).encode()
            )
            head = connection.recv(4096).decode(errors='replace').split('\r\n\r\n')[0]
    finally:
        server.stop()
    assert head.startswith('HTTP/1.1 101'), head
    assert 'permessage-deflate' not in head.lower(), head
    assert 'WebSocketsSansIOProtocol' in server.log(), server.log()


async def test_page_actions_run_on_the_pool_the_app_sizes() -> None:
    original = nicegui_run.thread_pool
    try:
        size_page_thread_pool(7)
        assert nicegui_run.thread_pool is not original, f'{UPGRADED}: run.thread_pool is not replaceable'
        names = await asyncio.gather(*(nicegui_run.io_bound(lambda: threading.current_thread().name) for _ in range(3)))
        assert all(str(name).startswith('page-io') for name in names), f'{UPGRADED}: io_bound ran on {names}'
    finally:
        size_page_thread_pool(original._max_workers)  # the original is shut down: later tests get a pool like it
