"""When to try a failed model call again, and after how long.

Only 429 and 5xx answers are retried (a 400 would fail the same way again). `Retry-After`
wins over our own backoff; if the upstream asks for a longer wait than `backoff_max`, the
candidate is given up so the router can move on instead of holding the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.errors import ProviderError


def is_transient(exc: ProviderError) -> bool:
    """A 429 or 5xx answer, or no answer at all (connection refused, timeout)."""
    return exc.status is None or exc.status == 429 or exc.status >= 500


def is_refusal(exc: ProviderError) -> bool:
    """An answer that the request itself is wrong (400, 413, 422): too long for the model's
    context, say. Another model may still take it; the same one will not."""
    return exc.status in (400, 413, 422)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with an upper bound; `retries` is the count after the first try."""

    retries: int = 2
    base: float = 0.2
    maximum: float = 5.0

    def delay(self, exc: ProviderError, tries_done: int) -> float | None:
        """Seconds to wait before the next try, or None to give this candidate up."""
        if tries_done > self.retries or exc.status is None or not is_transient(exc):
            # Unreachable endpoints (status None) are not retried: the next candidate is a
            # better bet than the same refused connection.
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.maximum else None
        return min(self.maximum, self.base * (2 ** (tries_done - 1)))
