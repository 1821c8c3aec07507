"""Schemathesis fuzzes the REST API as production serves it (`main.install_api`: its middleware, limits and error
rendering): no input may cause a server error or a logged traceback, and every answer, errors included, must
match the schema.

Random ids only reach a 404, so safe operations also get the ids of real recordings and shares, operations that
read Range get byte ranges (tests/support/api_fuzzing.py), and stateful runs follow a client's workflow: create,
chunks, finalize, share, delete.
"""

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.media_types import MEDIA_TYPE_STRATEGIES
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.audio_payloads import ChannelPayload
from services.container import Services
from tests.conftest import UserFactory, record
from tests.support.api_fuzzing import add_workflow_links, send_what_clients_send
from tests.support.audio_samples import split
from web import install_api

# Every run draws new examples (no example database, no fixed seed), so what the fuzzer has tried grows with each CI
# run; these are one run's share, sized so the two backends' runs cost about a minute of CPU together.
EXAMPLES_PER_OPERATION = 20
WORKFLOWS = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
BACKENDS = pytest.mark.parametrize(
    ('database_kind', 'storage_kind'), [('sqlite', 'local'), ('postgresql', 's3')], indirect=True
)
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@dataclass
class World:
    """The production app's schema, a fuzzer signed in to it, and real things to point at."""

    schema: BaseSchema
    auth: dict[str, str]
    user_id: uuid.UUID
    recording_ids: list[uuid.UUID]  # a ready one and one still taking chunks
    share_id: uuid.UUID


@pytest.fixture
def world(services: Services, make_user: UserFactory, webm_5s: bytes) -> Iterator[World]:
    services.rate_limits.api.amount = services.rate_limits.onboard.amount = 1_000_000
    fuzzer, auth = make_user.with_auth('Fuzzer')
    ready = record(services, fuzzer.id, webm_5s, title='Ready')
    open_one = services.recordings.create(user_id=fuzzer.id, mime_type='audio/webm', title='Open')
    services.chunks.add_chunk(user_id=fuzzer.id, recording_id=open_one.id, seq=0, data=webm_5s[:6000])
    share = services.shares.create(user_id=fuzzer.id, recording_id=ready.id, lifetime=timedelta(hours=1))
    app = FastAPI()
    install_api(app, services)
    add_workflow_links(app.openapi())  # the schema /openapi.json serves is this one, cached
    schema = schemathesis.openapi.from_asgi('/openapi.json', app)
    send_what_clients_send(schema)
    pieces = split(webm_5s, 6000)  # the first alone is a short recording: a workflow can get as far as sharing
    chunks = st.one_of(st.just(pieces[0]), st.sampled_from(pieces[1:3]), st.binary(max_size=2048))
    schemathesis.openapi.media_type('application/octet-stream', chunks)
    yield World(schema, auth, fuzzer.id, [ready.id, open_one.id], share.id)
    MEDIA_TYPE_STRATEGIES.pop('application/octet-stream', None)


@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)
def test_every_number_a_client_sends_has_bounds(services: Services) -> None:
    """An unbounded number is where a huge one hides (an offset past 64 bits, a seq past the column) and, being
    valid, where the fuzzer never looks: every one the API or the audio channel reads has a range."""
    app = FastAPI()
    install_api(app, services)
    openapi = app.openapi()
    inputs = [
        (f'{method.upper()} {path} {part.get("name", "body")}', part['schema'])
        for path, operations in openapi['paths'].items()
        for method, operation in operations.items()
        for part in [*operation.get('parameters', []), *operation.get('requestBody', {}).get('content', {}).values()]
    ]
    inputs += [(f'/vr {model.__name__}', model.model_json_schema()) for model in ChannelPayload.__subclasses__()]
    unbounded = [where for where, schema in inputs for number in numbers_in(schema, openapi) if not bounded(number)]
    assert not unbounded, unbounded


