"""The garbage collector's policy for a long-running server: what start-up and model loads leave
alive is frozen out of later collections.

A full collection walks every tracked object. A started server holds about 140,000 of them
(80 ms to walk on the 2-core benchmark machine) and a loaded local embedder about 430,000 more
(215 ms). Requests set off a full collection every few thousand runs, and that pause was the p99
of a run. Frozen objects are still freed by reference counting; only reference cycles among them
wait for `thaw()`.
"""

from __future__ import annotations

import gc
from typing import Any


def freeze() -> None:
    """Leave every object alive now out of later collections: call after start-up and after a
    model load, when what is alive will mostly live as long as the process."""
    gc.freeze()


def thaw() -> None:
    """Hand the frozen objects back to the collector, so that a stopped app can be freed."""
    gc.unfreeze()


def figures() -> dict[str, Any]:
    """Objects frozen now, and the collections of each generation so far (the third: full)."""
    return {"frozen_objects": gc.get_freeze_count(),
            "collections": [generation["collections"] for generation in gc.get_stats()]}
