"""Voice Recorder: wires settings, services, pages and the API together, then serves them."""

import logging
import sys
from pathlib import Path

from nicegui import app, ui
from pydantic import ValidationError

from pages import onboard, recorder, records
from pages.chunk_events import register_chunk_events
from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import build_services
from services.errors import AppError
from services.schema import migrate

ASSETS = Path(__file__).parent / 'assets'
log = logging.getLogger('voice_recorder')


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = '_'.join(str(part) for part in problem['loc']).upper()
    return f'VR_{where}: {problem["msg"]}' if where else problem['msg']


def main() -> None:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        settings = Settings()
        if sys.argv[1:] == ['migrate']:  # for deployments that migrate as a step of their own (VR_AUTO_MIGRATE=false)
            log.info('the database is at revision %s, the newest', migrate(settings.resolved_database_url))
            return
        services = build_services(settings)
    except (AppError, ValidationError) as error:  # a bad setting or an unreachable database: one clear line
        log.error('cannot start: %s', error.message if isinstance(error, AppError) else _first_problem(error))
        raise SystemExit(1) from None
    app.on_shutdown(services.close)
    app.add_static_files('/assets', ASSETS)
    app.include_router(create_router(services))
    install_error_handler(app)
    register_chunk_events(services)
    onboard.create(services)
    records.create(services)
    recorder.create(services)

    @ui.page('/')
    def index() -> None:
        ui.navigate.to('/records')

    ui.run(
        host=settings.host,
        port=settings.port,
        title='Voice Recorder',
        storage_secret=services.secret,
        reload=False,
        show=False,
        favicon='🎙️',
    )


if __name__ in {'__main__', '__mp_main__'}:
    main()
