"""The import baseline: a plain HTTP upload of a whole file, streamed to disk and fsynced, on uvicorn."""

import argparse
import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def create_app(folder: str) -> Starlette:
    async def upload(request: Request) -> PlainTextResponse:
        size = 0
        with open(os.path.join(folder, 'upload.bin'), 'wb') as target:
            async for piece in request.stream():
                target.write(piece)
                size += len(piece)
            target.flush()
            os.fsync(target.fileno())
        return PlainTextResponse(str(size))

    return Starlette(routes=[Route('/upload', upload, methods=['PUT'])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--folder', required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.folder), host='127.0.0.1', port=args.port, log_level='warning')


if __name__ == '__main__':
    main()
