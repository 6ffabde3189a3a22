"""Costs and usage statistics for the console, computed from recorded turns.

Each turn's `attempts` (one entry per provider attempt, with its model, latency and tokens)
is the raw material: costs per model price each attempt at its own model's rate, and the
cache figures count attempts answered from the response cache.
"""

from __future__ import annotations

import re
import shutil
import statistics
from typing import Any

from podium import heap
from podium.errors import BadRequest
from podium.ids import now_ms
from podium.services.system import agent_models
from podium.store.turn_queries import TurnQueries

_PERIOD = re.compile(r"^(\d{1,4})([mhd])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
BUCKETS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


def period_ms(period: str) -> int | None:
    """`30m`, `24h`, `7d` as milliseconds; `all` as None."""
    if period == "all":
        return None
    match = _PERIOD.match(period)
    if not match or int(match.group(1)) == 0:
        raise BadRequest(f"period must be like 30m, 24h, 7d or 'all', got {period!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def since(period: str) -> int | None:
    span = period_ms(period)
    return None if span is None else now_ms() - span



class StatsService:
    """`/api/stats/*` and `/api/models/*`."""

    def __init__(self, turns: TurnQueries, core: Any) -> None:
        self.turns = turns
        self.core = core

    def _cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """Answered tokens of one model at its price (linear, so a sum prices like its parts)."""
        price = getattr(self.core.loop.router, "cost", None)
        return price(model, input_tokens, output_tokens) if price is not None else 0.0

    # The figures over a period are summed by the database: reading every turn of the period
    # into Python took 2.4-2.6 s at 200,000 turns (README, "At scale").

    async def costs(self, period: str = "30d", limit: int = 50) -> dict[str, Any]:
        start = since(period)
        agents = await self.turns.agent_sums(start)
        models = await self.turns.attempt_sums(start, "model")
        history = await self.turns.window(start, limit=limit)
        return {
            "period": period, "currency": "USD",
            "total_usd": round(sum(a["cost_usd"] for a in agents), 8), "turns": sum(a["turns"] for a in agents),
            "by_model": [{"model": m["key"],
                          "cost_usd": round(self._cost(m["key"], m["input_tokens"], m["output_tokens"]), 8),
                          "calls": m["calls"], "input_tokens": m["input_tokens"], "output_tokens": m["output_tokens"]}
                         for m in models],
            "by_agent": [{"agent": a["agent"], "cost_usd": round(a["cost_usd"], 8), "turns": a["turns"]}
                         for a in agents],
            "history": [{"turn_id": t["id"], "at": t["created_at"], "agent": t["agent"], "model": t["model"],
                         "cost_usd": t["cost_usd"]} for t in history],
        }

    async def transactions(self, limit: int = 50) -> dict[str, Any]:
        rows = await self.turns.window(limit=limit)
        items = [{"id": t["id"], "type": "inference", "at": t["created_at"], "agent": t["agent"],
                  "session_id": t["session_id"], "model": t["model"], "provider": t["provider"],
                  "input_tokens": t["input_tokens"], "output_tokens": t["output_tokens"],
                  "amount_usd": t["cost_usd"], "status": t["status"]} for t in rows]
        return {"transactions": items, "count": len(items), "total_usd": round(sum(i["amount_usd"] for i in items), 8)}

    async def cache(self, period: str = "all") -> dict[str, Any]:
        per_agent = {a["key"]: {"hits": a["hits"], "misses": a["misses"]}
                     for a in await self.turns.attempt_sums(since(period), "agent") if a["hits"] or a["misses"]}
        hits = sum(a["hits"] for a in per_agent.values())
        misses = sum(a["misses"] for a in per_agent.values())
        enabled = sorted(s.name for s in self.core.agents.all() if s.cache.enabled)
        return {"period": period, "hits": hits, "misses": misses,
                "hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
                "entries": self.core.response_cache.size, "enabled_agents": enabled,
                "by_agent": [{"agent": a, **v} for a, v in sorted(per_agent.items())]}

    async def efficiency(self, period: str = "7d", model: str | None = None) -> dict[str, Any]:
        start = since(period)
        sums = await self.turns.attempt_sums(start, "model", model=model, cache_hits=False)
        latencies = await self.turns.latencies(start, model)
        grades = await self.turns.grades(start)
        return {"period": period, "model": model,
                "models": [self._model_figures(s, latencies.get(s["key"], []), grades.get(s["key"])) for s in sums]}

    def _model_figures(self, sums: dict[str, Any], latencies: list[float],
                       grades: tuple[float, int] | None) -> dict[str, Any]:
        model, calls, errors = sums["key"], sums["calls"], sums["errors"]
        tokens_in, tokens_out = sums["input_tokens"], sums["output_tokens"]
        cost = self._cost(model, tokens_in, tokens_out)
        model_s = sum(latencies) / 1000
        return {
            "model": model, "calls": calls, "errors": errors, "error_rate": round(errors / calls, 4),
            "avg_latency_ms": round(statistics.fmean(latencies), 2) if latencies else None,
            "p50_latency_ms": _percentile(latencies, 0.5), "p95_latency_ms": _percentile(latencies, 0.95),
            "input_tokens": tokens_in, "output_tokens": tokens_out,
            "output_tokens_per_second": round(tokens_out / model_s, 2) if model_s else None,
            "cost_usd": round(cost, 8),
            "cost_per_1k_tokens": round(cost / (tokens_in + tokens_out) * 1000, 8) if tokens_in + tokens_out else 0.0,
            "avg_grade": round(grades[0], 2) if grades else None, "graded_turns": grades[1] if grades else 0,
        }

    async def timeseries(self, period: str = "24h", bucket: str = "hour") -> dict[str, Any]:
        if bucket not in BUCKETS:
            raise BadRequest(f"bucket must be one of {', '.join(BUCKETS)}")
        size = BUCKETS[bucket]
        oldest, sums = await self.turns.buckets(since(period), size)
        start = since(period) or oldest or now_ms()
        first, last = start // size, now_ms() // size
        if last - first > 2000:
            raise BadRequest("too many buckets; choose a shorter period or a larger bucket")
        points = {b: {"t": b * size, "requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0,
                      "cost_usd": 0.0, "total_ms": 0.0} for b in range(first, last + 1)}
        for row in sums:
            point = points.get(int(row.pop("bucket")))
            if point is not None:
                point.update({k: int(v) if k in ("requests", "errors", "input_tokens", "output_tokens")
                              else float(v) for k, v in row.items()})
        series = [{**{k: v for k, v in p.items() if k != "total_ms"}, "cost_usd": round(p["cost_usd"], 8),
                   "avg_latency_ms": round(p["total_ms"] / p["requests"], 2) if p["requests"] else None}
                  for _, p in sorted(points.items())]
        return {"period": period, "bucket": bucket, "points": series}

    async def capacity(self) -> dict[str, Any]:
        usage = shutil.disk_usage(self.core.settings.data_dir)
        return {
            "agents": len(self.core.agents.all()), "active_runs": self.core.conversations.active_runs,
            "tables": {**await self.turns.counts(), "spans": await self.core.tracing.count()},
            "database_bytes": await self.core.db.size(),
            "disk": {"free_bytes": usage.free, "total_bytes": usage.total},
            "last_hour": await self.turns.totals(now_ms() - 3_600_000),
            "response_cache_entries": self.core.response_cache.size,
            "turn_writer": self.core.writer.figures(),
            "sqlite_checkpoints": self.core.db.figures(),
            "semantic_memory": self.core.memory.figures(),
            "embedder": {"name": self.core.embedder.name, "ready": self.core.embedder.ready},
            "heap": heap.figures(),
            "event_bus": self.core.bus.figures(),
        }

    def models_available(self) -> dict[str, Any]:
        router = self.core.loop.router
        used = {ref.label: (ref, agents) for ref, agents in agent_models(self.core).values()}
        labels = sorted(set(used) | {k for k in getattr(router, "prices", {}) if not k.endswith("/*")})
        models = []
        for label in labels:
            ref, agents = used.get(label, (None, []))
            price = router.price(label) if hasattr(router, "price") else None
            provider = label.partition("/")[0]
            models.append({"id": label, "provider": provider, "model": label.partition("/")[2],
                           "in_use_by": agents, "configured": ref is not None,
                           "provider_registered": provider in self.core.providers.factories,
                           "price": price.model_dump() if price is not None else None})
        return {"models": models, "count": len(models)}

    async def model_selections(self, limit: int = 100) -> dict[str, Any]:
        events = []
        for turn in await self.turns.window(limit=limit):
            for attempt in turn.get("attempts") or []:
                events.append({"turn_id": turn["id"], "session_id": turn["session_id"], "agent": turn["agent"],
                               "at": turn["created_at"], "selected": turn["model"], **attempt})
        return {"selections": events[:limit], "count": min(len(events), limit)}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)