def numbers_in(schema: dict[str, Any], openapi: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if '$ref' in schema:
        schema = openapi['components']['schemas'][schema['$ref'].rsplit('/', 1)[-1]]
    if schema.get('type') in ('integer', 'number'):
        yield schema
    inner = [*schema.get('anyOf', []), *schema.get('oneOf', []), *schema.get('allOf', [])]
    inner += [*schema.get('properties', {}).values(), *([schema['items']] if 'items' in schema else [])]
    for part in inner:
        yield from numbers_in(part, openapi)


def bounded(number: dict[str, Any]) -> bool:
    return bool({'minimum', 'exclusiveMinimum'} & number.keys() and {'maximum', 'exclusiveMaximum'} & number.keys())


@BACKENDS
def test_no_input_causes_a_server_error_or_an_answer_off_the_schema(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    operations = [result.ok() for result in world.schema.get_all_operations()]
    assert len(operations) >= 19
    for operation in operations:
        fuzz(operation, GenerationMode.POSITIVE, world)
        with contextlib.suppress(Unsatisfiable):  # an operation with nothing to get wrong has no invalid cases
            fuzz(operation, GenerationMode.NEGATIVE, world)
    assert not [record for record in caplog.records if record.exc_info], 'a traceback was logged'


@BACKENDS
def test_no_workflow_causes_a_server_error_or_an_answer_off_the_schema(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.schema.config.phases.stateful.inference.algorithms = []  # the links say it; inference guesses wrongly

    class Workflow(world.schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {'headers': world.auth}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            kwargs.pop('additional_checks', None)
            checks = [*CHECKS, negative_data_rejection]  # a step may be an invalid request too
            case.validate_response(response, checks=checks, transport_kwargs=kwargs or None, recorder=self.recorder)
            keep_signed_in(world, case, response)

    try:
        Workflow.run(settings=settings(FUZZ, max_examples=WORKFLOWS, stateful_step_count=15))
    except FlakyStrategyDefinition:
        # Not a finding: the workflows share one server whose state (recordings, limits) the earlier ones changed, so
        # a prefix Hypothesis tries again can enable other steps, which its bookkeeping refuses (one CI run of
        # ~15). A failed check raises something else. The whole run again, once, from fresh draws.
        Workflow.run(settings=settings(FUZZ, max_examples=WORKFLOWS, stateful_step_count=15))
    assert not [record for record in caplog.records if record.exc_info], 'a traceback was logged'


def fuzz(operation: APIOperation, mode: GenerationMode, world: World) -> None:
    """Valid cases get real things and the signed-in user's token; invalid ones must also be refused with a 4xx."""
    checks = CHECKS if mode.is_positive else [*CHECKS, negative_data_rejection]

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @FUZZ
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode.is_positive:  # a negative case keeps what makes it invalid
            point_at_real_things(case, world, data)
        if data.draw(st.integers(0, 4)):  # mostly as the signed-in user; otherwise with what was generated
            case.headers['authorization'] = world.auth['Authorization']
        response = case.call_and_validate(checks=checks)
        keep_signed_in(world, case, response)

    run()


def point_at_real_things(case: schemathesis.Case, world: World, data: st.DataObject) -> None:
    """Give a safe operation real ids, sometimes: that is where the bugs live, not behind a 404."""
    if case.method.upper() != 'GET':
        return
    for name, ids in (('recording_id', world.recording_ids), ('share_id', [world.share_id]), ('user_id', [])):
        if name in case.path_parameters:
            case.path_parameters[name] = data.draw(st.sampled_from([*ids, world.user_id, case.path_parameters[name]]))


def keep_signed_in(world: World, case: schemathesis.Case, response: Any) -> None:
    """Rotating the token revokes the one the fuzzer holds: carry on with the new one, as a client would."""
    if case.path == '/api/token/rotate' and response.status_code == 200:
        world.auth = {'Authorization': f'Bearer {response.json()["token"]}'}
