"""Durable triggers: an agent run requested from outside, stored before it is acknowledged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text, select, update
from sqlalchemy.exc import IntegrityError

from podium.ids import now_ms
from podium.store.db import Database
from podium.store.tables import metadata

triggers = Table(
    "triggers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("agent", String(64), nullable=False),
    Column("input", Text, nullable=False),
    # pending -> running -> completed | failed
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(200), unique=True),
    Column("traceparent", String(64)),
    Column("principal", String(64)),
    Column("session_id", String(200)),
    Column("result", JSON),
    Column("error", Text),
    Column("runs", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
    Index("ix_triggers_status", "status", "created_at"),
)


class TriggerStore:
    """Rows of the triggers table; claiming is a conditional update so only one worker runs one.
    Written by the database's writer, read by its readers (on a SQLite file, their threads)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """Insert a pending trigger; None when its idempotency key is already taken."""
        row = {**row, "status": "pending", "runs": 0, "created_at": now_ms()}
        try:
            await self.db.run(triggers.insert().values(**row))
        except IntegrityError:
            return None
        return row

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return await self._one(triggers.c.id == event_id)

    async def by_key(self, key: str) -> dict[str, Any] | None:
        return await self._one(triggers.c.idempotency_key == key)

    async def _one(self, where: Any) -> dict[str, Any] | None:
        row = await self.db.row(select(triggers).where(where))
        return dict(row._mapping) if row else None

    async def pending_ids(self) -> list[str]:
        query = select(triggers.c.id).where(triggers.c.status == "pending").order_by(triggers.c.created_at)
        return [r[0] for r in await self.db.rows(query)]

    async def requeue_running(self) -> int:
        """At start-up: runs cut short by the last stop go back to pending."""
        statement = update(triggers).where(triggers.c.status == "running").values(status="pending")
        return await self.db.run(statement)

    async def claim(self, event_id: str) -> dict[str, Any] | None:
        statement = update(triggers).where(triggers.c.id == event_id, triggers.c.status == "pending").values(
            status="running", started_at=now_ms(), runs=triggers.c.runs + 1)
        claimed = await self.db.run(statement)
        return await self.get(event_id) if claimed else None

    async def finish(self, event_id: str, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        statement = update(triggers).where(triggers.c.id == event_id).values(
            status="failed" if error else "completed", result=result, error=error, finished_at=now_ms())
        await self.db.run(statement)
