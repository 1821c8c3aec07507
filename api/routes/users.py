"""Users: onboarding, the profile and token rotation."""

import uuid

from fastapi import APIRouter, Request

from api.deps import CurrentUser, ServicesDep
from api.schemas import OnboardIn, OnboardOut, ProfileOut, TokenOut
from services.access.rate_limit import client_address
from services.core.errors import NotFound

router = APIRouter()


@router.post('/onboard', status_code=201)
def onboard(body: OnboardIn, request: Request, services: ServicesDep) -> OnboardOut:
    peer = request.client.host if request.client else None
    forwarded = request.headers.get('x-forwarded-for')
    services.rate_limits.onboard.hit(client_address(peer, forwarded, services.settings.trusted_proxy_count))
    user, token = services.users.onboard(name=body.name)
    return OnboardOut(user_id=user.id, name=user.name, token=token)


@router.get('/profile/{user_id}')
def profile(user_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> ProfileOut:
    if user_id != user.id:
        raise NotFound('user not found')
    count = services.users.recording_count(user.id)
    return ProfileOut(user_id=user.id, name=user.name, created_at=user.created_at, recording_count=count)


@router.post('/token/rotate')
def rotate_token(user: CurrentUser, services: ServicesDep) -> TokenOut:
    """A new token for the caller; the one used for this call is revoked."""
    return TokenOut(token=services.users.rotate_token(user.id))
