"""Voice Recorder: wires settings, services, pages and the API together, then serves them."""

import logging
from pathlib import Path

from nicegui import app, ui

from pages import onboard, recorder, records
from pages.chunk_events import register_chunk_events
from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import build_services

ASSETS = Path(__file__).parent / 'assets'


def main() -> None:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    settings = Settings()
    services = build_services(settings)
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
