"""The event bus: every state change is published here once, by the service that made it.

`EventBus` is the interface; `InProcessBus` serves one node. A multi-node bus (Redis pub/sub,
PostgreSQL LISTEN/NOTIFY) implements the same two methods.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Event:
    """One published change, `{"event": name, "data": {...}}` on the wire."""

    name: str
    data: dict[str, Any]
    _text: str | None = field(default=None, compare=False, repr=False)

    def wire(self) -> dict[str, Any]:
        return {"event": self.name, "data": self.data}

    def text(self) -> str:
        """The wire form as JSON, encoded once however many subscribers send it."""
        if self._text is None:
            self._text = json.dumps(self.wire(), separators=(",", ":"))
        return self._text


@dataclass(eq=False)
class Subscription:
    """A subscriber's bounded queue. When it overflows the subscriber is cut off, so a slow
    reader never stalls publishers or other readers."""

    limit: int
    queue: asyncio.Queue[Event] = field(init=False)
    overflowed: bool = False
    _cut: asyncio.Event = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.limit)
        self._cut = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._cut.set()

    async def get(self) -> Event:
        return await self.queue.get()

    async def cut_off(self) -> None:
        """Return once the subscriber has fallen too far behind (its queue overflowed), so
        its consumer can be dropped even while it is stuck writing to a slow client."""
        await self._cut.wait()


class EventBus(Protocol):
    """Publish changes; subscribe to all of them."""

    def publish(self, name: str, data: dict[str, Any]) -> None: ...

    def subscribe(self, limit: int = 1000) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...


class InProcessBus:
    """Fans events out to subscribers of this process; publishing never waits."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.published = 0

    def publish(self, name: str, data: dict[str, Any]) -> None:
        event = Event(name, data)
        self.published += 1
        for subscription in self._subscriptions:
            subscription.offer(event)

    def subscribe(self, limit: int = 1000) -> Subscription:
        subscription = Subscription(limit)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)
