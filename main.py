"""Voice Recorder: wires settings, services, pages and the API together, then serves them."""

import logging
import sys
from pathlib import Path

from nicegui import app, ui

from pages import onboard, recorder, records
from pages.chunk_events import register_chunk_events
from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import build_services
from services.errors import AppError
from services.schema import migrate

ASSETS = Path(__file__).parent / 'assets'
log = logging.getLogger('voice_recorder')


def main() -> None:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    settings = Settings()
    try:
        if sys.argv[1:] == ['migrate']:  # for deployments that migrate as a step of their own (VR_AUTO_MIGRATE=false)
            return log.info('the database is at revision %s, the newest', migrate(settings.resolved_database_url))
        services = build_services(settings)
    except AppError as error:  # e.g. the database is unreachable: one clear line, not a stack trace
        log.error('cannot start: %s', error.message)
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
