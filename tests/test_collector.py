"""The web process's cycle collector (services/core/collector.py): opening many pages runs few full collections,
each a pause of every thread, and what was alive when the app was built is never walked again."""

import json
import subprocess
import sys

from tests.support.app_server import ROOT

# Objects shaped like NiceGUI's pages (elements with dicts of props, pointing back at their page), kept alive as open
# pages are; counted in a process of their own, as the collector's settings belong to the whole process.
SCRIPT = """
import gc, json, sys
from services.core.collector import tune_collector

def open_pages(count):
    pages = []
    for _ in range(count):
        page = {'elements': []}
        page['elements'] = [{'page': page, 'props': {'i': i}, 'children': []} for i in range(50)]
        pages.append(page)
    return pages

built = open_pages(1000)
frozen = tune_collector() if sys.argv[1] == 'tuned' else 0
before = gc.get_stats()[2]['collections']
served = open_pages(4000)
print(json.dumps({'frozen': frozen, 'full_collections': gc.get_stats()[2]['collections'] - before}))
"""


def collections_while_pages_open(mode: str) -> dict[str, int]:
    run = subprocess.run(
        [sys.executable, '-c', SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(run.stdout)


def test_opening_many_pages_runs_few_full_collections_and_skips_what_the_app_built() -> None:
    default, tuned = collections_while_pages_open('default'), collections_while_pages_open('tuned')
    # CPython's defaults: a full collection each time the pages grew the heap by a quarter (measured: 6 here; in the
    # app, 250-530 ms each with 200 recorder pages open).
    assert default['full_collections'] >= 4, default
    assert tuned['full_collections'] <= 1, tuned
    assert tuned['frozen'] >= 1000 * 100, tuned  # the pages built before (each a hundred tracked objects), and more
