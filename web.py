"""The web process: pages, REST API, the audio channel and their lifecycle on NiceGUI, served by uvicorn.

Kept apart from main.py so a command that never serves (`migrate`, a transcription worker) never loads the web stack:
each worker process is spared its import time and memory.
"""

import logging
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from nicegui import app, background_tasks, helpers, ui
from uvicorn.main import STARTUP_FAILURE

from api import create_router, install_error_handler, middleware
from api.audio_channel import AudioChannel
from api.nicegui_internals import quiet_client_mistakes, socket_server
from api.thread_pools import size_thread_pools
from commands import MAIN_FILE
from pages import onboard, recorder, records, share
from services.container import Services
from services.core.config import Settings
from services.transcripts.worker_process import WorkerPool

ASSETS = Path(__file__).parent / 'assets'
log = logging.getLogger('voice_recorder')
log = logging.getLogger('voice_recorder')


def add_lifecycle(services: Services) -> None:
    """What starts and stops with the server: the idle-recording sweeper, the embedded transcript workers."""
    settings = services.settings
    app.on_startup(lambda: size_thread_pools(settings.worker_threads))
    app.on_shutdown(services.close)
    if settings.transcribe and settings.transcribe_worker == 'embedded':
        pools = [WorkerPool(MAIN_FILE, settings.transcribe_workers)]
        if settings.live_transcripts:
            pools.append(WorkerPool(MAIN_FILE, 1, live=True))  # one live worker: its threads share one model
        for pool in pools:
            app.on_startup(pool.start)
            app.on_shutdown(pool.stop)
    app.on_startup(
        lambda: background_tasks.create(
            services.sweeper.run_forever(settings.sweep_interval_s), name='finalize idle recordings'
        )
    )


def install_api(target: FastAPI, services: Services) -> None:
    """The REST API as production serves it: its routes behind the body caps, security headers, CORS and error
    rendering. The tests build their app with this too, so what they try is what users reach."""
    settings = services.settings
    target.include_router(create_router(services))
    middleware.install(target, services)  # body caps and security headers, for every route on `target`
    if settings.cors_origin_list:
        target.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=['*'],
            allow_headers=['Authorization', 'Content-Type', 'Range', 'If-Range'],
            max_age=600,
        )
    install_error_handler(target)


def build_app(services: Services) -> None:
    """Register the pages, the API, the audio channel, middleware, static files and lifecycle on NiceGUI's app."""
    app.add_static_files('/assets', ASSETS)
    install_api(app, services)  # on NiceGUI's app, so the middleware guards its pages and routes too
    quiet_client_mistakes()  # a client's malformed socket message or unknown URL: one log line per period
    audio_channel = AudioChannel(services, socket_server())
    audio_channel.register()
    app.on_shutdown(audio_channel.close)
    onboard.create(services)
    records.create(services)
    recorder.create(services)
    share.create(services)

    add_lifecycle(services)

    @ui.page('/')
    def index() -> None:
        ui.navigate.to('/records')


def serve(settings: Settings) -> None:
    """NiceGUI inside our own FastAPI app, on a uvicorn started here: `ui.run` would pin uvicorn's pure-Python
    wsproto for the socket every audio chunk arrives on; websockets-sansio does the framing with C speedups."""
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # no generated API docs, as with ui.run
    app.config.quasar_config['loadingBar']['aria-label'] = 'Loading'  # Quasar's request bar is a nameless progressbar
    ui.run_with(
        web,
        title='Voice Recorder',
        favicon='🎙️',
        language='en-US',  # <html lang="en-US">, and Quasar's own words in English
        storage_secret=settings.resolved_secret(),
        session_middleware_kwargs={'https_only': settings.cookies_secure},
        show_welcome_message=False,  # uvicorn logs the address
    )
    if helpers.is_user_simulation():  # NiceGUI's `user` fixture drives the app in-process, as ui.run lets it
        return
    config = uvicorn.Config(
        web,
        host=settings.host,
        port=settings.port,
        ws='websockets-sansio',
        ws_per_message_deflate=False,  # audio does not compress: deflating every chunk only spends both ends' CPU
        proxy_headers=False,  # the client address is taken from X-Forwarded-For only as VR_TRUSTED_PROXY_COUNT says
        log_config=None,  # uvicorn's lines go through the logging set up here, one format for all
        log_level='info',
        access_log=False,
    )
    config.load()  # resolves the protocol classes, so the log can say which one serves the audio socket
    log.info('serving websockets with %s', config.ws_protocol_class)
    server = uvicorn.Server(config)
    server.run()  # until SIGTERM or SIGINT, which end the process once the shutdown hooks have run
    if not server.started:  # e.g. the port is taken: uvicorn has logged why
        raise SystemExit(STARTUP_FAILURE)
