"""GitHub workflows cannot run on the build machines, so their YAML is checked here and cannot silently rot:
CI runs the README's test command exactly as .ci/run does, and a version tag pushes a two-architecture image
to ghcr.io with nothing but the workflow's own token."""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / '.github' / 'workflows'
README_TEST_BLOCK = r'^Run the whole test suite.*?^```bash\n(.+?)\n```'


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(flow: dict[str, Any]) -> dict[str, Any]:
    return flow.get('on', flow.get(True))  # YAML 1.1 reads a bare `on:` key as the boolean true


def runs(job: dict[str, Any]) -> list[str]:
    return [step['run'].strip() for step in job['steps'] if 'run' in step]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    matches = [step for step in job['steps'] if step.get('uses', '').split('@')[0] == action]
    assert len(matches) == 1, f'expected one step using {action}'
    return matches[0]


def ci_run_command() -> str:
    """The one command .ci/run runs, after its shell set-up lines."""
    lines = [line.strip() for line in (ROOT / '.ci' / 'run').read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith(('#', 'set ', 'cd '))]
    assert len(commands) == 1, commands
    return commands[0]


def readme_test_command() -> str:
    """The fenced command under the README's 'Run the whole test suite' paragraph."""
    match = re.search(README_TEST_BLOCK, (ROOT / 'README.md').read_text(), re.M | re.S)
    assert match, 'the README lost its test command'
    return match.group(1).strip()


def make_recipe(target: str) -> list[str]:
    """The recipe lines of a Makefile target, so `make lint` can be checked for what it really runs."""
    makefile = (ROOT / 'Makefile').read_text()
    match = re.search(rf'^{re.escape(target)}:.*\n((?:\t.*\n)+)', makefile, re.M)
    assert match, f'no {target} target in the Makefile'
    return [line.strip() for line in match.group(1).splitlines()]


def expanded_runs(job: dict[str, Any]) -> list[str]:
    """What a job's steps run, each `make X` replaced by its recipe (without the virtualenv's `$(BIN)/`)."""
    lines = []
    for command in runs(job):
        recipe = make_recipe(command.removeprefix('make ')) if command.startswith('make ') else [command]
        lines += [line.removeprefix('$(BIN)/') for line in recipe]
    return lines


def test_ci_runs_on_every_push_and_pull_request() -> None:
    on = triggers(workflow('ci.yml'))
    assert on['push'] is None
    assert on['pull_request'] is None  # no branch or path filters: every push and every pull request


def test_ci_runs_the_readme_test_command_exactly_as_ci_run_does() -> None:
    command = readme_test_command()
    assert command == ci_run_command() == 'make test'
    jobs = workflow('ci.yml')['jobs']
    running_it = [name for name, job in jobs.items() if command in runs(job)]
    assert running_it == ['test']


def test_ci_test_job_can_install_the_makefile_debian_packages() -> None:
    """`make test` installs the Debian packages itself when root: the job runs as root in Debian with pip cached."""
    job = workflow('ci.yml')['jobs']['test']
    assert job['runs-on'] == 'ubuntu-latest'
    assert re.fullmatch(r'python:3\.\d+-bookworm', job['container']['image'])
    assert 'options' not in job['container'] or '--user' not in job['container']['options']
    cache = step_using(job, 'actions/cache')['with']
    assert cache['path'] == job['env']['PIP_CACHE_DIR']
    assert "hashFiles('pyproject.toml')" in cache['key']


def test_ci_lint_job_runs_ruff_and_mypy_with_pip_cached() -> None:
    job = workflow('ci.yml')['jobs']['lint']
    assert expanded_runs(job) == ['ruff check .', 'ruff format --check .', 'mypy services api']
    setup = step_using(job, 'actions/setup-python')['with']
    assert (setup['cache'], setup['cache-dependency-path']) == ('pip', 'pyproject.toml')


def test_release_runs_on_version_tags_only() -> None:
    on = triggers(workflow('release.yml'))
    assert on == {'push': {'tags': ['v*']}}


def test_release_pushes_amd64_and_arm64_images_to_ghcr_with_the_version_and_latest() -> None:
    flow = workflow('release.yml')
    assert flow['permissions']['packages'] == 'write'
    job = flow['jobs']['image']
    step_using(job, 'docker/setup-qemu-action')
    step_using(job, 'docker/setup-buildx-action')
    login = step_using(job, 'docker/login-action')['with']
    assert (login['registry'], login['password']) == ('ghcr.io', '${{ secrets.GITHUB_TOKEN }}')
    meta = step_using(job, 'docker/metadata-action')
    assert meta['with']['images'].startswith('ghcr.io/')
    assert 'type=semver,pattern={{version}}' in meta['with']['tags'].split()
    assert 'latest=auto' in meta['with']['flavor'].split()
    build = step_using(job, 'docker/build-push-action')['with']
    assert set(build['platforms'].split(',')) == {'linux/amd64', 'linux/arm64'}
    assert build['push'] is True
    assert (meta['id'], build['tags']) == ('meta', '${{ steps.meta.outputs.tags }}')
    assert build['cache-from'] and build['cache-to']


def test_release_refuses_a_tag_that_is_not_the_pyproject_version() -> None:
    job = workflow('release.yml')['jobs']['image']
    check = next(command for command in runs(job) if 'pyproject.toml' in command)
    assert '${GITHUB_REF_NAME#v}' in check
    assert 'exit 1' in check


@pytest.mark.parametrize('name', ['ci.yml', 'release.yml'])
def test_workflows_use_no_secret_but_the_workflow_token(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert 'secrets[' not in text
    assert set(re.findall(r'secrets\.(\w+)', text)) <= {'GITHUB_TOKEN'}


def test_the_image_keeps_pyproject_beside_the_code_for_the_version() -> None:
    """services/core/version.py reads ../pyproject.toml: the image must copy both into the same folder."""
    copies = set()
    for line in re.findall(r'^COPY\s+(.+)$', (ROOT / 'Dockerfile').read_text(), re.M):
        *sources, target = line.split()  # COPY a b ./ copies each source into the target folder
        copies |= {(source, target) for source in sources if not source.startswith('--')}
    assert ('pyproject.toml', './') in copies
    assert ('services', './services') in copies


def test_the_changelog_has_an_entry_for_the_current_version() -> None:
    """A version bump without its CHANGELOG entry fails here, before the tag is pushed."""
    version = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']
    headings = re.findall(r'^## \[([^\]]+)\]', (ROOT / 'CHANGELOG.md').read_text(), re.M)
    assert headings[0] == 'Unreleased'
    assert version in headings
