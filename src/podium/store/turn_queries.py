"""Read-only queries over recorded turns for the console: one turn, a session's turns, turns
in a time window, the sums of a period (per bucket, agent or model, provider attempts unpacked
from each turn's JSON by the database), and table sizes. Writes stay in store/conversations.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, case, column, func, select, true

from podium.store.db import Database
from podium.store.feedback import feedback
from podium.store.tables import messages, sessions, tool_calls, turns


class TurnQueries:
    """Reads turns and their tool calls."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def turn(self, turn_id: str) -> dict[str, Any] | None:
        query = select(turns).where(turns.c.id == turn_id)
        row = await self.db.row(query)
        return dict(row._mapping) if row else None

    async def session_exists(self, session_id: str) -> bool:
        query = select(sessions.c.id).where(sessions.c.id == session_id)
        return await self.db.row(query) is not None

    async def session_turns(self, session_id: str) -> list[dict[str, Any]]:
        query = select(turns).where(turns.c.session_id == session_id).order_by(turns.c.created_at, turns.c.id)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def window(self, since_ms: int | None = None, *, limit: int | None = None,
                     with_context: bool = False) -> list[dict[str, Any]]:
        """Turns created at or after `since_ms`, newest first (without the bulky context)."""
        columns = [c for c in turns.c if with_context or c.name != "context"]
        query = select(*columns).order_by(turns.c.created_at.desc(), turns.c.id.desc())
        query = _since(query, since_ms)
        if limit is not None:
            query = query.limit(limit)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def totals(self, since_ms: int) -> dict[str, Any]:
        """Turns created at or after `since_ms`: how many, their tokens and their cost, summed by
        the database."""
        query = _since(select(func.count(), func.coalesce(func.sum(turns.c.input_tokens + turns.c.output_tokens), 0),
                              func.coalesce(func.sum(turns.c.cost_usd), 0.0)), since_ms)
        count, tokens, cost = await self.db.read(lambda conn: conn.execute(query).one())
        return {"turns": int(count), "tokens": int(tokens), "cost_usd": round(float(cost), 8)}

    async def buckets(self, since_ms: int | None, size_ms: int) -> tuple[int | None, list[dict[str, Any]]]:
        """Turns since `since_ms` summed per `size_ms` bucket by the database (reading each turn
        into Python took 2.2 s at 200,000), and the first turn's time (None without turns)."""
        bucket = (turns.c.created_at // size_ms).label("bucket")
        query = select(bucket, func.count().label("requests"),
                       func.sum(case((turns.c.status != "completed", 1), else_=0)).label("errors"),
                       func.sum(turns.c.input_tokens).label("input_tokens"),
                       func.sum(turns.c.output_tokens).label("output_tokens"),
                       func.sum(turns.c.cost_usd).label("cost_usd"), func.sum(turns.c.total_ms).label("total_ms"),
                       func.min(turns.c.created_at).label("first")).group_by(bucket)
        query = _since(query, since_ms)
        rows = [dict(r._mapping) for r in await self.db.rows(query)]
        return min((r.pop("first") for r in rows), default=None), rows

    def _attempts(self, since_ms: int | None) -> tuple[Any, dict[str, Any]]:
        """Turns joined to their provider attempts (one row per element of `attempts`), and the
        attempt's fields as SQL expressions: the database unpacks the JSON, not Python."""
        unpack = func.json_each if self.db.is_sqlite else func.jsonb_array_elements
        attempt = unpack(turns.c.attempts).table_valued(column("value", turns.c.attempts.type)).alias("attempt")
        value = attempt.c.value
        fields = {"model": func.coalesce(value["model"].as_string(), "unknown"), "ok": value["ok"].as_boolean(),
                  "ms": func.coalesce(value["ms"].as_float(), 0.0), "cache": value["cache"].as_string(),
                  "input_tokens": func.coalesce(value["input_tokens"].as_integer(), 0),
                  "output_tokens": func.coalesce(value["output_tokens"].as_integer(), 0)}
        # Only real attempts: skipped candidates and the router's notes carry no `ok`.
        joined = select().select_from(turns.join(attempt, true())).where(fields["ok"].is_not(None))
        return _since(joined, since_ms), fields

    async def attempt_sums(self, since_ms: int | None, by: str, *, model: str | None = None,
                           cache_hits: bool = True) -> list[dict[str, Any]]:
        """Provider attempts since `since_ms` per `by` ("model" or "agent"): calls, errors, cache
        hits and misses, and tokens of answered calls (which prices them)."""
        joined, f = self._attempts(since_ms)
        key = f["model"] if by == "model" else turns.c.agent
        ok = f["ok"].is_(True)
        query = joined.add_columns(
            key.label("key"), func.count().label("calls"), func.sum(case((ok, 0), else_=1)).label("errors"),
            func.sum(case((f["cache"] == "hit", 1), else_=0)).label("hits"),
            func.sum(case((f["cache"] == "miss", 1), else_=0)).label("misses"),
            func.sum(case((ok, f["input_tokens"]), else_=0)).label("input_tokens"),
            func.sum(case((ok, f["output_tokens"]), else_=0)).label("output_tokens"),
        ).group_by(key)
        if model is not None:
            query = query.where(f["model"] == model)
        if not cache_hits:
            query = query.where(func.coalesce(f["cache"], "") != "hit")
        rows = [{k: (int(v or 0) if k != "key" else v) for k, v in r._mapping.items()}
                for r in await self.db.rows(query)]
        return sorted(rows, key=lambda r: r["key"])  # Python's order: PostgreSQL's collation may differ

    async def latencies(self, since_ms: int | None, model: str | None = None) -> dict[str, list[float]]:
        """Milliseconds of answered attempts (not cache hits) since `since_ms`, ascending, per model."""
        joined, f = self._attempts(since_ms)
        query = (joined.add_columns(f["model"].label("model"), f["ms"].label("ms"))
                 .where(f["ok"].is_(True), func.coalesce(f["cache"], "") != "hit").order_by(f["model"], f["ms"]))
        if model is not None:
            query = query.where(f["model"] == model)
        found: dict[str, list[float]] = {}
        for name, ms in await self.db.rows(query):
            found.setdefault(name, []).append(float(ms))
        return found

    async def agent_sums(self, since_ms: int | None) -> list[dict[str, Any]]:
        """Turns and their recorded cost since `since_ms`, per agent."""
        query = (select(turns.c.agent, func.count().label("turns"), func.sum(turns.c.cost_usd).label("cost_usd"))
                 .group_by(turns.c.agent))
        query = _since(query, since_ms)
        rows = await self.db.rows(query)
        return sorted(({"agent": r.agent, "turns": int(r.turns), "cost_usd": float(r.cost_usd or 0.0)} for r in rows),
                      key=lambda r: r["agent"])

    async def grades(self, since_ms: int | None) -> dict[str, tuple[float, int]]:
        """The average grade and number of graded turns since `since_ms`, per answering model."""
        query = (select(turns.c.model, func.avg(feedback.c.grade), func.count())
                 .select_from(feedback.join(turns, turns.c.id == feedback.c.turn_id))
                 .where(turns.c.model.is_not(None), turns.c.model != "").group_by(turns.c.model))
        query = _since(query, since_ms)
        rows = await self.db.rows(query)
        return {m: (float(avg), int(n)) for m, avg, n in rows}

    async def tool_calls(self, turn_ids: list[str]) -> list[dict[str, Any]]:
        if not turn_ids:
            return []
        query = select(tool_calls).where(tool_calls.c.turn_id.in_(turn_ids)).order_by(tool_calls.c.created_at)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Rows per table, for capacity."""
        def read(conn: Connection) -> dict[str, int]:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in (sessions, messages, turns, tool_calls)}
        return await self.db.read(read)


def _since(query: Select[Any], since_ms: int | None) -> Select[Any]:
    """`query` limited to turns created at or after `since_ms` (all of them when None)."""
    return query if since_ms is None else query.where(turns.c.created_at >= since_ms)
