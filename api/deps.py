"""What routes depend on: the services container, and the caller named by the bearer token.

The container travels with the request, not in a module global: `create_router(services)` puts
`provide_services(services)` on its router, a router dependency that FastAPI solves before a route's own, and
`ServicesDep` reads it back from `request.state`. So two apps in one process (as the tests build, one per backend)
each keep their own services, and main.py keeps calling `create_router(services)` unchanged.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from services.container import Services
from services.core.errors import Unauthorized
from services.core.models import User


def provide_services(services: Services) -> Callable[[Request], None]:
    """The router dependency that hands each request the container its router was made with."""

    def attach(request: Request) -> None:
        request.state.services = services

    return attach


def get_services(request: Request) -> Services:
    services = getattr(request.state, 'services', None)
    if not isinstance(services, Services):
        raise RuntimeError('no services on this request: include the routes through api.create_router(services)')
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def authenticate(services: Services, authorization: str | None) -> User:
    """The bearer token's user, counted against the API rate limit; also called where a signed link may stand in."""
    scheme, _, token = (authorization or '').partition(' ')
    if scheme.lower() != 'bearer' or not token.strip():
        raise Unauthorized('missing bearer token')
    user = services.users.authenticate(token.strip())
    services.rate_limits.api.hit(user.id)
    return user


def current_user(services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> User:
    return authenticate(services, authorization)


CurrentUser = Annotated[User, Depends(current_user)]
