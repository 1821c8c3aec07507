"""Voice Recorder: reads the settings, then serves the app (web.py) or runs the command the arguments name."""

import logging
import sys

from commands import run_command
from services.container import build_services
from services.core.config import load_settings
from services.core.errors import AppError
from services.core.memory import limit_malloc_arenas

log = logging.getLogger('voice_recorder')


def main() -> None:
    """Serve the app, or run the command the arguments name (`migrate`, `worker`, `backup`, `restore`)."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        settings = load_settings()
        if run_command(settings, sys.argv[1:]):
            return
        limit_malloc_arenas()  # the web process's, before any of its threads starts (services/core/memory.py)
        services = build_services(settings)
    except (AppError, ValueError) as error:  # a bad setting or an unreachable database: one clear line
        log.error('cannot start: %s', error)
        raise SystemExit(1) from None
    import web  # only to serve: a worker or `migrate` never loads NiceGUI, FastAPI and uvicorn

    web.build_app(services)
    web.serve(settings)


if __name__ == '__main__':  # not `__mp_main__`: a process NiceGUI spawns must not start a second server
    main()
