"""WebSocket event push at `ws://host:port/` and `/ws`: every bus event, as
`{"event": name, "data": {...}}`, to every connected client.

Each client has its own bounded queue on the bus. Publishing never waits for a client; a
client that falls more than `events.queue_limit` events behind is disconnected with close
code 1008 and a reason, so it can reconnect and reload. Idle connections are pinged by the
server (uvicorn's protocol-level keepalive, configured from `events.ping_interval`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, WebSocket

from podium.api._deps import CoreDep
from podium.bus import EventBus, Subscription
from podium.settings import EventSettings
from podium.tasks import cancel_and_wait

router = APIRouter(tags=["events"])

TOO_SLOW = 1008  # policy violation: the client did not keep up


@router.websocket("/")
@router.websocket("/ws")
async def events(websocket: WebSocket, core: CoreDep) -> None:
    await push(websocket, core.bus, core.settings.events)


async def push(websocket: WebSocket, bus: EventBus, settings: EventSettings) -> None:
    """Forward bus events to one client until it leaves or falls too far behind."""
    await websocket.accept()
    subscription = bus.subscribe(settings.queue_limit)
    forward = _task(_forward(websocket, subscription))
    listen = _task(_listen(websocket))
    cut = _task(subscription.cut_off())
    try:
        done, _pending = await asyncio.wait({forward, listen, cut}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when the handler itself is cancelled: no helper task outlives it
        bus.unsubscribe(subscription)
        # Errors are collected, not raised: a client that went away mid-send fails `forward`,
        # and there is nothing more to tell it.
        await cancel_and_wait([forward, listen, cut])
    if cut in done:
        reason = f"too slow: fell more than {settings.queue_limit} events behind; reconnect and reload"
        await _close(websocket, TOO_SLOW, reason, settings.close_timeout)


def _task(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.create_task(coroutine)


async def _forward(websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        event = await subscription.get()
        await websocket.send_text(event.text())


async def _listen(websocket: WebSocket) -> None:
    # Clients have nothing to say on this socket; reading is how their departure is noticed.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, code: int, reason: str, timeout: float) -> None:
    # The close frame queues behind the unread events; a client that never reads again is
    # given up on after `timeout`, and the server drops the connection when this returns.
    try:
        await asyncio.wait_for(websocket.close(code, reason), timeout)
    except (TimeoutError, RuntimeError, OSError):
        pass
