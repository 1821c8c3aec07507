"""The REST API beside the pages: thin routes over the same services the pages use."""

from fastapi import APIRouter, Depends

from api.deps import provide_services
from api.errors import ERROR_RESPONSES, install_error_handler
from api.routes import audio, health, recordings, shares, transcripts, users
from services.container import Services

__all__ = ['create_router', 'install_error_handler']

ROUTE_MODULES = (users, recordings, audio, transcripts, shares, health)


def create_router(services: Services) -> APIRouter:
    """Every route under /api, each request handed `services` (deps.py says why it travels with the request)."""
    router = APIRouter(
        prefix='/api', tags=['api'], dependencies=[Depends(provide_services(services))], responses=ERROR_RESPONSES
    )
    for module in ROUTE_MODULES:
        router.include_router(module.router)
    return router
