"""Counters and histograms of what the server did, as JSON and for Prometheus.

Figures are recorded once, from the RunHooks `after` hook (every recorded turn, failed ones
too). `GET /v1/metrics/` shows them in the runtime seed's shape; `GET /metrics` exposes the
same figures through `prometheus_client`, on a registry of this object (never the global one),
read from the same numbers at scrape time so that both views always agree.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from podium.store.conversations import TurnRecord


@dataclass(slots=True)
class Histogram:
    """Count, sum, min and max of observed values."""

    count: int = 0
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def summary(self) -> dict[str, float]:
        if not self.count:
            return {"count": 0, "sum": 0, "avg": 0, "min": 0, "max": 0}
        return {"count": self.count, "sum": round(self.sum, 3), "avg": round(self.sum / self.count, 3),
                "min": round(self.min, 3), "max": round(self.max, 3)}


def answered(turn: dict[str, Any]) -> list[dict[str, Any]]:
    """A turn's real provider attempts (not skipped candidates nor the router's retry notes)."""
    return [a for a in turn.get("attempts") or [] if "ok" in a]


def provider_of(label: str | None) -> str:
    return (label or "unknown").partition("/")[0] or "unknown"


class Metrics:
    """The server's in-memory counters and histograms (reset by `POST /v1/metrics/reset`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, float] = defaultdict(float)
        self.histograms: dict[str, Histogram] = defaultdict(Histogram)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_PrometheusView(self))

    def incr(self, name: str, by: float = 1) -> None:
        with self._lock:
            self._incr(name, by)

    def observe(self, name: str, value: float) -> None:
        with self._lock:
            self._observe(name, value)

    def _incr(self, name: str, by: float = 1) -> None:
        self.counters[name] += by

    def _observe(self, name: str, value: float) -> None:
        self.histograms[name].observe(value)

    async def after_run(self, _state: Any, record: TurnRecord) -> None:
        """The RunHooks `after` hook: one recorded turn's figures, under one lock."""
        with self._lock:
            self._turn(record)

    def _turn(self, record: TurnRecord) -> None:
        self._incr("agent.runs")
        self._incr(f"agent.{record.agent}.runs")
        if record.status != "completed":
            self._incr("agent.errors")
        self._observe("agent.latency_ms", record.total_ms)
        self._incr("tokens.input", record.input_tokens)
        self._incr("tokens.output", record.output_tokens)
        self._incr("tokens.total", record.input_tokens + record.output_tokens)
        self._incr("cost.usd", record.cost_usd)
        for attempt in record.attempts or []:
            self._attempt(attempt)
        for call in record.tool_calls:
            self._incr("tool.executions")
            self._incr(f"tool.{call['tool']}.executions")
            if call.get("is_error"):
                self._incr("tool.errors")
            self._observe("tool.latency_ms", float(call.get("duration_ms") or 0))

    def _attempt(self, attempt: dict[str, Any]) -> None:
        if "ok" not in attempt:  # a candidate the router skipped, or a note that it will retry
            return
        if attempt.get("cache") == "hit":
            self._incr("cache.hits")
            return
        if attempt.get("cache") == "miss":
            self._incr("cache.misses")
        provider = provider_of(attempt.get("model"))
        ok = bool(attempt.get("ok"))
        self._incr("llm.calls")
        self._incr(f"provider.{provider}.calls")
        if not ok:
            self._incr("llm.errors")
            self._incr(f"provider.{provider}.errors")
        else:
            self._incr(f"provider.{provider}.input_tokens", attempt.get("input_tokens", 0))
            self._incr(f"provider.{provider}.output_tokens", attempt.get("output_tokens", 0))
            self._observe("llm.latency_ms", float(attempt.get("ms") or 0))
            self._observe(f"provider.{provider}.latency_ms", float(attempt.get("ms") or 0))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"counters": {k: _number(v) for k, v in sorted(self.counters.items())},
                    "histograms": {k: h.summary() for k, h in sorted(self.histograms.items())}}

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self.histograms.clear()

    def prometheus(self) -> bytes:
        return generate_latest(self.registry)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 10)


_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
# Flat JSON names that carry an agent, tool or provider become one labelled Prometheus family.
_LABELLED = [
    (re.compile(r"^agent\.(.+)\.runs$"), "agent_runs_by_agent", "agent"),
    (re.compile(r"^tool\.(.+)\.executions$"), "tool_executions_by_tool", "tool"),
    (re.compile(r"^provider\.([^.]+)\.(calls|errors|input_tokens|output_tokens|latency_ms)$"), "provider_{}", "provider"),
]


def prometheus_family(name: str) -> tuple[str, dict[str, str]]:
    """`provider.openai.calls` -> (`podium_provider_calls`, {provider: openai}); others stay flat."""
    for pattern, family, label in _LABELLED:
        match = pattern.match(name)
        if match:
            return "podium_" + family.format(*match.groups()[1:]), {label: match.group(1)}
    return "podium_" + _UNSAFE.sub("_", name), {}


class _PrometheusView(Collector):
    """Reads the Metrics' numbers at scrape time: counters as counters, histograms as summaries
    (with `_min` and `_max` gauges)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        snapshot = self.metrics.snapshot()
        families: dict[str, Metric] = {}

        def family(kind: type, name: str, labels: dict[str, str], doc: str) -> Metric:
            if name not in families:
                for label, value in labels.items():  # document the family, not its first member
                    doc = doc.replace(f".{value}.", f".<{label}>.")
                families[name] = kind(name, doc, labels=list(labels))
            return families[name]

        for name, value in snapshot["counters"].items():
            base, labels = prometheus_family(name)
            family(CounterMetricFamily, base, labels, f"Podium counter {name}").add_metric(list(labels.values()), value)
        for name, h in snapshot["histograms"].items():
            base, labels = prometheus_family(name)
            values = list(labels.values())
            family(SummaryMetricFamily, base, labels, f"Podium histogram {name}").add_metric(
                values, count_value=h["count"], sum_value=h["sum"])
            family(GaugeMetricFamily, f"{base}_min", labels, f"Smallest {name}").add_metric(values, h["min"])
            family(GaugeMetricFamily, f"{base}_max", labels, f"Largest {name}").add_metric(values, h["max"])
        yield from families.values()
