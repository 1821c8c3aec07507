"""Voice Recorder: wires settings, services, pages and the API together, then serves them."""

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi.middleware.cors import CORSMiddleware
from nicegui import app, background_tasks, ui
from pydantic import ValidationError

from pages import middleware, onboard, recorder, records, share
from pages.chunk_events import register_chunk_events
from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import build_services, build_storage
from services.errors import AppError
from services.schema import migrate
from services.storage.protocol import Storage
from services.transcripts.worker_process import EMBEDDED_FLAG, EmbeddedWorker, run_worker

ASSETS = Path(__file__).parent / 'assets'
log = logging.getLogger('voice_recorder')


def _problem(error: Exception) -> str:
    if isinstance(error, AppError):
        return error.message
    if isinstance(error, ValidationError):
        problem = error.errors()[0]
        where = '_'.join(str(part) for part in problem['loc']).upper()
        return f'VR_{where}: {problem["msg"]}' if where else problem['msg']
    return str(error)


def main(*, wrap_storage: Callable[[Storage], Storage] | None = None) -> None:
    """Serve the app; `wrap_storage` lets a test launcher put a fault injector around the real storage."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        settings = Settings()
        settings.check_production_ready()
        if sys.argv[1:] == ['migrate']:  # for deployments that migrate as a step of their own (VR_AUTO_MIGRATE=false)
            log.info('the database is at revision %s, the newest', migrate(settings.resolved_database_url))
            return
        if sys.argv[1:2] == ['worker']:  # transcribes recordings; the app runs one itself unless told it is external
            run_worker(settings, embedded=sys.argv[2:] == [EMBEDDED_FLAG])
            return
        storage = build_storage(settings)
        services = build_services(settings, storage=wrap_storage(storage) if wrap_storage else storage)
    except (AppError, ValueError) as error:  # a bad setting or an unreachable database: one clear line
        log.error('cannot start: %s', _problem(error))
        raise SystemExit(1) from None
    app.on_shutdown(services.close)
    if settings.transcribe and settings.transcribe_worker == 'embedded':
        worker = EmbeddedWorker(Path(__file__).resolve())
        app.on_startup(worker.start)
        app.on_shutdown(worker.stop)
    app.on_startup(
        lambda: background_tasks.create(
            services.sweeper.run_forever(settings.sweep_interval_s), name='finalize idle recordings'
        )
    )
    app.add_static_files('/assets', ASSETS)
    app.include_router(create_router(services))
    middleware.install(app, services)  # body caps and security headers, for every route NiceGUI's included
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
    share.create(services)

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
        session_middleware_kwargs={'https_only': settings.cookies_secure},
        proxy_headers=False,  # the client address is taken from X-Forwarded-For only as VR_TRUSTED_PROXY_COUNT says
    )


if __name__ in {'__main__', '__mp_main__'}:
    main()
