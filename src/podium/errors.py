"""Podium's one error hierarchy: every failure a client can see carries a status, a machine
code and a human message. Each dialect renders these in its own shape (see `api/_dialect.py`).
"""

from __future__ import annotations

from typing import Any


class PodiumError(Exception):
    """Base of every error that reaches a client."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class BadRequest(PodiumError):
    """The request is malformed or names invalid values."""

    status = 400
    code = "BAD_REQUEST"


class Unauthorized(PodiumError):
    """No valid token was presented where access tokens are configured."""

    status = 401
    code = "UNAUTHORIZED"


class Forbidden(PodiumError):
    """The token is valid, but the agent it asks for is not among those it may use."""

    status = 403
    code = "FORBIDDEN"


class NotFound(PodiumError):
    """The path or the thing it names does not exist."""

    status = 404
    code = "NOT_FOUND"


class AgentNotFound(NotFound):
    """No agent of that name is defined."""

    code = "AGENT_NOT_FOUND"


class SessionNotFound(NotFound):
    """No session of that id exists."""

    code = "SESSION_NOT_FOUND"


class MethodNotAllowed(PodiumError):
    """The path exists, but not with this HTTP method."""

    status = 405
    code = "METHOD_NOT_ALLOWED"


class RunTimeout(PodiumError):
    """The orchestration timeout passed before the run finished."""

    status = 408
    code = "TIMEOUT"


class Conflict(PodiumError):
    """The request clashes with what exists: a name already taken, a session already being worked."""

    status = 409
    code = "CONFLICT"


class PayloadTooLarge(PodiumError):
    """The request body is over the configured `max_body_bytes`."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"


class Unprocessable(PodiumError):
    """The request is well-formed, but its values cannot be acted on."""

    status = 422
    code = "UNPROCESSABLE"


class RateLimited(PodiumError):
    """Too many requests from this address; `retry_after` says when to try again."""

    status = 429
    code = "RATE_LIMITED"


class BudgetExceeded(RateLimited):
    """The agent has spent its budget of tokens or cost for this session or this day (UTC)."""

    code = "BUDGET_EXCEEDED"


class ProvidersUnavailable(PodiumError):
    """Every provider candidate failed or was skipped."""

    status = 503
    code = "PROVIDERS_UNAVAILABLE"


class DatabaseUnavailable(PodiumError):
    """The configured database cannot be opened: no driver, unreachable, refused."""

    status = 503
    code = "DATABASE_UNAVAILABLE"


class ProviderError(Exception):
    """One provider attempt failed; the router moves to the next candidate.

    Not a PodiumError: it never reaches a client on its own, only as the cause of
    ProvidersUnavailable.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
