"""The layout a reader relies on: bench/ borrows the test servers and helpers in tests.support, never a test module."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f'{node.module}.{alias.name}' for alias in node.names)  # `from tests import conftest`
    return found


def test_bench_imports_nothing_from_tests_but_tests_support() -> None:
    reaching = sorted(
        f'{path.relative_to(ROOT)}: {name}'
        for path in (ROOT / 'bench').rglob('*.py')
        for name in imported_modules(path)
        if name.split('.')[0] == 'tests' and name != 'tests' and not name.startswith('tests.support')
    )
    assert reaching == []


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob('*.py'))


def test_services_import_no_framework_and_no_adapter() -> None:
    """The domain stays framework-free, so the pages, the REST API and the audio channel are adapters over it."""
    banned = {'nicegui', 'fastapi', 'starlette', 'socketio', 'api', 'pages', 'main', 'web'}
    reaching = sorted(
        f'{path.relative_to(ROOT)}: {name}'
        for path in python_files('services')
        for name in imported_modules(path)
        if name.split('.')[0] in banned
    )
    assert reaching == []


def test_no_module_imports_another_modules_private_name() -> None:
    reaching = sorted(
        f'{path.relative_to(ROOT)}: {node.module}.{alias.name}'
        for path in python_files('services', 'api', 'pages', 'bench', 'tests')
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith('_') and not alias.name.startswith('__')
    )
    assert reaching == []


def test_one_name_one_meaning_across_the_domain() -> None:
    """Two top-level functions or classes of one name in services/ would mean two things to a reader (audio_key once
    took a recording in one module and an id in another)."""
    homes: dict[str, list[str]] = {}
    for path in python_files('services'):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                homes.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {name: places for name, places in homes.items() if len(places) > 1} == {}


def test_no_function_of_the_app_is_over_60_lines() -> None:
    """A reader takes in a function at once; past a screen it wants splitting by what its parts do."""
    long = sorted(
        f'{path.relative_to(ROOT)}: {node.name} ({node.end_lineno - node.lineno + 1} lines)'
        for path in [*python_files('services', 'api', 'pages'), ROOT / 'main.py', ROOT / 'web.py', ROOT / 'commands.py']
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (node.end_lineno or 0) - node.lineno >= 60
    )
    assert long == []


def test_a_worker_process_never_loads_the_web_stack() -> None:
    """`python main.py worker` and `migrate` import what they run and no more: each worker process would otherwise
    spend the web stack's import time and memory (NiceGUI, FastAPI, uvicorn) for nothing."""
    web_stack = '{"nicegui", "fastapi", "uvicorn", "web"}'
    probe = f'import sys, main; print(sorted({{m.split(".")[0] for m in sys.modules}} & {web_stack}))'
    loaded = subprocess.run([sys.executable, '-c', probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == '[]', loaded.stdout + loaded.stderr
