"""The access gate: a pure ASGI middleware that rate-limits per IP and authenticates tokens.

It runs before routing, so its refusals (401, 429) are rendered in the dialect the path
belongs to; the principal it finds is kept on the request scope and in
`services.access.current_principal`, where the conversation service checks agent permissions.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from podium.api._dialect import dialect_for
from podium.errors import Forbidden, PodiumError, RateLimited, Unauthorized
from podium.services.access import current_principal

HEALTH = frozenset({"/health", "/v1/health", "/api/health"})
# Runtime routes that name an agent in the path without starting a run (runs are checked by
# the conversation service): reading, deleting, its memory.
_AGENT_PATH = re.compile(r"^/v1/(?:agents|memory)/([^/]+)")


def presented_token(scope: Scope) -> str | None:
    """`Authorization: Bearer <token>`, else `x-api-key`; WebSockets may use `?access_token=`
    because browsers cannot set headers on them."""
    headers = Headers(scope=scope)
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    if scope["type"] == "websocket":
        return QueryParams(scope.get("query_string", b"").decode("latin-1")).get("access_token")
    return None


class AccessGate:
    """Refuses over-limit clients (429 with Retry-After) and, with tokens configured, requests
    without a valid token (401); health checks are always let through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = getattr(getattr(scope.get("app"), "state", None), "core", None)
        if scope["type"] not in ("http", "websocket") or core is None or scope["path"] in HEALTH:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # CORS preflights carry no credentials
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = await core.rate_limiter.hit(client)
        if wait is not None:
            await self._refuse(scope, receive, send, RateLimited(
                "too many requests from this address", retry_after=wait))
            return
        principal = None
        if core.access.enabled:
            principal = core.access.authenticate(presented_token(scope))
            if principal is None:
                await self._refuse(scope, receive, send, Unauthorized(
                    "a valid token is required (Authorization: Bearer <token> or x-api-key)"))
                return
            named = _AGENT_PATH.match(scope["path"])
            if named is not None:
                try:
                    core.access.check_agent(unquote(named[1]), principal)
                except Forbidden as exc:
                    await self._refuse(scope, receive, send, exc)
                    return
        scope.setdefault("state", {})["principal"] = principal
        reset = current_principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            current_principal.reset(reset)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: PodiumError) -> None:
        response = dialect_for(scope["path"]).error(error)
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.close(code=1008, reason=error.message[:120])
