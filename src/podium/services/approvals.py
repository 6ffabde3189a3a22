"""Approvals: a tool an agent marks `requires_approval` pauses its run until a person decides.

The loop asks `gate` before running a tool call. For a gated tool it records a pending
approval, emits `Waiting` (every streaming dialect shows it, and the stream stays open) and
waits; approve lets the tool run, deny gives the model the denial as the tool's result.
The run's orchestration timeout is paused while it waits; `resilience.approval_timeout`
bounds the wait instead (no decision by then counts as a denial, the approval `expired`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from podium.bus import EventBus
from podium.errors import Conflict, NotFound
from podium.ids import iso, new_id
from podium.runtime.events import ToolCall, Waiting
from podium.store.approvals import ApprovalStore


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "status": row["status"], "agent": row["agent"], "session_id": row["session_id"],
            "tool": row["tool"], "input": row["input"], "reason": row["reason"],
            "created_at": iso(row["created_at"]), "decided_at": iso(row["decided_at"])}


class ApprovalService:
    """Pending approvals and the runs waiting on them."""

    def __init__(self, store: ApprovalStore, bus: EventBus, timeout: float = 3600.0) -> None:
        self.store = store
        self.bus = bus
        self.timeout = timeout
        self._waiting: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}

    async def start(self) -> None:
        await self.store.expire_pending()

    async def gate(self, state: Any, call: ToolCall) -> str | None:
        """None to let the tool run; otherwise the text the model gets instead of its result."""
        if call.name not in state.spec.approvals:
            return None
        row = await self.store.create({"id": new_id("appr_"), "session_id": state.session_id,
                                       "agent": state.spec.name, "tool": call.name, "input": call.input,
                                       "call_id": call.id})
        decision: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        self._waiting[row["id"]] = decision
        self.bus.publish("approval:requested", public(row))
        state.emit(Waiting("approval", {"approval_id": row["id"], "tool": call.name, "input": call.input}))
        try:
            approved, reason = await self._wait(row["id"], decision, state.deadline)
        except asyncio.CancelledError:  # the server stops
            await asyncio.shield(self.store.decide(row["id"], "expired", "the run ended while waiting"))
            raise
        finally:
            self._waiting.pop(row["id"], None)
        if approved:
            return None
        return f"The call to {call.name} was {reason}"

    async def _wait(self, approval_id: str, decision: asyncio.Future[tuple[bool, str | None]],
                    deadline: Any) -> tuple[bool, str]:
        """Wait for the decision with the run's orchestration timeout paused (a person may take
        longer than a model); `approval_timeout` bounds the wait instead."""
        loop = asyncio.get_running_loop()
        remaining = deadline.when() - loop.time() if deadline is not None and deadline.when() is not None else None
        if remaining is not None:
            deadline.reschedule(None)
        try:
            approved, reason = await asyncio.wait_for(asyncio.shield(decision), self.timeout)
        except TimeoutError:
            reason = f"no decision within {self.timeout:g}s"
            if await self.store.decide(approval_id, "expired", reason):
                return False, f"not approved: {reason}."
            approved, reason = await decision  # decided in the same instant
        finally:
            if remaining is not None:
                deadline.reschedule(loop.time() + max(remaining, 0.0))
        return approved, "denied by a person" + (f": {reason}" if reason else ".")

    async def list(self, status: str | None = "pending") -> dict[str, Any]:
        rows = await self.store.list(status)
        return {"approvals": [public(r) for r in rows], "count": len(rows)}

    async def decide(self, approval_id: str, approve: bool, reason: str | None = None) -> dict[str, Any]:
        """Approve or deny a pending request; the waiting run resumes at once."""
        status = "approved" if approve else "denied"
        if not await self.store.decide(approval_id, status, reason):
            row = await self.store.get(approval_id)
            if row is None:
                raise NotFound(f"approval {approval_id!r} not found")
            raise Conflict(f"approval {approval_id!r} is already {row['status']}")
        waiter = self._waiting.get(approval_id)
        if waiter is not None and not waiter.done():
            waiter.set_result((approve, reason))
        row = await self.store.get(approval_id)
        assert row is not None  # just decided
        self.bus.publish(f"approval:{status}", public(row))
        return public(row)
