"""Share links: make one, list the live ones, revoke one (their audio is served in routes/audio.py)."""

import uuid
from datetime import timedelta

from fastapi import APIRouter, Response

from api.deps import CurrentUser, ServicesDep
from api.schemas import ShareIn, ShareOut
from services.core.models import Share

router = APIRouter()


def share_out(share: Share) -> ShareOut:
    return ShareOut(id=share.id, url=f'/share/{share.id}', expires_at=share.expires_at)


@router.post('/recordings/{recording_id}/shares', status_code=201)
def share(recording_id: uuid.UUID, body: ShareIn, user: CurrentUser, services: ServicesDep) -> ShareOut:
    lifetime = timedelta(seconds=body.expires_in_s)
    return share_out(services.shares.create(user_id=user.id, recording_id=recording_id, lifetime=lifetime))


@router.get('/recordings/{recording_id}/shares')
def shares(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> list[ShareOut]:
    return [share_out(s) for s in services.shares.active(user_id=user.id, recording_id=recording_id)]


@router.delete('/recordings/{recording_id}/shares/{share_id}', status_code=204)
def revoke_share(recording_id: uuid.UUID, share_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Response:
    services.shares.revoke(user_id=user.id, recording_id=recording_id, share_id=share_id)
    return Response(status_code=204)
