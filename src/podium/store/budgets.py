"""What agents have spent: token and cost sums over the turns table, for budgets."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from podium.store.db import Database
from podium.store.tables import turns


@dataclass(slots=True)
class Spend:
    """One model's share of a sum: tokens, and the cost the turns recorded (0 if none did)."""

    model: str | None
    input_tokens: int
    output_tokens: int
    recorded_cost: float


class BudgetStore:
    """Reads spending; budgets write nothing of their own."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def spending(self, agent: str, *, session_id: str | None = None,
                       since_ms: int | None = None) -> list[Spend]:
        query = (select(turns.c.model, func.coalesce(func.sum(turns.c.input_tokens), 0),
                        func.coalesce(func.sum(turns.c.output_tokens), 0),
                        func.coalesce(func.sum(turns.c.cost_usd), 0.0))
                 .where(turns.c.agent == agent).group_by(turns.c.model))
        if session_id is not None:
            query = query.where(turns.c.session_id == session_id)
        if since_ms is not None:
            query = query.where(turns.c.created_at >= since_ms)
        rows = await self.db.rows(query)  # before every budgeted run
        return [Spend(r[0], int(r[1]), int(r[2]), float(r[3])) for r in rows]
