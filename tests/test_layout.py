"""The layout a reader relies on: bench/ borrows the test servers and helpers in tests.support, never a test module."""

import ast
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
