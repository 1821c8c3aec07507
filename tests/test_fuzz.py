"""Schemathesis fuzzes every API operation from the OpenAPI schema: no input may cause a server error."""

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from api import create_router, install_error_handler
from services.container import Services

from .conftest import UserFactory

EXAMPLES_PER_OPERATION = 40


def test_no_input_causes_a_server_error(services: Services, make_user: UserFactory) -> None:
    services.rate_limits.api.amount = 1_000_000
    app = FastAPI()
    app.include_router(create_router(services))
    install_error_handler(app)
    _, auth = make_user.with_auth('Fuzzer')
    schema = schemathesis.openapi.from_asgi('/openapi.json', app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=auth)
            assert response.status_code < 500, f'{case.method} {case.formatted_path} → {response.status_code}'

        fuzz()
