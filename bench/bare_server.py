"""The baseline: a bare python-socketio server on uvicorn that takes the same messages and acknowledges at once.

Same stack as NiceGUI's websocket (python-socketio's ASGI app on uvicorn, same socket.io path) minus NiceGUI
and minus storage, so the ratio to it is what our page framework and durable storage cost.
"""

import argparse
import uuid
from typing import Any

import socketio
import uvicorn

from .page_client import AUDIO_NAMESPACE, SOCKET_PATH


def create_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode='asgi', cors_allowed_origins='*')

    @sio.on('create', namespace=AUDIO_NAMESPACE)
    async def create(_sid: str, _payload: Any) -> dict[str, Any]:
        return {'ok': True, 'recording_id': str(uuid.uuid4())}

    @sio.on('chunk', namespace=AUDIO_NAMESPACE)
    async def chunk(_sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {'ok': True, 'seq': payload['seq'], 'size': len(payload['data'])}

    return socketio.ASGIApp(sio, socketio_path=SOCKET_PATH)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host='127.0.0.1', port=args.port, log_level='warning')


if __name__ == '__main__':
    main()
