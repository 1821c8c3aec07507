"""The baselines: a bare python-socketio server on uvicorn that takes the same messages and acknowledges them.

Same stack as NiceGUI's websocket (python-socketio's ASGI app on uvicorn, same socket.io path) minus NiceGUI.
Bare, it acknowledges at once: the ratio to it is what the page framework and durable storage cost. With
`--durable FOLDER` it first appends the chunk to its recording's file and fsyncs it in a thread: the least a
server can do before it may say "stored", so the ratio to that one is the distance to the durable limit.
"""

import argparse
import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import socketio
import uvicorn

from bench.page_client import AUDIO_NAMESPACE, SOCKET_PATH


def append_durably(folder: Path, recording_id: str, data: bytes) -> None:
    descriptor = os.open(folder / recording_id, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def create_app(durable_folder: Path | None = None) -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode='asgi', cors_allowed_origins='*')

    @sio.on('create', namespace=AUDIO_NAMESPACE)
    async def create(_sid: str, _payload: Any) -> dict[str, Any]:
        return {'ok': True, 'recording_id': str(uuid.uuid4())}

    @sio.on('chunk', namespace=AUDIO_NAMESPACE)
    async def chunk(_sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        if durable_folder is not None:
            recording_id = str(uuid.UUID(str(payload['recording_id'])))
            await asyncio.to_thread(append_durably, durable_folder, recording_id, payload['data'])
        return {'ok': True, 'seq': payload['seq'], 'size': len(payload['data'])}

    return socketio.ASGIApp(sio, socketio_path=SOCKET_PATH)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--durable', type=Path, help='append and fsync every chunk in this folder before the ack')
    args = parser.parse_args()
    if args.durable:
        args.durable.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(args.durable), host='127.0.0.1', port=args.port, log_level='warning', ws='websockets-sansio')


if __name__ == '__main__':
    main()
