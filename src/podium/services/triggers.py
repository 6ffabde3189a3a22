"""Durable triggers (gateway `/v1/triggers`): runs requested from outside, executed later.

`submit` stores the trigger before it answers, so an acknowledged trigger is never lost; a
pool of workers started with the Core claims pending triggers one at a time (a conditional
update, safe with several servers on one database) and records the outcome.

A claim is a lease of `lease` seconds, renewed every third of that while the run lasts. A run
that a stopping server cuts short goes back to pending at once; one whose server died goes back
once its lease has lapsed, when this or any other server next sweeps (at start-up, then at every
renewal), and runs again there: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from podium.errors import NotFound, PodiumError
from podium.ids import iso, new_id
from podium.services.access import AccessService, current_principal
from podium.store.triggers import TriggerStore
from podium.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def public(row: dict[str, Any]) -> dict[str, Any]:
    body = {"event_id": row["id"], "status": row["status"], "target_agent": row["agent"],
            "session_id": row.get("session_id"), "traceparent": row.get("traceparent"),
            "created_at": iso(row.get("created_at")), "started_at": iso(row.get("started_at")),
            "finished_at": iso(row.get("finished_at"))}
    if row["status"] == "completed":
        body["result"] = row.get("result")
    if row["status"] == "failed":
        body["error"] = row.get("error")
    return body


class TriggerService:
    """Accepts triggers and runs them in the background."""

    def __init__(self, store: TriggerStore, conversations: Any, agents: Any, access: AccessService,
                 workers: int = 2, lease: float = 30.0) -> None:
        self.store = store
        self.conversations = conversations
        self.agents = agents
        self.access = access
        self.workers = workers
        self.lease = lease
        # Names this server's claims; a restarted server is a new node (its predecessor released or lost its own).
        self.node = new_id("node_")
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()  # in the queue: a sweep does not queue a trigger twice
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: dict[str, asyncio.Task[None]] = {}  # runs in progress, by trigger id
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = False

    async def submit(self, agent: str, text: str, *, idempotency_key: str | None = None,
                     traceparent: str | None = None) -> dict[str, Any]:
        """Store a pending trigger (or find the first one with this idempotency key)."""
        await self.agents.resolve(agent)  # 404 for an unknown agent
        self.access.check_agent(agent)  # 403 for a token that may not use it
        idempotency_key = (idempotency_key or "").strip() or None
        if idempotency_key and (first := await self.store.by_key(idempotency_key)) is not None:
            return public(first)
        event_id = new_id("evt_")
        principal = current_principal.get()
        row = await self.store.create({
            "id": event_id, "agent": agent, "input": text, "idempotency_key": idempotency_key,
            "traceparent": traceparent, "principal": principal.name if principal else None,
            "session_id": f"trigger_{event_id}"})
        if row is None:  # a concurrent repeat won the race for the key
            first = await self.store.by_key(idempotency_key or "")
            if first is None:
                raise PodiumError("trigger could not be stored")
            return public(first)
        self._enqueue(event_id)
        return public(row)

    async def get(self, event_id: str) -> dict[str, Any]:
        row = await self.store.get(event_id)
        if row is None:
            raise NotFound(f"trigger {event_id!r} not found")
        return public(row)

    async def start(self) -> None:
        await self._sweep()
        self._tasks = [asyncio.create_task(self._work(), name=f"trigger-worker-{i}") for i in range(self.workers)]
        self._keeper = asyncio.create_task(self._keep(), name="trigger-leases")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let runs in progress finish (bounded), then stop the workers; a run
        cut short goes back to pending, for the next start or another server to run again."""
        self._stopping = True
        if self._keeper is not None:
            self._keeper.cancel()
        if self._jobs:
            await asyncio.wait(self._jobs.values(), timeout=grace)
        cut = [event_id for event_id, job in self._jobs.items() if not job.done()]
        await cancel_and_wait([*self._tasks, *self._jobs.values(), self._keeper])
        self._tasks, self._keeper = [], None
        if cut:
            try:
                await self.store.release(self.node, cut)
            except Exception:  # their leases lapse instead, and the runs are swept up then
                log.exception("could not release %d triggers cut short", len(cut))

    def _enqueue(self, event_id: str) -> None:
        if event_id not in self._queued:
            self._queued.add(event_id)
            self._queue.put_nowait(event_id)

    async def _sweep(self) -> None:
        """Put lapsed runs back to pending, then queue every pending trigger: those requeued, and
        those another server accepted but stopped before running."""
        await self.store.requeue_lost()
        for event_id in await self.store.pending_ids():
            self._enqueue(event_id)

    async def _keep(self) -> None:
        """Every third of the lease: renew this server's claims, then sweep."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if self._jobs:
                    await self.store.renew(self.node, list(self._jobs), self._lease_ms)
                await self._sweep()
            except Exception:  # the database is failing: the next tick tries again
                log.exception("could not renew or sweep triggers")

    @property
    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    async def _work(self) -> None:
        while not self._stopping:
            event_id = await self._queue.get()
            self._queued.discard(event_id)
            if self._stopping:
                return
            row = await self.store.claim(event_id, self.node, self._lease_ms)
            if row is None:
                continue  # another worker (or server) took it
            job = asyncio.create_task(self._execute(row), name=f"trigger:{event_id}")
            self._jobs[event_id] = job
            job.add_done_callback(lambda _job, event_id=event_id: self._jobs.pop(event_id, None))
            # Shielded: stopping the worker must not cancel the run it is waiting for.
            await asyncio.shield(job)

    async def _execute(self, row: dict[str, Any]) -> None:
        try:
            # The caller's traceparent makes the run's span a child of the caller's trace.
            handle = await self.conversations.start(row["agent"], row["input"], row["session_id"],
                                                    traceparent=row.get("traceparent"))
            result = await handle.result()
        except PodiumError as exc:
            await self.store.finish(row["id"], error=exc.message)
            return
        except Exception as exc:  # record any failure; the worker lives on
            log.exception("trigger %s failed", row["id"])
            await self.store.finish(row["id"], error=f"internal error: {type(exc).__name__}")
            return
        await self.store.finish(row["id"], result={
            "response": result.response, "turn_id": result.turn_id, "model": result.model,
            "usage": {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens}})
