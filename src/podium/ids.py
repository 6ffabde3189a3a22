"""Identifiers and timestamps, in the one format every table uses."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime


def new_id(prefix: str = "") -> str:
    """A random, sortable-enough id with an optional prefix such as `task_`."""
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with a Z, the chat dialect's timestamp."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
