"""The commands `python main.py` runs instead of serving: `migrate`, `worker` and `worker --live`."""

import logging
from pathlib import Path

from services.core.config import Settings
from services.core.schema import migrate
from services.transcripts.worker_process import CHILD_FLAG, LIVE_FLAG, run_live_worker, run_workers

log = logging.getLogger('voice_recorder')
MAIN_FILE = Path(__file__).resolve().with_name('main.py')  # what worker processes are started from


def run_command(settings: Settings, args: list[str]) -> bool:
    """Run the command `args` name and return True; False when they name none, and the app is to be served."""
    if args == ['migrate']:  # for deployments that migrate as a step of their own (VR_AUTO_MIGRATE=false)
        log.info('the database is at revision %s, the newest', migrate(settings.resolved_database_url))
        return True
    if args[:1] == ['worker']:  # transcribes recordings; the app runs its own unless told they are external
        flags = set(args[1:])
        if LIVE_FLAG in flags:  # `worker --live`: hears recordings while they are made
            run_live_worker(settings, child=CHILD_FLAG in flags)
        else:
            run_workers(settings, main_file=MAIN_FILE, child=CHILD_FLAG in flags)
        return True
    return False
