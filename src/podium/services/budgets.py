"""Budgets: refuse a run (429 BUDGET_EXCEEDED) before any provider is called when the agent
has spent its tokens or dollars for the session or the day.

Spending is summed from the turns table. A turn's cost is the one recorded with it when there
is one, else its tokens priced by the router's price table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from podium.errors import BudgetExceeded
from podium.runtime.routing import ModelRouter
from podium.store.budgets import BudgetStore, Spend


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class BudgetService:
    """Checks an agent's `budget` against what it has spent."""

    def __init__(self, store: BudgetStore, router: ModelRouter) -> None:
        self.store = store
        self.router = router

    def _totals(self, spends: list[Spend]) -> tuple[int, float]:
        tokens = sum(s.input_tokens + s.output_tokens for s in spends)
        cost = sum(s.recorded_cost or self.router.cost(s.model, s.input_tokens, s.output_tokens) for s in spends)
        return tokens, cost

    async def usage(self, agent: str, session_id: str) -> dict[str, Any]:
        """Tokens and cost of the agent in this session and today (UTC)."""
        now = datetime.now(UTC)
        session = self._totals(await self.store.spending(agent, session_id=session_id))
        day = self._totals(await self.store.spending(agent, since_ms=int(_day_start(now).timestamp() * 1000)))
        return {"session_tokens": session[0], "session_cost_usd": session[1],
                "day_tokens": day[0], "day_cost_usd": day[1]}

    async def before_run(self, state: Any) -> None:
        """The conversation service's `before` hook."""
        budget = state.spec.budget
        if budget is None:
            return
        used = await self.usage(state.spec.name, state.session_id)
        until_tomorrow = (_day_start(datetime.now(UTC)) + timedelta(days=1) - datetime.now(UTC)).total_seconds()
        checks = [
            (budget.max_tokens_per_session, used["session_tokens"], "tokens in this session", None),
            (budget.max_cost_usd_per_session, used["session_cost_usd"], "USD in this session", None),
            (budget.max_tokens_per_day, used["day_tokens"], "tokens today", until_tomorrow),
            (budget.max_cost_usd_per_day, used["day_cost_usd"], "USD today", until_tomorrow),
        ]
        for limit, spent, what, retry_after in checks:
            if limit is not None and spent >= limit:
                raise BudgetExceeded(f"budget of agent {state.spec.name!r} exhausted: "
                                     f"{spent:g} of {limit:g} {what}", retry_after=retry_after)
