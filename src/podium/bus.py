"""The event bus: every state change is published here once, by the service that made it.

`EventBus` is the interface; `InProcessBus` serves the subscribers of one server; `RedisBus`
(setting `events.bus_url`) serves those of every server that shares a Redis, through its pub/sub.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.ids import new_id
from podium.tasks import cancel_and_wait

log = logging.getLogger(__name__)


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

    def figures(self) -> dict[str, Any]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


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

    def figures(self) -> dict[str, Any]:
        """What `/api/stats/capacity` shows of the bus."""
        return {"kind": "in-process", "published": self.published, "subscribers": self.subscribers}

    async def start(self) -> None:
        return None  # nothing to connect to

    async def stop(self) -> None:
        return None

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)


class RedisBus:
    """Every server's events to every server's subscribers: an event is fanned out here at once,
    as `InProcessBus` does, and sent on a Redis pub/sub channel, from which each server fans out
    what the others sent. Publishing still never waits. While Redis cannot be reached, events
    reach this server's subscribers only (a live feed: what others missed is not replayed)."""

    channel = "podium:events"

    def __init__(self, url: str, outbox_limit: int = 10_000) -> None:
        self.url = url
        self.node = new_id("node_")  # its own events come back from Redis too, and are skipped
        self.local = InProcessBus()
        self.published = 0
        self.received = 0  # from other servers
        self.dropped = 0  # not sent to the others: the outbox was full, or Redis failed them
        self.subscribed = 0  # times it has subscribed to the channel: once, and again after each outage
        self._outbox: asyncio.Queue[str] = asyncio.Queue(outbox_limit)
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._trouble: str | None = None  # what is wrong with Redis, logged once until it is not

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.published += 1
        self.local.publish(name, data)
        try:
            self._outbox.put_nowait(json.dumps({"node": self.node, "event": name, "data": data},
                                               separators=(",", ":")))
        except asyncio.QueueFull:
            self.dropped += 1
        except (TypeError, ValueError):  # a publisher's change stands even if its event cannot go out
            self.dropped += 1
            log.exception("event %s could not be encoded for the other servers", name)

    def subscribe(self, limit: int = 1000) -> Subscription:
        return self.local.subscribe(limit)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.local.unsubscribe(subscription)

    @property
    def subscribers(self) -> int:
        return self.local.subscribers

    def figures(self) -> dict[str, Any]:
        """What `/api/stats/capacity` shows of the bus: whether Redis is reached, and what went
        through it (events from other servers, those not sent to them)."""
        return {"kind": "redis", "published": self.published, "subscribers": self.subscribers,
                "received": self.received, "dropped": self.dropped, "subscribed": self.subscribed,
                "reachable": self._trouble is None and self.subscribed > 0}

    async def start(self, within: float = 5.0) -> None:
        """Connect and subscribe; returns once subscribed, or after `within` seconds with Redis
        unreachable (the bus keeps trying, and serves this server meanwhile)."""
        try:
            import redis.asyncio as redis
        except ImportError as exc:
            raise RuntimeError("events.bus_url needs the redis client: pip install -e '.[redis]'") from exc
        self._client = redis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=5)
        subscribed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._send(), name="bus:send"),
                       asyncio.create_task(self._listen(subscribed), name="bus:listen")]
        try:
            async with asyncio.timeout(within):
                await subscribed.wait()
        except TimeoutError:
            pass

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()

    async def _send(self) -> None:
        while True:
            text = await self._outbox.get()
            try:
                await self._client.publish(self.channel, text)
            except Exception as exc:  # let it go: a late event is worse than a missed one
                self.dropped += 1
                self._failing("publish to", exc)
            else:
                self._working()

    async def _listen(self, subscribed: asyncio.Event) -> None:
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                # Ends with an error when the connection is lost; then subscribe again.
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self.subscribed += 1
                        subscribed.set()
                        self._working()
                    elif message["type"] == "message":
                        self._deliver(message["data"])
            except Exception as exc:
                self._failing("subscribe to", exc)
            finally:
                await pubsub.aclose()
            await asyncio.sleep(1.0)

    def _deliver(self, text: str) -> None:
        try:
            message = json.loads(text)
            node, name, data = message["node"], message["event"], message["data"]
        except (ValueError, TypeError, KeyError):
            return  # not one of ours
        if node != self.node:
            self.received += 1
            self.local.publish(name, data)

    def _failing(self, what: str, exc: Exception) -> None:
        trouble = f"{type(exc).__name__}: {exc}"
        if self._trouble is None:  # the URL is not logged: it may hold a password
            log.warning("the event bus could not %s Redis (%s); events reach this server's clients only", what, trouble)
        self._trouble = trouble

    def _working(self) -> None:
        if self._trouble is not None:
            log.warning("the event bus reaches Redis again")
            self._trouble = None


def make_bus(url: str) -> InProcessBus | RedisBus:
    """The bus `events.bus_url` asks for: empty for this server alone, redis://... to share."""
    return RedisBus(url) if url else InProcessBus()
