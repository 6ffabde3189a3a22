"""How route handlers reach the Core built at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from podium.core import Core


def core_of(connection: HTTPConnection) -> Core:
    """The Core, for endpoints that take the Request alone (called without dependency solving)."""
    return connection.app.state.core


async def _core(connection: HTTPConnection) -> Core:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop per request.
    return core_of(connection)


CoreDep = Annotated[Core, Depends(_core)]
__all__ = ["CoreDep", "Request", "WebSocket", "core_of"]
