"""axe-core, the accessibility checker the browser tests inject: fetched once from the npm registry, its tarball
checked against the integrity hash npm publishes, and kept in tests/artifacts (gitignored).

Python's urllib rather than `npm pack`: Debian's `nodejs` comes without npm, and its `npm` package pulls in hundreds
of node-* packages for what is one download and one hash."""

import base64
import hashlib
import io
import tarfile
import urllib.request
from typing import Any

from playwright.async_api import Page

from tests.support.app_server import ROOT

AXE_VERSION = '4.14.1'
AXE_URL = f'https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz'
AXE_INTEGRITY = 'sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=='
AXE_CACHE = ROOT / 'tests' / 'artifacts' / f'axe-core-{AXE_VERSION}.min.js'
WCAG_21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']
BLOCKING = ('serious', 'critical')


def axe_source() -> str:
    """The text of axe.min.js, downloaded and verified the first time."""
    if not AXE_CACHE.exists():
        with urllib.request.urlopen(AXE_URL, timeout=60) as response:
            tarball = response.read()
        digest = 'sha512-' + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        assert digest == AXE_INTEGRITY, f'{AXE_URL} does not match its pinned integrity hash'
        with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
            member = archive.extractfile('package/axe.min.js')
            assert member is not None
            script = member.read()
        AXE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        partial = AXE_CACHE.with_suffix('.partial')
        partial.write_bytes(script)
        partial.replace(AXE_CACHE)  # whole or absent, should two workers fetch at once
    return AXE_CACHE.read_text()


async def serious_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """axe's serious and critical WCAG 2.1 A/AA violations on the page as it is now."""
    if not await page.evaluate('typeof window.axe === "object"'):
        await page.add_script_tag(content=source)
    violations = await page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(result =>
            result.violations.map(v => ({
                id: v.id, impact: v.impact, targets: v.nodes.map(n => `${n.target.join(' ')} ${n.html.slice(0, 90)}`),
            })))""",
        WCAG_21_AA,
    )
    return [violation for violation in violations if violation['impact'] in BLOCKING]


def describe(found: dict[str, list[dict[str, Any]]]) -> str:
    """One line per violation: where, which rule, how bad, and the first offending nodes."""
    return '\n'.join(
        f'{where}: {v["id"]} ({v["impact"]}) at {", ".join(v["targets"][:5])}'
        for where, violations in found.items()
        for v in violations
    )
