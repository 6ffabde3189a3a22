"""Access: who is calling (bearer tokens), which agents they may use, and per-IP rate limits.

The ASGI gate (`api/_access.py`) authenticates each request and puts the principal in
`current_principal` for the request's context; every run then passes `check_agent` in a
`before` hook of the conversation service, so the agent check lives here and only here,
whichever dialect started the run.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItemPerMinute
from limits.errors import ConfigurationError, StorageError
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from podium.errors import Forbidden
from podium.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; `allowed_agents` of None means every agent."""

    name: str
    allowed_agents: frozenset[str] | None = None

    def may_use(self, agent: str) -> bool:
        return self.allowed_agents is None or agent in self.allowed_agents


# Set by the access gate for the duration of one request (and inherited by what it starts).
current_principal: ContextVar[Principal | None] = ContextVar("podium_principal", default=None)


class AccessService:
    """Token checks and agent permissions; open (no principal needed) when no token is set."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = [(t.token.get_secret_value().encode(), Principal(
            t.name, frozenset(t.allowed_agents) if t.allowed_agents is not None else None))
            for t in settings.auth.tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal whose token this is, or None. Every token is compared in constant
        time, and all of them, so timing tells nothing about which one came close."""
        if not presented:
            return None
        candidate = presented.encode()
        found = None
        for secret, principal in self._tokens:
            if hmac.compare_digest(secret, candidate) and found is None:
                found = principal
        return found

    def check_agent(self, agent: str, principal: Principal | None = None) -> None:
        """Raise Forbidden when the caller (given, or the current request's) may not use `agent`."""
        principal = principal or current_principal.get()
        if principal is not None and not principal.may_use(agent):
            raise Forbidden(f"token {principal.name!r} may not use agent {agent!r}")

    def visible(self, specs: Iterable[T]) -> list[T]:
        """The agents (anything with a `name`) the current request's caller may use: a listing
        shows no agent its caller would be refused."""
        principal = current_principal.get()
        return [s for s in specs if principal is None or principal.may_use(s.name)]  # type: ignore[attr-defined]

    async def before_run(self, state: object) -> None:
        """The conversation service's `before` hook: refuse runs of agents the caller may not use."""
        self.check_agent(state.spec.name)  # type: ignore[attr-defined]


class RateLimiter:
    """Per-IP request limits with the `limits` library; its storage URI is pluggable
    (memory:// here, redis:// so several nodes share one count)."""

    def __init__(self, per_minute: int, storage_uri: str) -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.limiter = None
        self._warned_at = -60.0
        if self.item is not None:
            uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
            try:
                # wrap_exceptions: a failing storage raises StorageError, whatever its client.
                self.limiter = MovingWindowRateLimiter(storage_from_string(uri, wrap_exceptions=True))
            except ConfigurationError as exc:  # a bad URI or a missing driver (redis needs coredis)
                raise ValueError(f"rate_limit.storage_uri {storage_uri!r}: {exc}") from exc

    async def hit(self, client: str) -> float | None:
        """Count one request; None when allowed, else seconds until the client may retry."""
        if self.limiter is None or self.item is None:
            return None
        try:
            if await self.limiter.hit(self.item, "ip", client):
                return None
            stats = await self.limiter.get_window_stats(self.item, "ip", client)
        except StorageError as exc:
            # Fail open: a storage outage (Redis down) must not turn every request into an error.
            self._storage_failed(exc)
            return None
        return max(1.0, stats.reset_time - time.time())

    def _storage_failed(self, exc: StorageError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 60:  # once a minute, not once per request
            self._warned_at = now
            log.warning("rate-limit storage unavailable, requests are let through: %s",
                        type(exc.storage_error).__name__)
