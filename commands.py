"""The commands `python main.py` runs instead of serving: `migrate`, `worker`, `worker --live`, `backup DEST` and
`restore SRC`."""

import logging
from pathlib import Path

from services.backup.manifest import BackupFailed
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
    if args[:1] in (['backup'], ['restore']):
        run_backup_command(settings, args)
        return True
    return False


def run_backup_command(settings: Settings, args: list[str]) -> None:
    """`backup DEST` while the app runs, `restore SRC` into an empty data folder; a failure is one line and exit 1."""
    from services.backup.restore import restore_backup  # only these commands need them
    from services.backup.snapshot import write_backup

    command = args[0]
    if len(args) != 2:
        log.error('usage: python main.py %s %s', command, 'DEST' if command == 'backup' else 'SRC')
        raise SystemExit(2)
    folder = Path(args[1])
    try:
        if command == 'backup':
            manifest = write_backup(settings, folder)
            done = f'backup written to {folder}'
        else:
            manifest = restore_backup(settings, folder)
            done = f'restored into {settings.data_dir} the backup of {manifest.created_at}'
    except BackupFailed as error:
        log.error('%s failed: %s', command, error.message)
        raise SystemExit(1) from None
    log.info('%s: %d files, %.1f MB', done, len(manifest.files), manifest.total_bytes / 1e6)
