"""Raw request bodies, read with a cap."""

from fastapi import Request

from services.core.errors import ChunkTooLarge


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read the body but stop at `limit`, so an oversize upload costs us no more than the limit."""
    declared = request.headers.get('content-length')
    if declared and declared.isdigit() and int(declared) > limit:
        raise ChunkTooLarge(f'the chunk is {declared} bytes; at most {limit} are accepted')
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ChunkTooLarge(f'the chunk is larger than the {limit} bytes accepted')
    return bytes(body)
