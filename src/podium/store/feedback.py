"""Quality grades (1-5) that operators give turns: one grade per turn, updatable."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, select, update

from podium.ids import now_ms
from podium.store.db import Database
from podium.store.tables import metadata

feedback = Table(
    "feedback",
    metadata,
    Column("turn_id", String(40), ForeignKey("turns.id", ondelete="CASCADE"), primary_key=True),
    Column("session_id", String(200), nullable=False),
    Column("grade", Integer, nullable=False),
    Column("comment", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_feedback_session", "session_id"),
)


class FeedbackStore:
    """Reads and writes the feedback table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, turn_id: str) -> dict[str, Any] | None:
        query = select(feedback).where(feedback.c.turn_id == turn_id)
        row = await self.db.row(query)
        return dict(row._mapping) if row else None

    async def insert(self, turn_id: str, session_id: str, grade: int, comment: str | None) -> dict[str, Any]:
        now = now_ms()
        row = {"turn_id": turn_id, "session_id": session_id, "grade": grade, "comment": comment,
               "created_at": now, "updated_at": now}
        statement = feedback.insert().values(**row)
        await self.db.run(statement)
        return row

    async def update(self, turn_id: str, grade: int, comment: str | None) -> dict[str, Any] | None:
        values: dict[str, Any] = {"grade": grade, "updated_at": now_ms()}
        if comment is not None:
            values["comment"] = comment
        statement = update(feedback).where(feedback.c.turn_id == turn_id).values(**values)
        await self.db.run(statement)
        return await self.get(turn_id)

    async def for_session(self, session_id: str) -> list[dict[str, Any]]:
        query = select(feedback).where(feedback.c.session_id == session_id).order_by(feedback.c.created_at)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]
