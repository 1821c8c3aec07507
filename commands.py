"""The commands `python main.py` runs instead of serving: `migrate` and `worker`."""

import logging

from services.core.config import Settings
from services.core.schema import migrate
from services.transcripts.worker_process import EMBEDDED_FLAG, run_worker

log = logging.getLogger('voice_recorder')


def run_command(settings: Settings, args: list[str]) -> bool:
    """Run the command `args` name and return True; False when they name none, and the app is to be served."""
    if args == ['migrate']:  # for deployments that migrate as a step of their own (VR_AUTO_MIGRATE=false)
        log.info('the database is at revision %s, the newest', migrate(settings.resolved_database_url))
        return True
    if args[:1] == ['worker']:  # transcribes recordings; the app runs one itself unless told it is external
        run_worker(settings, embedded=args[1:] == [EMBEDDED_FLAG])
        return True
    return False
