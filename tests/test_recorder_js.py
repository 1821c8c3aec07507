"""The recorder's browser code where no browser is needed: the Node tests in tests/js, and how NiceGUI serves it.

What `assets/recorder/audio_channel.mjs` takes from NiceGUI's page script is checked in tests/test_nicegui_seam.py.
"""

import re
import shutil
import subprocess
from pathlib import Path

from pages.recorder_element import AudioRecorder

ROOT = Path(__file__).parent.parent
JS_TESTS = ROOT / 'tests' / 'js'
MODULES = ROOT / 'assets' / 'recorder'
COMPONENT = ROOT / 'assets' / 'recorder.js'
MIN_NODE_TESTS = 20  # as many as tests/js holds today: fewer means tests went missing, not that they passed


def test_the_node_unit_tests_pass() -> None:
    node = shutil.which('node')
    assert node, 'Node.js is missing: install the Debian package nodejs (make system-packages does)'
    files = sorted(str(path) for path in JS_TESTS.glob('*.test.mjs'))  # named, so no Node version searches on its own
    assert files, f'no *.test.mjs in {JS_TESTS}'
    result = subprocess.run(
        [node, '--test', '--test-reporter=tap', *files], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    output = result.stdout[-6000:] + result.stderr[-3000:]
    counts = {name: int(value) for name, value in re.findall(r'^# (tests|pass|fail) (\d+)$', result.stdout, re.M)}
    assert result.returncode == 0, output
    assert counts.get('fail') == 0, output
    assert counts.get('pass', 0) >= MIN_NODE_TESTS, f'only {counts.get("pass", 0)} Node tests passed\n{output}'


def test_every_recorder_module_is_served_from_one_folder_under_its_import_name() -> None:
    # The component imports the modules by name (NiceGUI's importmap); the modules import each other by relative
    # path, which resolves only while NiceGUI serves all of them from one URL folder.
    libraries = {library.name: library.key for library in AudioRecorder.exposed_libraries}
    assert set(libraries) == {path.name.split('.')[0] for path in MODULES.glob('*.mjs')}
    assert len({key.rsplit('/', 1)[0] for key in libraries.values()}) == 1, libraries
    imported = set(re.findall(r'^import .* from "([^".]+)";$', COMPONENT.read_text(), re.M))
    assert imported, 'the component imports no module'
    assert imported <= set(libraries), imported - set(libraries)
    for module in MODULES.glob('*.mjs'):
        for sibling in re.findall(r'^import .* from "\./([^"]+)";$', module.read_text(), re.M):
            assert (MODULES / sibling).is_file(), f'{module.name} imports a missing {sibling}'
