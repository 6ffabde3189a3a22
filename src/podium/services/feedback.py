"""Feedback: an operator's quality grade (1-5) on a turn, with an optional comment.
Each change is published on the bus (`feedback:submitted`, `feedback:updated`)."""

from __future__ import annotations

from typing import Any

from podium.bus import EventBus
from podium.errors import Conflict, NotFound, SessionNotFound, Unprocessable
from podium.store.feedback import FeedbackStore
from podium.store.turn_queries import TurnQueries


def check_grade(grade: Any) -> int:
    if isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= 5:
        raise Unprocessable("grade must be an integer from 1 to 5")
    return grade


class FeedbackService:
    """One grade per turn: submit it once, read it, update it; list a session's grades."""

    def __init__(self, store: FeedbackStore, turns: TurnQueries, bus: EventBus | None = None) -> None:
        self.store = store
        self.turns = turns
        self.bus = bus

    def _publish(self, name: str, row: dict[str, Any]) -> dict[str, Any]:
        if self.bus is not None:
            self.bus.publish(name, row)
        return row

    async def _turn(self, turn_id: str) -> dict[str, Any]:
        turn = await self.turns.turn(turn_id)
        if turn is None:
            raise NotFound(f"turn {turn_id!r} not found", code="TURN_NOT_FOUND")
        return turn

    async def submit(self, turn_id: str, grade: int, comment: str | None = None) -> dict[str, Any]:
        turn = await self._turn(turn_id)
        check_grade(grade)
        if await self.store.get(turn_id) is not None:
            raise Conflict(f"turn {turn_id!r} already has feedback; use PUT to change it")
        row = await self.store.insert(turn_id, turn["session_id"], grade, comment)
        return self._publish("feedback:submitted", row)

    async def get(self, turn_id: str) -> dict[str, Any]:
        await self._turn(turn_id)
        found = await self.store.get(turn_id)
        if found is None:
            raise NotFound(f"turn {turn_id!r} has no feedback", code="FEEDBACK_NOT_FOUND")
        return found

    async def update(self, turn_id: str, grade: int, comment: str | None = None) -> dict[str, Any]:
        await self._turn(turn_id)
        check_grade(grade)
        if await self.store.get(turn_id) is None:
            raise NotFound(f"turn {turn_id!r} has no feedback; POST it first", code="FEEDBACK_NOT_FOUND")
        updated = await self.store.update(turn_id, grade, comment)
        assert updated is not None  # checked just above; feedback is never deleted
        return self._publish("feedback:updated", updated)

    async def for_session(self, session_id: str) -> dict[str, Any]:
        if not await self.turns.session_exists(session_id):
            raise SessionNotFound(f"session {session_id!r} not found")
        items = await self.store.for_session(session_id)
        grades = [i["grade"] for i in items]
        return {"session_id": session_id, "feedback": items, "count": len(items),
                "average_grade": round(sum(grades) / len(grades), 2) if grades else None}
