"""Users: onboarding, the profile and token rotation."""

import uuid

from fastapi import APIRouter, Request

from api.deps import CurrentUser, ServicesDep
from api.schemas import OnboardIn, OnboardOut, ProfileOut, ProfilePatchIn, TokenOut
from services.access.rate_limit import client_address
from services.container import Services
from services.core.errors import NotFound
from services.core.models import User

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
    return profile_of(user, services)


@router.patch('/profile/{user_id}')
def change_profile(user_id: uuid.UUID, body: ProfilePatchIn, user: CurrentUser, services: ServicesDep) -> ProfileOut:
    """The user's default language: their recordings are transcribed in it, skipping detection (null: detected)."""
    if user_id != user.id:
        raise NotFound('user not found')
    if 'language' in body.model_fields_set:
        user = services.users.set_language(user.id, body.language)
    return profile_of(user, services)


def profile_of(user: User, services: Services) -> ProfileOut:
    count = services.users.recording_count(user.id)
    return ProfileOut(
        user_id=user.id, name=user.name, created_at=user.created_at, recording_count=count, language=user.language
    )


@router.post('/token/rotate')
def rotate_token(user: CurrentUser, services: ServicesDep) -> TokenOut:
    """A new token for the caller; the one used for this call is revoked."""
    return TokenOut(token=services.users.rotate_token(user.id))
