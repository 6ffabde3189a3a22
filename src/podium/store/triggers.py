"""Durable triggers: an agent run requested from outside, stored before it is acknowledged.

A running trigger is leased: the server that claimed it (`claimed_by`) renews `lease_until`
while the run lasts, so any server on the database can tell a run in progress from one whose
server stopped or died, and only the latter goes back to pending."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text, or_, select, update
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
    Column("claimed_by", String(40)),  # the server running it (TriggerService.node)
    Column("lease_until", BigInteger),  # epoch ms; past it, the run is taken for lost
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

    async def requeue_lost(self) -> int:
        """Runs whose lease has lapsed (their server stopped or died) go back to pending. Rows
        from before leases (migration 0016) have none and count as lapsed."""
        statement = update(triggers).where(
            triggers.c.status == "running",
            or_(triggers.c.lease_until.is_(None), triggers.c.lease_until < now_ms()),
        ).values(status="pending", claimed_by=None, lease_until=None)
        return await self.db.run(statement)

    async def claim(self, event_id: str, node: str, lease_ms: int) -> dict[str, Any] | None:
        now = now_ms()
        statement = update(triggers).where(triggers.c.id == event_id, triggers.c.status == "pending").values(
            status="running", started_at=now, runs=triggers.c.runs + 1, claimed_by=node, lease_until=now + lease_ms)
        claimed = await self.db.run(statement)
        return await self.get(event_id) if claimed else None

    async def renew(self, node: str, event_ids: list[str], lease_ms: int) -> int:
        """Extend this server's leases on the runs it still has in progress."""
        statement = update(triggers).where(
            triggers.c.id.in_(event_ids), triggers.c.status == "running", triggers.c.claimed_by == node,
        ).values(lease_until=now_ms() + lease_ms)
        return await self.db.run(statement)

    async def release(self, node: str, event_ids: list[str]) -> int:
        """Runs this server cut short as it stops go back to pending, for any server to run again."""
        statement = update(triggers).where(
            triggers.c.id.in_(event_ids), triggers.c.status == "running", triggers.c.claimed_by == node,
        ).values(status="pending", claimed_by=None, lease_until=None)
        return await self.db.run(statement)

    async def finish(self, event_id: str, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        statement = update(triggers).where(triggers.c.id == event_id).values(
            status="failed" if error else "completed", result=result, error=error, finished_at=now_ms(),
            lease_until=None)
        await self.db.run(statement)
