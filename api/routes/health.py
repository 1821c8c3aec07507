"""Health: whether the database and the storage answer, for load balancers and the container's HEALTHCHECK."""

from fastapi import APIRouter, Response

from api.deps import ServicesDep
from api.schemas import HealthOut
from services.core.version import app_version

router = APIRouter()


@router.get('/healthz', responses={503: {'model': HealthOut, 'description': 'a check failed; its field says which'}})
def healthz(response: Response, services: ServicesDep) -> HealthOut:
    checks = {'database': services.database.check, 'storage': services.storage.check}
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = 'ok'
        except Exception as error:  # health reports every failure, whatever its kind
            results[name] = f'error: {getattr(error, "message", None) or type(error).__name__}'
    healthy = all(value == 'ok' for value in results.values())
    response.status_code = 200 if healthy else 503
    return HealthOut(status='ok' if healthy else 'unavailable', version=app_version(), **results)
