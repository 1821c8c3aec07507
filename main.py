"""Voice Recorder: wires settings, services, pages and the API together, then serves them."""

import logging
from collections.abc import Callable
from pathlib import Path

from fastapi.middleware.cors import CORSMiddleware
from nicegui import app, background_tasks, ui

from pages import onboard, recorder, records
from pages.chunk_events import register_chunk_events
from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import build_services, build_storage
from services.storage import Storage

ASSETS = Path(__file__).parent / 'assets'


def main(*, wrap_storage: Callable[[Storage], Storage] | None = None) -> None:
    """Serve the app; `wrap_storage` lets a test launcher put a fault injector around the real storage."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    settings = Settings()
    settings.check_production_ready()
    storage = build_storage(settings)
    services = build_services(settings, storage=wrap_storage(storage) if wrap_storage else storage)
    app.on_shutdown(services.close)
    app.on_startup(
        lambda: background_tasks.create(
            services.sweeper.run_forever(settings.sweep_interval_s), name='finalize idle recordings'
        )
    )
    app.add_static_files('/assets', ASSETS)
    app.include_router(create_router(services))
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=['*'],
            allow_headers=['Authorization', 'Content-Type', 'Range'],
            max_age=600,
        )
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
