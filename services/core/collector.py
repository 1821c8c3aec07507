"""Python's cycle collector in the web process, tuned so that its pauses stay rare under load.

A full collection stops every thread (it holds the GIL) while it walks every tracked object. With 200 recorder pages
open, beside the pages people left (kept for their reconnect timeout), that is 0.5-1 M objects and 250-530 ms on
these cores, measured with a gc callback under the background benchmark. CPython starts a full collection once ten
younger ones have run, if the objects that survived them grew the long-lived ones by a quarter; while pages open that
held every second or two, and one such pause per window made an idle server's chunk p99 170-210 ms instead of ~20 ms.
What they found was little (tens to a few thousand objects: NiceGUI's pages are freed by reference counting), so:
- a full collection waits for FULL_COLLECTION_AFTER younger ones instead of 10 (the quarter rule still holds, so the
  garbage that can pile up stays a bounded share of the heap);
- what is alive once the app is built (modules, routes, settings: ~180 k objects) lives as long as the process and
  is frozen out of every collection (`gc.freeze`).
"""

import gc

FULL_COLLECTION_AFTER = 100  # younger (generation 1) collections before a full one may run; CPython's default is 10


def tune_collector(full_collection_after: int = FULL_COLLECTION_AFTER) -> int:
    """Call once the app is built, before it serves: collects, freezes what is alive, and spaces full collections.
    Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, full_collection_after)
    return gc.get_freeze_count()
