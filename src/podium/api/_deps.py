"""How route handlers reach the Core built at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from podium.core import Core


def _core(connection: HTTPConnection) -> Core:
    return connection.app.state.core


CoreDep = Annotated[Core, Depends(_core)]
__all__ = ["CoreDep", "Request", "WebSocket"]
