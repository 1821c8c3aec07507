"""The one seam to NiceGUI's internals: everything the app relies on that NiceGUI does not promise to keep.

tests/test_nicegui_seam.py checks each of these against the installed NiceGUI, so an upgrade that changes one
fails there by name instead of in a user's browser.

Server side (this module is the only Python code that touches them):
- `nicegui.core.sio`: NiceGUI's python-socketio `AsyncServer`. The audio channel adds its `/vr` namespace to it,
  so audio shares the page's websocket (one connection, one port, through any proxy that passes NiceGUI).
- `core.sio.eio.max_http_buffer_size`: engine.io's cap on one message, which is also a long-polling request's
  body; the body-size middleware lets socket requests through up to it.
- `SOCKET_PREFIX` (`/_nicegui_ws/`): where NiceGUI mounts that server; the middleware recognises socket traffic
  by it, and socket.io clients (tests, bench) connect to `/_nicegui_ws/socket.io`.

Browser side (assets/recorder/audio_channel.mjs, the recorder's one module that touches them):
- `window.socket`: the socket.io client NiceGUI's `nicegui.js` opens for the page. The recorder opens `/vr`
  on its manager (`window.socket.io.socket('/vr', ...)`) rather than a connection of its own.
- NiceGUI's `connect_error` handler on `window.socket`, which reloads the page when the reconnect times out
  (the server forgot the page's client). The recorder takes it off (`listeners`/`off`) and calls it only once no
  audio is left unsent, so a reload never drops a recording.
- `#popup`: NiceGUI's "Connection lost" notice, which the recorder hides while it defers that reload.
"""

import socketio
from nicegui import core

SOCKET_PREFIX = '/_nicegui_ws/'


def socket_server() -> socketio.AsyncServer:
    """Read at call time: NiceGUI creates the server when `nicegui.nicegui` is imported, not `nicegui.core`."""
    return core.sio


def socket_message_limit() -> int:
    """The most bytes engine.io accepts in one message, and so in one long-polling request body."""
    return int(core.sio.eio.max_http_buffer_size)
