"""The garbage collector's policy for a long-running server: what start-up and model loads leave
alive is frozen out of later collections, and young objects are collected less often.

A full collection walks every tracked object. A started server holds about 140,000 of them
(80 ms to walk on the 2-core benchmark machine) and a loaded local embedder about 430,000 more
(215 ms). Requests set off a full collection every few thousand runs, and that pause was the p99
of a run. Frozen objects are still freed by reference counting; only reference cycles among them
wait for `thaw()`.
"""

from __future__ import annotations

import gc
from typing import Any

# CPython collects the youngest generation after every 700 net allocations: several times a run,
# each time walking the objects of every run in flight. After 10,000, most of a run's objects
# are gone before a collection looks at them (scenario 1 at c=64: 8% less CPU a run).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """At start-up: collect young objects less often, and freeze what start-up left alive."""
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    freeze()


def freeze() -> None:
    """Leave every object alive now out of later collections: call after start-up and after a
    model load, when what is alive will mostly live as long as the process."""
    gc.freeze()


def thaw() -> None:
    """Hand the frozen objects back to the collector, so that a stopped app can be freed."""
    gc.unfreeze()


def figures() -> dict[str, Any]:
    """Objects frozen now, each generation's threshold, and its collections so far (the third
    generation's are the full collections)."""
    return {"frozen_objects": gc.get_freeze_count(), "thresholds": list(gc.get_threshold()),
            "collections": [generation["collections"] for generation in gc.get_stats()]}
