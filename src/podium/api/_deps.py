"""How route handlers reach the Core built at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from podium.core import Core


async def _core(connection: HTTPConnection) -> Core:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
    return connection.app.state.core


def core_of(request: HTTPConnection) -> Core:
    """The Core, for endpoints that take the Request alone (called without dependency solving)."""
    return request.app.state.core


CoreDep = Annotated[Core, Depends(_core)]
__all__ = ["CoreDep", "Request", "WebSocket", "core_of"]
