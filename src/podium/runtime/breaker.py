"""Circuit breakers, one per provider endpoint: stop calling an endpoint that keeps failing.

closed     calls pass; consecutive failures are counted, `threshold` of them open the breaker.
open       calls are refused until `cooldown` seconds have passed since it opened.
half_open  one trial call is let through: success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from podium.errors import ProviderError
from podium.runtime.agent import ModelRef

State = Literal["closed", "open", "half_open"]


class CircuitOpen(ProviderError):
    """The endpoint's breaker refused the call; the router moves to the next candidate."""


def endpoint_key(ref: ModelRef) -> str:
    """The endpoint a model ref calls: `provider@host:port` for a base URL, else `provider/model`
    (in-process providers and hosted APIs without a base URL get one breaker per model)."""
    if ref.base_url:
        return f"{ref.provider}@{urlsplit(ref.base_url).netloc or ref.base_url}"
    return ref.label


@dataclass
class Breaker:
    """The state of one endpoint's breaker; times come from a monotonic clock."""

    key: str
    threshold: int
    cooldown: float
    state: State = "closed"
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False
    last_error: str | None = None
    clock: Any = field(default=time.monotonic, repr=False)

    def _cooled(self) -> bool:
        return self.opened_at is not None and self.clock() - self.opened_at >= self.cooldown

    def available(self) -> bool:
        """Would a call be let through now? (Does not change the state.)"""
        if self.state == "closed":
            return True
        if self.state == "open":
            return self._cooled()
        return not self.trial_in_flight

    def acquire(self) -> bool:
        """Let one call through if the state allows it; an open, cooled breaker turns half-open."""
        if self.state == "open" and self._cooled():
            self.state, self.trial_in_flight = "half_open", False
        if self.state == "half_open":
            if self.trial_in_flight:
                return False
            self.trial_in_flight = True
            return True
        return self.state == "closed"

    def success(self) -> None:
        self.state, self.failures, self.opened_at, self.trial_in_flight = "closed", 0, None, False

    def failure(self, error: str) -> None:
        self.last_error = error
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            self.state, self.opened_at, self.trial_in_flight = "open", self.clock(), False

    def release(self) -> None:
        """A call ended without a verdict on the endpoint (e.g. a client error): free the trial."""
        self.trial_in_flight = False

    def status(self) -> dict[str, Any]:
        retry_in = None
        if self.state == "open" and self.opened_at is not None:
            retry_in = round(max(0.0, self.cooldown - (self.clock() - self.opened_at)), 3)
        return {"endpoint": self.key, "state": self.state, "consecutive_failures": self.failures,
                "threshold": self.threshold, "cooldown_seconds": self.cooldown,
                "retry_in_seconds": retry_in, "last_error": self.last_error}


class BreakerBoard:
    """Every endpoint's breaker, created on first use."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._breakers: dict[str, Breaker] = {}

    def get(self, key: str) -> Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = Breaker(key, self.threshold, self.cooldown)
        return breaker

    def for_ref(self, ref: ModelRef) -> Breaker:
        return self.get(endpoint_key(ref))

    def status(self) -> list[dict[str, Any]]:
        return [b.status() for _, b in sorted(self._breakers.items())]

    def reset(self, provider: str) -> list[str]:
        """Close the breakers of one endpoint (its exact key) or of every endpoint of a provider
        kind; returns the keys reset."""
        keys = [k for k in self._breakers
                if k == provider or k.startswith(f"{provider}@") or k.startswith(f"{provider}/")]
        for key in keys:
            self._breakers[key].success()
            self._breakers[key].last_error = None
        return keys
