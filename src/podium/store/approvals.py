"""Approval requests: a tool call waiting for a person's yes or no."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String, Table, Text, select, update

from podium.ids import now_ms
from podium.store.db import Database
from podium.store.tables import metadata

approvals = Table(
    "approvals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("session_id", String(200), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("tool", Text, nullable=False),  # the model's words (migration 0013)
    Column("input", JSON),
    Column("call_id", Text),
    # pending -> approved | denied | expired (the run that waited is gone)
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("decided_at", BigInteger),
    Index("ix_approvals_status", "status", "created_at"),
)


class ApprovalStore:
    """Creates approvals and records decisions; a decision is taken once (conditional update).
    Written by the database's writer, read by its readers (on a SQLite file, their threads)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "status": "pending", "created_at": now_ms(), "decided_at": None, "reason": None}
        await self.db.run(approvals.insert().values(**row))
        return row

    async def get(self, approval_id: str) -> dict[str, Any] | None:
        query = select(approvals).where(approvals.c.id == approval_id)
        row = await self.db.row(query)
        return dict(row._mapping) if row else None

    async def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(approvals).order_by(approvals.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(approvals.c.status == status)
        return [dict(r._mapping) for r in await self.db.rows(query)]

    async def decide(self, approval_id: str, status: str, reason: str | None) -> bool:
        """Move a pending approval to `status`; False when it was no longer pending."""
        statement = update(approvals).where(approvals.c.id == approval_id, approvals.c.status == "pending").values(
            status=status, reason=reason, decided_at=now_ms())
        return bool(await self.db.run(statement))

    async def expire_pending(self) -> int:
        """At start-up: approvals whose runs died with the last process can no longer resume."""
        statement = update(approvals).where(approvals.c.status == "pending").values(
            status="expired", reason="the server restarted while the run waited", decided_at=now_ms())
        return await self.db.run(statement)
