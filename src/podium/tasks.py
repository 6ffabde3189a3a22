"""Background tasks an owner started and must end when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel every task and return once each has ended. Their errors are not raised: the owner
    is stopping and has nobody left to tell, and one task's error must not leave another running."""
    ending = [task for task in tasks if task is not None]
    for task in ending:
        task.cancel()
    await asyncio.gather(*ending, return_exceptions=True)
