"""What each audio channel event carries, validated like a REST body and refused in plain words.

Types are strict, as the hand-written checks they replace were: `True` is no seq, text is no chunk. Unknown keys
are ignored, so a page loaded before an upgrade keeps working: browsers send `time_zone` with `create`, which the
server no longer reads (the page learns it from the recorder's `started` event instead).
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictBytes, StrictInt, StrictStr, ValidationError

from api.schemas import MAX_SEQ
from services.core.errors import InvalidInput, NotFound


class ChannelPayload(BaseModel):
    model_config = ConfigDict(extra='ignore', frozen=True)
    # The answer for a field that fails validation; a bad `recording_id` is answered as an unknown recording.
    problems: ClassVar[dict[str, str]] = {}


class CreatePayload(ChannelPayload):
    problems = {
        'mime_type': 'mime_type and title must be text',
        'title': 'mime_type and title must be text',
        'title_is_default': 'title_is_default must be true or false',
        'file_size_bytes': "file_size_bytes must be the file's size in bytes",
        'file_modified_at': 'file_modified_at must be a date and time',
    }

    mime_type: StrictStr
    title: StrictStr | None = None
    # The recorder's own default title ("Recording <local date and time>"): the transcript's words replace it.
    title_is_default: StrictBool = False
    # An import (pages/importer.py): the file's size and last-modified time; its chunks are the file's bytes.
    file_size_bytes: Annotated[StrictInt, Field(ge=0, le=2**53)] | None = None
    file_modified_at: datetime | None = None


class ChunkPayload(ChannelPayload):
    problems = {'seq': f'seq must be a whole number from 0 to {MAX_SEQ}', 'data': 'a chunk needs binary data'}

    recording_id: uuid.UUID
    seq: Annotated[StrictInt, Field(ge=0, le=MAX_SEQ)]
    data: StrictBytes


class FinalizePayload(ChannelPayload):
    # Within the bounds any recording could reach; the finalizer judges it against this recording's limit.
    problems = {'chunk_count': f'chunk_count must be between 0 and {MAX_SEQ + 1}, a whole number'}

    recording_id: uuid.UUID
    chunk_count: Annotated[StrictInt, Field(ge=0, le=MAX_SEQ + 1)]


class StatusPayload(ChannelPayload):
    recording_id: uuid.UUID


Payload = TypeVar('Payload', bound=ChannelPayload)


def parse_payload(payload_type: type[Payload], payload: dict[str, Any]) -> Payload:
    """A bad field other than the id is answered first (in declaration order, as the old checks ran); a bad id
    means no such recording."""
    try:
        return payload_type.model_validate(payload)
    except ValidationError as error:
        fields = [str(problem['loc'][0]) for problem in error.errors() if problem['loc']]
    for field in fields:
        if field != 'recording_id':
            raise InvalidInput(payload_type.problems.get(field, f'{field} is not valid'))
    raise NotFound('recording not found')
