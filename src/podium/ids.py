"""Identifiers and timestamps, in the one format every table uses."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime


def new_id(prefix: str = "") -> str:
    """A unique id that sorts by creation time, with an optional prefix such as `task_`:
    11 hex digits of epoch milliseconds, then 13 random (52 bits).

    Ids are primary keys and indexed columns; new ones landing at the end of each B-tree
    rather than at random pages is what keeps a commit of a batch of turns cheap
    (bench/RESULTS.md, scenario 1).
    """
    # random, not os.urandom: ids are not secrets, and a getrandom() call lets the turn writer's
    # thread take the GIL from the event loop mid-request (1.3% of the loop's time per id).
    return f"{prefix}{time.time_ns() // 1_000_000:011x}{random.getrandbits(52):013x}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with a Z, the chat dialect's timestamp."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
