"""Users: onboarding, the profile and token rotation."""

import uuid

from fastapi import APIRouter, Request

from api.deps import CurrentUser, ServicesDep
from api.schemas import OnboardIn, OnboardOut, ProfileOut, ProfilePatchIn, TokenOut
from services.access.rate_limit import client_address
from services.access.users import ProfileChanges
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
    """The user's default language (their recordings are transcribed in it, skipping detection; null: detected),
    vocabulary (names and terms the model listens for) and live transcript switch. A change refused refuses the
    request: nothing is changed."""
    if user_id != user.id:
        raise NotFound('user not found')
    changes: ProfileChanges = {}
    if 'language' in body.model_fields_set:
        changes['language'] = body.language
    if 'vocabulary' in body.model_fields_set:
        changes['vocabulary'] = body.vocabulary or []
    if body.live_transcript is not None:
        changes['live_transcript'] = body.live_transcript
    return profile_of(services.users.change_profile(user.id, changes), services)


def profile_of(user: User, services: Services) -> ProfileOut:
    count = services.users.recording_count(user.id)
    return ProfileOut(
        user_id=user.id,
        name=user.name,
        created_at=user.created_at,
        recording_count=count,
        language=user.language,
        vocabulary=user.vocabulary or [],
        live_transcript=user.live_transcript,
    )


@router.post('/token/rotate')
def rotate_token(user: CurrentUser, services: ServicesDep) -> TokenOut:
    """A new token for the caller; the one used for this call is revoked."""
    return TokenOut(token=services.users.rotate_token(user.id))
