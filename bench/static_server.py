"""The playback baseline: one file through starlette's FileResponse (which does Range) on uvicorn, nothing else."""

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route


def create_app(path: str, media_type: str) -> Starlette:
    async def audio(_request: Request) -> FileResponse:
        return FileResponse(path, media_type=media_type)

    return Starlette(routes=[Route('/audio', audio)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--file', required=True)
    parser.add_argument('--media-type', default='audio/webm')
    args = parser.parse_args()
    uvicorn.run(create_app(args.file, args.media_type), host='127.0.0.1', port=args.port, log_level='warning')


if __name__ == '__main__':
    main()
