"""What the fuzzer needs beyond the API's own schema: byte ranges as players and attackers send them, and the
workflow a client follows (create, chunks, finalize, share, delete) as OpenAPI links for stateful runs."""

from functools import partial
from typing import Any

from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from schemathesis import Case
from schemathesis.hooks import HookContext
from schemathesis.schemas import BaseSchema

# Positions as players send them, and absurd ones: past 64 bits, past Python's 4300-digit int(), zero-padded.
LONG = st.integers(19, 40) | st.integers(4290, 4500)
POSITIONS = st.one_of(
    st.just(''),
    st.integers(0, 10**7).map(str),
    LONG.map(lambda digits: '9' * digits),
    LONG.map(lambda zeros: '0' * zeros + '7'),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
BYTE_RANGES = st.one_of(st.builds('bytes={}-{}'.format, POSITIONS, POSITIONS), HEADER_TEXT)
IF_RANGES = st.sampled_from(['"abc"', 'W/"abc"', 'Wed, 21 Oct 2015 07:28:00 GMT', '']) | HEADER_TEXT

MIME_TYPES = ['audio/webm;codecs=opus', 'audio/webm']  # what the fixture's chunks are
RECORDING = '/api/recordings/{recording_id}'
CHUNK = f'PUT {RECORDING}/chunks/{{seq}}'
SHARE_AUDIO = 'GET /api/shares/{share_id}/audio'
BODY = {'recording_id': '$response.body#/id'}
PATH = {'recording_id': '$request.path.recording_id'}
# Where a client goes next from each answer, with what that answer (or its request) named: (target, parameters).
WORKFLOW: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = {
    ('POST /api/recordings', 201): [
        (CHUNK, {**BODY, 'seq': 0}),
        (f'POST {RECORDING}/finalize', BODY),
        (f'PATCH {RECORDING}', BODY),
        (f'DELETE {RECORDING}', BODY),
    ],
    (CHUNK, 200): [
        (CHUNK, {**PATH, 'seq': 0}),  # sent again, as after a lost answer
        (CHUNK, {**PATH, 'seq': 1}),
        (CHUNK, {**PATH, 'seq': 2}),
        (f'POST {RECORDING}/finalize', PATH),
        (f'POST {RECORDING}/finalize', PATH),
    ],
    (f'POST {RECORDING}/finalize', 200): [
        (f'GET {RECORDING}/audio', BODY),
        (f'GET {RECORDING}/transcript', BODY),
        (f'POST {RECORDING}/mp3', BODY),
        (f'POST {RECORDING}/shares', BODY),
        (f'POST {RECORDING}/shares', BODY),
        (f'DELETE {RECORDING}', BODY),
    ],
    (f'PATCH {RECORDING}', 200): [(CHUNK, {**BODY, 'seq': 0}), (f'POST {RECORDING}/shares', BODY)],
    (f'POST {RECORDING}/shares', 201): [
        (SHARE_AUDIO, {'share_id': '$response.body#/id'}),
        (SHARE_AUDIO, {'share_id': '$response.body#/id'}),
        (f'DELETE {RECORDING}/shares/{{share_id}}', {**PATH, 'share_id': '$response.body#/id'}),
        (f'DELETE {RECORDING}', PATH),
    ],
    (f'DELETE {RECORDING}/shares/{{share_id}}', 204): [(SHARE_AUDIO, {'share_id': '$request.path.share_id'})],
    (f'DELETE {RECORDING}', 204): [
        (f'GET {RECORDING}', PATH),
        (f'GET {RECORDING}/audio', PATH),
        (CHUNK, {**PATH, 'seq': 0}),
    ],
}


def add_workflow_links(openapi: dict[str, Any]) -> None:
    """Write WORKFLOW into the schema as OpenAPI links, the form schemathesis's state machine follows."""
    for (source, status), steps in WORKFLOW.items():
        method, path = source.split(' ')
        links = openapi['paths'][path][method.lower()]['responses'][str(status)].setdefault('links', {})
        for target, parameters in steps:
            target_method, target_path = target.split(' ')
            pointer = target_path.replace('~', '~0').replace('/', '~1')
            links[f'step{len(links)}'] = {
                'operationRef': f'#/paths/{pointer}/{target_method.lower()}',
                'parameters': parameters,
            }


def send_what_clients_send(schema: BaseSchema) -> None:
    """Valid cases get byte ranges (and sometimes an If-Range) wherever Range is read, and a recorder's audio type
    when creating a recording: random text is refused at once and would never reach what follows. Invalid cases
    keep what makes them invalid."""

    @schema.hook
    def flatmap_case(context: HookContext, case: Case) -> st.SearchStrategy[Case]:
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return st.just(case)
        if any(p.name == 'range' for p in case.operation.headers):
            return st.builds(partial(with_ranges, case), st.none() | BYTE_RANGES, st.none() | IF_RANGES)
        if case.operation.label == 'POST /api/recordings' and isinstance(case.body, dict):
            return st.builds(partial(with_mime_type, case), st.none() | st.sampled_from(MIME_TYPES))
        return st.just(case)


def with_ranges(case: Case, byte_range: str | None, if_range: str | None) -> Case:
    headers = {key: value for key, value in (case.headers or {}).items() if key.lower() not in ('range', 'if-range')}
    if byte_range is not None:
        headers['range'] = byte_range
    if if_range is not None:  # whatever it holds makes the server ignore the Range
        headers['if-range'] = if_range
    case.headers = CaseInsensitiveDict(headers)
    return case


def with_mime_type(case: Case, mime_type: str | None) -> Case:
    if mime_type is not None:
        case.body = {**case.body, 'mime_type': mime_type}
    return case
